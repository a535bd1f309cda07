"""The library kept in step with the cached transcripts, and rebuilt from them.

The cache holds the transcripts; the library's index copies their sentences (with the speakers'
names as they are now) and says who holds which. `saved` is called where a transcript is made,
`renamed` where a speaker is renamed, `summarized` where a summary is made: each updates the
index and never fails the job that called it (a library that cannot be written is logged, and
`rebuild` brings it back). `rebuild` makes the index again from the cache folder: what it holds
of a transcript no longer cached is dropped, every cached transcript is indexed, and one that no
one holds goes to `adopt` (the local library), titled by the day it was made, since the cache
keeps no file names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from ..cache import PLAYER, Cache
from ..config import Settings
from ..transcript import Transcript
from . import LOCAL, keeps
from .store import FILE_NAME, Library, Sentence

log = logging.getLogger(__name__)


def open_library(settings: Settings) -> Library:
    """The library of this cache folder (a damaged file is rebuilt from the cached transcripts),
    or, with DATABASE_URL, the one in PostgreSQL."""
    if settings.database_url:
        from .postgres import PostgresLibrary

        return PostgresLibrary(settings.database_url)
    return Library(Path(settings.cache_dir) / FILE_NAME, on_damage=lambda lib: rebuild(settings, lib))


def _cache(settings: Settings) -> Cache:
    return Cache(settings.cache_dir, max_bytes=int(settings.cache_max_mb * 2**20))


def index_transcript(library: Library, transcript: Transcript) -> None:
    """Put a transcript's sentences in the index, under its id (`meta.id`)."""
    library.index(transcript.meta.id, transcript.duration, transcript.language,
                  transcript.speaker_names().values(),
                  (Sentence(s.start, s.end, s.text, transcript.speaker_of(s)) for s in transcript.segments))
    if summary := first_line(transcript):
        library.summarized(transcript.meta.id, summary)


def first_line(transcript: Transcript) -> str:
    """The first point of the transcript's summary, if it has one."""
    data = transcript.meta.summary if isinstance(transcript.meta.summary, dict) else {}
    return next((str(b) for b in data.get("bullets") or [] if str(b).strip()), "")


def _quietly(what: str, action: Callable[[], None]) -> None:
    """Run a library update for a job; a failure is logged, never the job's."""
    try:
        action()
    except Exception as e:  # noqa: BLE001 - the transcript is made and cached; `rebuild` catches up
        log.warning("could not %s the library: %s: %s", what, type(e).__name__, e)


def saved(settings: Settings, transcript: Transcript, owner: str | None = None, title: str | None = None,
          fresh: bool = True) -> None:
    """A transcript was made (`fresh`) or found in the cache: index it (a cached one only if the
    index lacks it); with `owner`, put it in that owner's library under `title`."""
    if not transcript.meta.id:
        return

    def update() -> None:
        library = open_library(settings)
        if fresh or not library.has(transcript.meta.id):
            index_transcript(library, transcript)
        if owner:
            library.hold(owner, transcript.meta.id, title or transcript.source or "")
            if keeps(owner):
                _cache(settings).keep(transcript.meta.id)
    _quietly("update", update)


def renamed(cache: Cache, setting: str, transcript: Transcript) -> None:
    """A speaker of the transcript (in `cache`, speakers found as `setting` says) was renamed:
    its sentences carry the new name from now on."""
    if transcript.meta.id:
        _quietly("rename a speaker in", lambda: _if_indexed(cache, setting, transcript))


def _if_indexed(cache: Cache, setting: str, transcript: Transcript) -> None:
    """Index the transcript again if the library has it (DATABASE_URL from the environment)."""
    settings = Settings.from_env(cache_dir=cache.root, cache_max_mb=cache.max_bytes / 2**20, diarization=setting)
    library = open_library(settings)
    if library.has(transcript.meta.id):
        index_transcript(library, transcript)


def summarized(settings: Settings, transcript_id: str | None, summary: str) -> None:
    if transcript_id:
        _quietly("keep a summary in", lambda: open_library(settings).summarized(transcript_id, summary))


@dataclass
class Rebuilt:
    indexed: int = 0  # transcripts indexed again
    adopted: int = 0  # of them, put in the `adopt` library (no one held them)
    dropped: int = 0  # recordings taken out: their transcripts are no longer cached


def cached_ids(settings: Settings) -> list[str]:
    """The ids of the cached transcripts (kept ones too), oldest first."""
    return _cache(settings).transcript_ids()


def rebuild(settings: Settings, library: Library | None = None, adopt: str | None = LOCAL,
            on_progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Make the index again from the cached transcripts (see the module docstring)."""
    from ..speakers.attach import with_speakers

    library = library or open_library(settings)
    cache, done = _cache(settings), Rebuilt()
    ids = cached_ids(settings)
    for gone in library.indexed() - set(ids):
        library.forget(gone)
        done.dropped += 1
    for n, key in enumerate(ids, 1):
        made, transcript = cache.made(key), cache.get_transcript(key)
        if transcript is not None:
            transcript.meta.id = key
            index_transcript(library, with_speakers(transcript, cache, settings.diarization))
            done.indexed += 1
            holders = library.holders(key)
            if adopt and not holders:
                library.hold(adopt, key, f"Recording of {datetime.fromtimestamp(made or 0):%Y-%m-%d %H:%M}", made)
                done.adopted += 1
                holders = [adopt]
            cache.keep(key, any(keeps(o) for o in holders))
        if on_progress:
            on_progress(n, len(ids))
    return done


EMBED_BATCH = 256  # sentences embedded and written at a time


def embed_pending(library: Library, on_progress: Callable[[int], None] | None = None) -> int:
    """Give every sentence that has none its vector (`meaning.embed`), for searching by meaning;
    the sentences embedded. Seconds of CPU a recording: run apart from adding it (`add` and
    `rebuild` do, at the end). 0 when the model is not installed."""
    from . import meaning

    done = 0
    while batch := library.unembedded(EMBED_BATCH):
        try:
            vectors = meaning.embed([text for _, text in batch])
        except meaning.Unavailable as e:
            log.warning("no search by meaning: %s", e)
            return done
        library.put_vectors([i for i, _ in batch], vectors)
        done += len(batch)
        if on_progress:
            on_progress(done)
    return done


def search(library: Library, owner: str, text: str, limit: int = 20, **scope) -> list:
    """The owner's sentences for `text`: by words and, once the library has vectors, by meaning
    too (reciprocal rank fusion; measured in bench/library_meaning.py)."""
    from . import meaning

    vector = None
    if library.has_vectors() and text.strip():
        try:
            vector = meaning.embed([text])[0]
        except meaning.Unavailable:
            pass
    return library.search(owner, text, limit, meaning=vector, **scope)


def remove(settings: Settings, owner: str, transcript_id: str, library: Library | None = None) -> bool:
    """Take a recording out of the owner's library; False when the owner did not hold it. When
    no one else holds it, everything the server keeps of it goes (`forget`); when no library that
    keeps its transcripts holds it any more, its transcript goes back under the cache's cap."""
    library = library or open_library(settings)
    held, orphan = library.drop(owner, transcript_id)
    if orphan:
        forget(settings, transcript_id)
    elif held and not any(keeps(o) for o in library.holders(transcript_id)):
        _cache(settings).keep(transcript_id, False)
    return held


def forget(settings: Settings, key: str) -> None:
    """Remove what the cache holds of a recording: its transcript, its summaries (for the chat
    models of these settings), voice prints, speakers' names, player's copy, captions and the way
    from its public id. The audio's chunks stay: they are keyed by the audio, not the recording,
    and go with the cap."""
    from ..answer.summary import cache_key
    from ..seal import ServerKey
    from ..speakers.attach import every_names_key, voices_key, with_speakers

    cache, server = _cache(settings), ServerKey.kept(Path(settings.cache_dir))
    transcript = cache.get_transcript(key)
    if transcript is not None:
        transcript.meta.id = key
        models = {settings.chat_model, settings.chat_fallback_model}
        summaries = [cache_key(transcript, settings, m) for m in models]  # made without speakers, or with
        labelled = with_speakers(transcript, cache, settings.diarization)
        for entry in [*summaries, *(cache_key(labelled, settings, m) for m in models)]:
            cache.discard("summaries", entry)
    for name in (cache.get_player(key) or "", f"{server.name('captions', key)}.vtt"):
        if path := cache.media(name):
            path.unlink(missing_ok=True)
    for kind, entry in [("voices", voices_key(key)), ("aliases", PLAYER + key), ("aliases", server.public_id(key)),
                        *(("names", k) for k in every_names_key(key))]:
        cache.discard(kind, entry)
    cache.remove_transcript(key)
