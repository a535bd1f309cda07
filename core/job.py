"""One job path: a recording (an upload, a microphone take, a link, a tool's data URL) to a
finished, cached transcript and the player's copy of the recording.

The page, the `/transcribe` API and the MCP tool all call `Jobs.prepare` (the input checked and
the cache asked at once, before waiting for a slot) and then iterate `Jobs.run`, an async
generator of typed events: `Stage` (a step before or after the transcription), `Progressed`
(with the transcript so far when text arrived), then `Done` or `Failed`. Stopping is stopping
to iterate: the transcription stops sending, and what finished stays cached. Polling the
transcription holds no thread while it waits.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import AsyncIterator, Union

import anyio

from .answer import summary as summaries
from .answer.chat import check_question
from .audio import dataurl, playback
from .audio.fetch import download
from .cache import Cache, file_digest
from .config import Settings
from .errors import AppError
from .exports import to_vtt, write_exports
from .i18n import Text
from .seal import ServerKey, is_keyed, is_served_name
from .service.budget import Budget, Visitor
from .service.housekeeping import WorkFolders
from .speakers.attach import count_of, with_speakers
from .speakers.attach import rename as rename_speaker
from .transcribe.jobs import Job, running
from .transcribe.pipeline import by_id, lookup
from .transcribe.progress import Eta, LiveTranscript, Progress
from .transcript import Transcript

log = logging.getLogger(__name__)

JOB_POLL = 0.1  # seconds between two looks at a running transcription (no thread is held meanwhile)
WORK_DIR = Path(tempfile.gettempdir()) / "talk-to-your-audio"  # sessions' exports, fetched links, tool uploads
_copies = ThreadPoolExecutor(max_workers=2, thread_name_prefix="playback")  # players' copies, beside the jobs

WAITING = Text("Waiting for a free slot…")
FETCHING = Text("Fetching the link…")
PREPARING_PLAYER = Text("Preparing the player…")


@dataclass(frozen=True)
class Source:
    """Where the recording comes from: a file on this server, or a link to fetch."""

    path: Path | None = None
    url: str | None = None

    @classmethod
    def chosen(cls, tab: str, file: str | None, recording: str | None, url: str | None) -> "Source":
        """The input of the page's chosen tab ("upload", "record" or "link"), or an `AppError`
        saying what is missing."""
        if tab == "record" and not recording:
            raise AppError("Record something first: the microphone recording is empty.")
        if tab == "link":
            if not (url or "").strip():
                raise AppError("Paste a link to an audio or video file first.")
            return cls(url=url)
        path = recording if tab == "record" else file
        if not path:
            raise AppError("Choose a file or record something first.")
        return cls(path=Path(path))

    @classmethod
    def from_tool(cls, media: str, folder: Path, max_file_mb: float) -> "Source":
        """A tool's `media`: a link, or the file itself as a base64 data URL, decoded into
        `folder` a piece at a time under the file limit (a large one was decoded as the request
        came in, and `media` is then its reference)."""
        media, limit = (media or "").strip(), int(max_file_mb * 2**20)
        if media.startswith(dataurl.REFERENCE):
            return cls(path=dataurl.claim(media, folder / "recording", limit))
        if not media.startswith("data:"):
            if not media:
                raise AppError("Paste a link to an audio or video file first.")
            return cls(url=media)
        _, payload = dataurl.split(media)
        return cls(path=dataurl.decode_to_file(payload, folder / "recording", limit))


@dataclass(frozen=True)
class Ticket:
    """A transcription to run: what `Jobs.prepare` did not find in the cache."""

    id: str
    source: Source
    settings: Settings


@dataclass(frozen=True)
class Stage:
    """A step around the transcription itself (waiting for a slot, fetching, the player)."""

    text: Text
    fraction: float | None = None


@dataclass(frozen=True)
class Progressed:
    """The transcription moved on: its progress, the seconds left once this run's pace tells,
    and the transcript so far when this event brought text."""

    progress: Progress
    left: float | None
    live: Transcript | None = None


@dataclass(frozen=True)
class Done:
    transcript: Transcript
    media: playback.Playback | None  # the player's copy; None when none was asked for or it could not be made
    cached: bool = False


@dataclass(frozen=True)
class Failed:
    error: Exception


Event = Union[Stage, Progressed, Done, Failed]


def visitor_settings(base: Settings, user_key: str | None, **changes) -> Settings:
    """The server's settings with a visitor's options, and their key in place of the server's
    when they give one: their own key is their own budget (`Budget.charged`)."""
    key = (user_key or "").strip()
    if key:
        changes["api_key"] = key
    return base.replace(**changes)


def job_settings(base: Settings, user_key: str | None, language: str | None, vocabulary: str | None,
                 speakers: str | None = None) -> Settings:
    """A visitor's settings for a transcription: the spoken language ("" for Auto), the
    vocabulary hint and the speakers to find (auto, off, a count) they gave, in place of the server's."""
    changes = {"diarization": speakers} if speakers else {}
    return visitor_settings(base, user_key, language=language or None, prompt=(vocabulary or "").strip() or None,
                            **changes)


def pinned(path: Path, folder: Path) -> Path:
    """`path` under the same name in `folder`, as a hard link (no copy: the same file, which stays
    whole while the link does, whoever removes `path`); `path` itself where links cannot be made
    (another file system)."""
    try:
        os.link(path, folder / path.name)
    except OSError:
        return path
    return folder / path.name


def remove_folder(folder: str | Path | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


class Jobs:
    """The job path over the server's settings and cache; one per app."""

    def __init__(self, base: Settings):
        self.base = base
        self.cache = Cache(base.cache_dir, max_bytes=int(base.cache_max_mb * 2**20))
        self.cache.media_folder.mkdir(parents=True, exist_ok=True)
        self.key = ServerKey.kept(base.cache_dir)  # seals browser values, names served files, makes public ids
        self._by_session: dict[str, Job] = {}  # the running transcription of each browser session
        self.budget = Budget(base)  # what each visitor may spend (off but for a shared server)
        self.folders = WorkFolders(WORK_DIR, base.session_ttl_minutes * 60, int(base.max_session_mb * 2**20))
        self.library_owner: str | None = None  # LOCAL on a single-user app: whatever the API or a tool transcribes joins it

    def prepare(self, source: Source, settings: Settings, *, player_copy: bool = True,
                visitor: Visitor | None = None) -> Done | Ticket:
        """The cached transcript (with the player's copy), or the ticket of the work to do. Raises
        an `AppError` for input that cannot be used, or for a visitor with no audio left of their
        budget. Cheap: nothing is sent, fetched or decoded. A cached transcript costs nothing
        and is never refused."""
        if source.path is not None and (hit := lookup(source.path, settings)) is not None:
            return Done(hit, self.playable(source.path) if player_copy else None, cached=True)
        self.budget.ready(visitor or Visitor(), settings)
        return Ticket(uuid.uuid4().hex, source, settings)

    async def run(self, work: Done | Ticket, *, session: str | None = None, player_copy: bool = True,
                  visitor: Visitor | None = None) -> AsyncIterator[Event]:
        """The events of one job, ending with `Done` or `Failed`. Closing the iterator early stops
        the transcription (what is in flight finishes and is cached). The `visitor` is charged
        for what is sent with the server's key, and runs only as many jobs at once as they may."""
        if isinstance(work, Done):
            yield work
            return
        try:
            with self.budget.running(visitor or Visitor()):
                async for event in self._transcribe(work, session or work.id, player_copy, visitor or Visitor()):
                    yield event
        except Exception as e:  # an AppError for the visitor, or our own bug for the log
            yield Failed(e)

    def asking(self, visitor: Visitor, settings: Settings, question: str | None = None, *,
               summary_of: Transcript | None = None) -> None:
        """Charge the visitor one `question` about to be sent, once it is one that can be asked
        (or the summary of `summary_of`, when one is not cached yet), or raise an `AppError`:
        `OverBudget` says when more comes."""
        if question is not None:
            check_question(question)
        if summary_of is None or summaries.needs_model(summary_of, settings):
            self.budget.question(visitor, settings)

    async def transcribe(self, source: Source, settings: Settings, *, player_copy: bool = False,
                         visitor: Visitor | None = None, owner: str | None = None) -> AsyncIterator[Event]:
        """`prepare` then `run`, for callers that wait in their own queue (the API, the tools).
        The transcript joins `owner`'s library (a signed-in caller's), else `library_owner`'s."""
        owner = owner or self.library_owner
        try:
            work = await anyio.to_thread.run_sync(lambda: self.prepare(source, settings, player_copy=player_copy,
                                                                       visitor=visitor))
        except Exception as e:
            yield Failed(e)
            return
        async for event in self.run(work, player_copy=player_copy, visitor=visitor):
            if isinstance(event, Done) and owner:
                await anyio.to_thread.run_sync(self._to_library, event.transcript, owner)
            yield event

    def _to_library(self, transcript: Transcript, owner: str) -> None:
        from .library.owners import Shelf

        Shelf(self, owner).hold(transcript)  # titled by its file's name, never its cache key

    async def _transcribe(self, ticket: Ticket, session: str, player_copy: bool,
                          visitor: Visitor) -> AsyncIterator[Event]:
        """The job, on a file of its own in a held work folder: the fetched link, or a link to
        the upload (which Gradio's clean-up of its upload cache then cannot take from it)."""
        held, job, copy = None, None, None
        try:
            async for event in self._free_slot():
                yield event
            if ticket.source.url:
                yield Stage(FETCHING)
                held = self.folders.new("fetch-", held=True)
                path = await anyio.to_thread.run_sync(download, ticket.source.url, held, ticket.settings)
            else:
                held = self.folders.new("job-", held=True)
                path = pinned(Path(ticket.source.path), held)
            job = Job(Path(path), ticket.settings, allowance=self.budget.allowance(visitor, ticket.settings))
            self._by_session[session] = job
            copy = _copies.submit(self.playable, Path(path), job.cancel) if player_copy else None
            async for event in self._follow(job, copy):
                yield event
        finally:
            self._wind_down(session, job, copy, held)

    async def _free_slot(self) -> AsyncIterator[Event]:
        """Wait while MAX_CONCURRENT_JOBS transcriptions run (one cancelled but still winding
        down keeps its slot until it has stopped)."""
        if running() >= self.base.max_jobs:
            log.info("waiting for %d job(s) still winding down", running())
            yield Stage(WAITING)
            while running() >= self.base.max_jobs:
                await asyncio.sleep(JOB_POLL)

    async def _follow(self, job: Job, copy: Future | None) -> AsyncIterator[Event]:
        eta, live = Eta(), LiveTranscript()
        while not job.over:
            for item in job.poll():
                if isinstance(item, Transcript):
                    if copy is not None and not copy.done():
                        yield Stage(PREPARING_PLAYER, 1.0)
                    yield Done(item, await asyncio.wrap_future(copy) if copy is not None else None)
                    return
                yield Progressed(item, eta.update(item), live.add(item) if item.segments else None)
            await asyncio.sleep(JOB_POLL)

    def _wind_down(self, session: str, job: Job | None, copy: Future | None, held: Path | None) -> None:
        """Stop the transcription if the caller left (a no-op once it is done), and remove its
        folder (the fetched file, the link to the upload) once nothing reads it any more."""
        if job is not None:
            job.close()
            if self._by_session.get(session) is job:
                del self._by_session[session]
        if not held:
            return

        def clean() -> None:
            if job is not None:
                job.finished.wait()
            if copy is not None:
                wait([copy])
            self.folders.remove(held)

        threading.Thread(target=clean, daemon=True).start()

    def stop(self, session: str | None) -> None:
        """The visitor left (a tab closed or reloaded): their transcription stops sending, and
        their files go."""
        job = self._by_session.pop(session or "", None)
        if job:
            job.close()
        self.folders.end(session)

    def playable(self, path: Path, cancel: threading.Event | None = None) -> playback.Playback | None:
        """The browser's copy of a recording, in the cache's media folder; None if it cannot be
        made: the transcript is still worth having without a player."""
        try:
            name = self.key.name("media", file_digest(Path(path)))
            media = playback.prepare(Path(path), self.cache.media_folder, name=name, cancel=cancel)
        except AppError as e:
            log.info("no player for %s: %s", Path(path).name, e)
            return None
        except Exception:
            log.warning("no player for %s", Path(path).name, exc_info=True)
            return None
        self.cache.added_media(media.path)
        return media

    def public_id(self, transcript: Transcript) -> str:
        """The id a visitor or an agent is given for a cached transcript: a keyed hash of its
        cache key (`core.seal`), which nobody can compute from the file; recorded in the cache so
        that `recording` finds the transcript again. "" for a transcript that is not cached."""
        if not transcript.meta.id:
            return ""
        public = self.key.public_id(transcript.meta.id)
        self.cache.put_alias(public, transcript.meta.id)
        return public

    def recording(self, public_id: str) -> Transcript | None:
        """The cached transcript a public id was given for; None for anything else: a guess, a
        cache key, an id of another server, a transcript no longer in the cache."""
        if not is_keyed(public_id):
            return None
        internal = self.cache.get_alias(public_id)
        if internal is None or not hmac.compare_digest(self.key.public_id(internal), public_id):
            return None  # an alias this server did not record
        return by_id(internal, self.base)

    def reopen(self, public_id: str, media_name: str | None, speakers: str | None = None) -> Done | None:
        """A transcript from the cache by its public id (with the speakers asked for), with the
        player's copy kept under `media_name` if it is still there; None when the cache no longer
        has it."""
        transcript = self.recording(public_id)
        if transcript is not None and speakers and count_of(speakers) != count_of(self.base.diarization):
            transcript = self.relabel(transcript, speakers)
        if transcript is None:
            return None
        path = self.cache.media(media_name) if media_name and is_served_name(media_name) else None
        return Done(transcript, self.playable(path) if path is not None else None, cached=True)

    def relabel(self, transcript: Transcript, speakers: str) -> Transcript:
        """The transcript's speakers found again for another count ("auto", "3", "2-4", "off"),
        from its cached voice prints: nothing is decoded or sent."""
        return with_speakers(transcript, self.cache, speakers)

    def rename(self, transcript: Transcript, speakers: str, label: str, name: str) -> Transcript:
        """Speaker `label` named `name` everywhere, and kept with the transcript (a name that
        another speaker has merges the two)."""
        return rename_speaker(self.cache, transcript, speakers, label, name)

    def exports(self, transcript: Transcript, folder: Path) -> list[Path]:
        """The transcript in every export format, in a session's folder (txt, srt, vtt, json);
        the JSON holds its public id, not its cache key."""
        self.folders.used(folder)
        shown = replace(transcript, meta=replace(transcript.meta, id=self.public_id(transcript) or None))
        return write_exports(shown, folder, transcript.source)

    def captions(self, transcript: Transcript) -> Path:
        """The transcript as WebVTT beside the player's copy (a video's captions), under a keyed
        name: nobody can find a recording's captions from its file or its id."""
        stem = self.key.name("captions", transcript.meta.id) if transcript.meta.id else uuid.uuid4().hex
        target = self.cache.media_folder / f"{stem}.vtt"
        self.cache.media_folder.mkdir(parents=True, exist_ok=True)
        target.write_text(to_vtt(transcript), encoding="utf-8")
        self.cache.added_media(target)
        return target
