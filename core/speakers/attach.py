"""Speakers for a transcript: heard beside its transcription, cached, found again on demand.

The transcript cache holds words only. What speakers need is cached beside it under the
transcript's id: the voice prints (`listen.Heard`, which any count of speakers is clustered from
in well under a second) and the names the user gave, per count asked for. So a changed count
costs no decoding and no request, and a rename is one small write.

A failure here never costs a transcript: it comes without speakers and a note says why.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..cache import Cache, make_key
from ..errors import Cancelled
from ..i18n import Note, Text
from ..transcript import Transcript, default_name, format_timestamp
from . import cluster
from .assign import assign, label_of
from .cluster import MAX_SPEAKERS, Count
from .listen import Heard, listen

log = logging.getLogger(__name__)

# What the cached voice prints depend on: the encoder, the voice detection (and overlap, local speakers) and the windows.
VOICES = "campplus-3dspeaker-zh-en-common/pyannote-seg3-5s-0.4-500-pad100-overlap0.3-local1.5/1.5s-0.75s"
MAX_NAME = 60
FAILED_NOTE = "Speakers could not be told apart in this recording ({why}); the transcript has none."
LISTENING = "Telling the speakers apart: {done} of {total}…"
WAIT_POLL = 0.5  # seconds between progress reports while the transcript waits for its speakers


def count_of(setting: str) -> Count | None:
    """The count a setting asks for; None when speakers are off (or the setting is not valid)."""
    try:
        return Count.parse(setting)
    except ValueError:
        return None


def voices_key(transcript_id: str) -> str:
    return make_key("voices", transcript_id, VOICES)


def names_key(transcript_id: str, count: Count) -> str:
    return make_key("names", transcript_id, VOICES, str(count))


def every_names_key(transcript_id: str) -> list[str]:
    """The keys the speakers' names of a transcript may be kept under, one for each count a
    setting can ask for (to remove them all with the transcript)."""
    counts = [Count(), *(Count(low, high) for low in range(1, MAX_SPEAKERS + 1)
                         for high in range(low, MAX_SPEAKERS + 1))]
    return [names_key(transcript_id, c) for c in counts]


def clean_name(name: str) -> str:
    """A name as shown: one line, no control characters, at most MAX_NAME characters."""
    name = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", str(name or "")).split())
    return name[:MAX_NAME].strip()


def _checked(blocks: Iterable[bytes], stop: Callable[[], bool]) -> Iterator[bytes]:
    for block in blocks:
        if stop():
            raise Cancelled()
        yield block


class Listening:
    """Voice prints of one recording, heard in a thread of its own while it is transcribed.
    `blocks` is the recording's 16 kHz mono PCM as a decoder gives it."""

    def __init__(self, blocks: Callable[[], Iterable[bytes]], stop: Callable[[], bool] = lambda: False):
        self._heard: Heard | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0  # of the recording heard so far
        self._thread = threading.Thread(target=self._run, args=(blocks, stop), daemon=True,
                                        name="speakers")
        self._thread.start()

    def _run(self, blocks: Callable[[], Iterable[bytes]], stop: Callable[[], bool]) -> None:
        try:
            self._heard = listen(_checked(blocks(), stop), on_progress=self._heard_up_to)
        except BaseException as e:  # handed to whoever waits for the result
            self._error = e

    def _heard_up_to(self, seconds: float) -> None:
        self.seconds = seconds

    def wait(self, timeout: float | None) -> bool:
        """Whether it is done, after waiting at most `timeout` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self) -> Heard:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._heard is not None
        return self._heard


def heard_for(cache: Cache, transcript_id: str) -> Heard | None:
    data = cache.get_voices(voices_key(transcript_id))
    if data is None:
        return None
    try:
        return Heard.from_bytes(data)
    except (ValueError, KeyError, OSError, EOFError) as e:
        log.warning("unreadable voice prints (%s)", type(e).__name__)
        return None


def keep(cache: Cache, transcript_id: str, heard: Heard) -> None:
    cache.put_voices(voices_key(transcript_id), heard.to_bytes())


def attach(t: Transcript, heard: Heard | None, count: Count | None, names: dict[str, str]) -> Transcript:
    """`t` with a speaker on each segment and the names table; `t` without speakers when `count`
    is None (off), nothing was heard, or Auto hears one voice (a talk, a dictation: a name on
    every line would say nothing; asking for 1 speaker, or naming them, labels it). Labels given
    the same name are one speaker (a merge)."""
    plain = [replace(s, speaker=None) for s in t.segments]
    if count is None or heard is None or len(heard.times) == 0:
        return replace(t, segments=plain, meta=replace(t.meta, speakers={}))
    who = cluster.labels(heard, count)
    if count.auto and int(who.max()) == 0 and not clean_name(names.get(label_of(0), "")):
        return attach(t, None, count, names)  # one voice: nobody to tell apart, and nothing to say on every line
    segments = assign(plain, cluster.turns(heard, who))
    shown = {label_of(i): clean_name(names.get(label_of(i), "")) or default_name(label_of(i))
             for i in range(int(who.max()) + 1)}
    first_with: dict[str, str] = {}
    for label, name in shown.items():
        first_with.setdefault(name.casefold(), label)
    merged = [replace(s, speaker=first_with[shown[s.speaker].casefold()]) for s in segments]
    used = dict.fromkeys(s.speaker for s in merged)
    return replace(t, segments=merged, meta=replace(t.meta, speakers={k: shown[k] for k in used}))


def with_speakers(t: Transcript, cache: Cache, setting: str, heard: Heard | None = None) -> Transcript:
    """`t` labelled from `heard` or its cached prints, with the names kept for this count."""
    count = count_of(setting)
    if count is None or not t.meta.id:
        return attach(t, heard, count, {})
    heard = heard or heard_for(cache, t.meta.id)
    return attach(t, heard, count, cache.get_names(names_key(t.meta.id, count)))


def rename(cache: Cache, t: Transcript, setting: str, label: str, name: str) -> Transcript:
    """Give speaker `label` of the cached transcript `t` a name (empty: back to "Speaker N")."""
    count = count_of(setting)
    if count is None or not t.meta.id or label not in t.meta.speakers:
        return t
    key = names_key(t.meta.id, count)
    names = cache.get_names(key)
    current = t.meta.speakers[label].casefold()
    for other, given in list(names.items()):  # labels merged into this one (the same name) follow it
        if given.casefold() == current:
            names[other] = clean_name(name)
    names[label] = clean_name(name)
    cache.put_names(key, {k: v for k, v in names.items() if v})
    renamed = with_speakers(t, cache, setting)
    from ..library import sync  # the library's sentences carry the new name too

    sync.renamed(cache, setting, renamed)
    return renamed


class Beside:
    """The speakers of one transcription job: heard in a thread from the moment the job starts
    (unless the prints are cached), put on the transcript when it is done."""

    def __init__(self, path: Path, setting: str, cache: Cache, key: str, cancel: threading.Event,
                 max_seconds: float | None):
        from ..audio.decode import pcm_blocks

        self.setting, self.count, self.cache, self.key = setting, count_of(setting), cache, key
        self.listening: Listening | None = None
        self.stopped = threading.Event()
        self.cached = heard_for(cache, key) if self.count is not None else None  # read once, used in finish
        if self.count is not None and self.cached is None:
            self.listening = Listening(lambda: pcm_blocks(path, max_seconds, None, None),
                                       lambda: cancel.is_set() or self.stopped.is_set())

    def stop(self) -> None:
        """Stop listening, and wait for the listener to let go of the model (a process that exits
        while onnxruntime runs in a thread is aborted)."""
        self.stopped.set()
        if self.listening:
            self.listening.wait(None)

    def finish(self, t: Transcript, report: Callable[[str], None] = lambda message: None) -> Transcript:
        """`t` with speakers; without them, and a note saying why, when finding them failed.
        While the transcript waits for its speakers, `report` hears how far listening is."""
        try:
            while self.listening and not self.listening.wait(WAIT_POLL):
                report(Note(Text(LISTENING, done=format_timestamp(self.listening.seconds),
                                 total=format_timestamp(t.duration))))
            if self.listening is None:
                return with_speakers(t, self.cache, self.setting, self.cached)
            heard = self.listening.result()
            if t.meta.id == self.key:
                keep(self.cache, self.key, heard)
            return with_speakers(t, self.cache, self.setting, heard)
        except Cancelled:
            raise
        except Exception as e:  # noqa: BLE001 - whatever broke, the transcript is delivered
            log.warning("speakers not found: %s", type(e).__name__)
            t.meta.notes.append(Note(Text(FAILED_NOTE, why=type(e).__name__)))
            return t
