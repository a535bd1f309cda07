"""The pipeline: a recording of any length in, one transcript with absolute times out.

It decodes the file once, sends its chunks in parallel (`cutting` says how it is cut, `InFlight`
how many requests go at once), retries each on its own, caches every finished chunk and stitches
the parts. A chunk that still fails fails the job with its time range; what succeeded stays
cached, so running again sends only what is missing.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..audio import chunking, decode, voice
from ..audio.chunking import Chunk
from ..cache import Cache, file_digest
from ..config import Settings
from ..errors import (
    AppError,
    Cancelled,
    NoSpeech,
    ServiceError,
    TranscriptionFailed,
    UnsupportedMedia,
)
from ..i18n import Text
from ..library import sync as library
from ..speakers.attach import Beside, with_speakers
from ..transcript import Meta, Segment, Transcript
from .backends import get_backend
from .backends.base import Backend, TimesLost
from .cutting import by_utterance, piece_seconds, split
from .keys import chunk_key, transcript_key
from .limits import check_limits, cut_note, damage_note
from .progress import Progress
from .ratelimit import CANCEL_POLL, InFlight
from .retries import span, transcribe_with_retries
from .stitch import start_at_speech, stitch

if TYPE_CHECKING:
    from ..service.budget import Allowance

log = logging.getLogger(__name__)


@dataclass
class _Part:
    chunk: Chunk  # without its audio: only the worker sending it holds that, and only while it works
    key: str = ""  # cache key of the chunk's audio
    segments: list[Segment] = field(default_factory=list)
    done: bool = False


def _fixes_starts(backend: Backend) -> bool:
    """Whether segment starts are moved to the voice: the backend's segments are timed by a server
    that may start one before it (Whisper without voice detection starts one at 0.0 after music)."""
    return backend.timestamps and not backend.starts_at_voice




def _one_text(segments: list[Segment], chunk: Chunk) -> bool:
    """Whether a backend made one segment of the whole chunk, as it does for an answer without
    times (a Whisper segment never spans a chunk longer than a piece exactly)."""
    return (len(segments) == 1 and segments[0].start == 0.0 and chunk.duration > chunking.PIECE_MAX_SECONDS
            and abs(segments[0].end - chunk.duration) < 1e-6)


_claims: dict[str, list] = {}  # transcript key -> [lock, number of jobs holding or waiting for it]
_claims_lock = threading.Lock()
WAITING_FOR_TWIN = "The same recording is being transcribed for someone else; waiting for it…"


@contextmanager
def _claim(key: str, cancel: threading.Event, on_wait: Callable[[], None]):
    """One job per recording and settings in this process: later ones wait here for the first,
    then find its transcript in the cache (or, if it failed or stopped, carry on from its chunks)."""
    with _claims_lock:
        entry = _claims.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    lock: threading.Lock = entry[0]
    try:
        if not lock.acquire(blocking=False):
            on_wait()
            while not lock.acquire(timeout=CANCEL_POLL):
                if cancel.is_set():
                    raise Cancelled("Stopped while waiting for the same recording to be transcribed.")
        try:
            yield
        finally:
            lock.release()
    finally:
        with _claims_lock:
            entry[1] -= 1
            if not entry[1]:
                del _claims[key]


def lookup(path: Path, settings: Settings) -> Transcript | None:
    """The cached transcript of `path` with these settings, if there is one. Nothing is sent,
    downloaded or decoded to find out: cheap enough to ask before waiting for a job slot."""
    path = decode.check_file(Path(path))
    try:
        backend = get_backend(settings, download=False)
    except AppError:
        return None  # no key, or no local model yet: nothing can be cached for it
    key = transcript_key(file_digest(path), backend, settings)
    cache = _cache(settings)
    hit = cache.get_transcript(key, source=path.name)
    if hit is not None:
        hit.meta.id = key
        hit = with_speakers(hit, cache, settings.diarization)
    return hit


def by_id(transcript_id: str, settings: Settings, source: str | None = None) -> Transcript | None:
    """A cached transcript by its id (`meta.id`, its cache key: a sha256 of the recording's
    content and the settings, which nobody can guess without the recording). Anything that is
    not such an id finds nothing."""
    if not isinstance(transcript_id, str) or not re.fullmatch(r"[0-9a-f]{64}", transcript_id):
        return None
    cache = _cache(settings)
    hit = cache.get_transcript(transcript_id, source=source)
    if hit is not None:
        hit.meta.id = transcript_id
        hit = with_speakers(hit, cache, settings.diarization)
    return hit


def _cache(settings: Settings) -> Cache:
    return Cache(settings.cache_dir, max_bytes=int(settings.cache_max_mb * 2**20))


def transcribe_file(path: Path, settings: Settings, on_progress: Callable[[Progress], None] | None = None,
                    *, use_cache: bool = True, backend: Backend | None = None,
                    cancel: threading.Event | None = None, allowance: Allowance | None = None) -> Transcript:
    """Transcribe a recording of any length; see the module docstring. Setting `cancel` stops the
    job: nothing new is sent, what is in flight finishes and is cached, and `Cancelled` is raised.
    With an `allowance` (a visitor's budget), a recording whose header says it is longer than
    what is left is refused, and sending stops where the budget does (see `_Run.take`)."""
    path = decode.check_file(Path(path))
    info = decode.probe(path)
    expected = check_limits(path, info, settings)
    report = on_progress or (lambda p: None)
    cancel = cancel or threading.Event()
    notes: list[str] = []

    def notify(message: str) -> None:
        notes.append(message)
        report(Progress("preparing", 0.0, info.duration, 0, None, message=message))

    backend = backend or get_backend(settings, notify)
    cache = _cache(settings)
    key = transcript_key(file_digest(path), backend, settings)

    speakers = Beside(path, settings.diarization, cache, key, cancel, settings.max_duration_minutes * 60)
    waiting_for = (lambda message: report(Progress("preparing", info.duration, info.duration, 0, None,
                                                   message=message, sent=1)))

    def cached() -> Transcript | None:
        """The cached transcript with its speakers, said to be done once it has them."""
        hit = cache.get_transcript(key, source=path.name) if use_cache else None
        if hit is not None:
            if hit.meta.damaged:  # the cache keeps the fact, not the note naming someone's file
                hit.meta.notes.append(damage_note(path.name, hit.duration, expected))
            hit.meta.id = key
            hit = speakers.finish(hit, waiting_for)
            library.saved(settings, hit, fresh=False)
            n = len(hit.segments)
            report(Progress("done", hit.duration, hit.duration, n, n, tuple(hit.segments), cached=True))
        return hit

    try:
        if hit := cached():
            return hit
        waiting = Progress("preparing", 0.0, info.duration, 0, None, message=WAITING_FOR_TWIN)
        with _claim(key, cancel, lambda: report(waiting)) if use_cache else nullcontext():
            if hit := cached():  # the job it waited for made it
                return hit
            if allowance is not None:
                allowance.check(expected)
            run = _Run(path, info, settings, backend, cache, use_cache, report, cancel, allowance)
            run.send()
            transcript = run.result(expected, notes)
            if use_cache and not transcript.meta.cut_at_limit:  # a higher limit later must not get the cut one
                cache.put_transcript(key, transcript)
                transcript.meta.id = key
        transcript = speakers.finish(transcript, waiting_for)
        library.saved(settings, transcript)
        return transcript
    finally:
        speakers.stop()  # a failed or stopped job stops listening too


ENCODE_AHEAD = 4  # chunks decoded but not yet encoded at most: the decoder waits for the encoders


class _Run:
    """One transcription of one file: owns its pool, its stop flag and what it has done so far.

    `send` decodes the file, hands each chunk to a worker (cached and silent chunks, and silences
    left out, need none), and stops sending at the first hopeless failure or a cancel; whatever
    happens, the requests in flight finish and are cached. `result` stitches the parts or says
    what went wrong.
    """

    def __init__(self, path: Path, info: decode.MediaInfo, settings: Settings, backend: Backend, cache: Cache,
                 use_cache: bool, report: Callable[[Progress], None], cancel: threading.Event,
                 allowance: Allowance | None = None):
        self.path, self.info, self.settings, self.backend = path, info, settings, backend
        self.allowance = allowance
        self.over_budget: list[float] = []  # sending stopped here: the next chunk was past the budget
        self.cache, self.use_cache, self.report, self.cancel = cache, use_cache, report, cancel
        cap = backend.max_in_flight
        self.concurrency = settings.concurrency if cap is None else min(settings.concurrency, cap)
        self.inflight = InFlight(self.concurrency, linger=settings.request_timeout)
        backend.on_budget = self.inflight.budget
        self.unencoded = threading.BoundedSemaphore(ENCODE_AHEAD)  # chunks handed out whose PCM is still held
        self.encoding = 0  # chunks handed out, not yet waiting for a place: see `at_least`
        self._encoding_lock = threading.Lock()
        self.parts: list[_Part] = []
        self.pending: dict[Future, _Part] = {}
        self.failures: list[tuple[_Part, ServiceError]] = []
        self.fatal: list[AppError] = []
        self.languages: dict[str, float] = {}  # seconds of audio heard in each detected language
        self.seconds = 0.0  # of the recording transcribed so far
        self.total: int | None = None  # chunks, once the whole file is decoded
        self.damage: list[str] = []  # what ffmpeg complained about
        self.limited: list[float] = []  # decoding stopped at MAX_DURATION_MINUTES: the header said less
        self.utterances = by_utterance(backend)  # cut into utterance pieces (the model gives no times)
        self.fix_starts = _fixes_starts(backend)
        self.untimed = False  # the server answered a chunk without times, though the model gives them
        self.sent = 0  # chunks handed to the service in this run

    @property
    def saved(self) -> int:
        return sum(p.done for p in self.parts)

    def finish(self, part: _Part, segments: list[Segment], language: str | None, cached: bool) -> None:
        part.segments, part.done = segments, True
        if language:
            self.languages[language] = self.languages.get(language, 0.0) + part.chunk.duration
        self.seconds += part.chunk.keep_end - part.chunk.keep_start
        self.report(Progress("transcribing", self.seconds, self.info.duration, self.saved, self.total,
                             tuple(stitch([part])), cached, part.chunk.index, sent=self.sent))

    def on_segment(self, part: _Part) -> Callable[[Segment], None]:
        """Report a running chunk's segments as they come (the local backend makes them one by one,
        lazily, like faster-whisper: raising here on a cancel stops its work)."""
        c = part.chunk

        def report(seg: Segment) -> None:
            if self.cancel.is_set():
                raise Cancelled("Stopped.")
            heard = min(max(seg.end + c.start, c.keep_start), c.keep_end) - c.keep_start
            self.report(Progress("transcribing", self.seconds + heard, self.info.duration, self.saved, self.total,
                                 (seg.shifted(c.start),), chunk_index=c.index, partial=True, sent=self.sent))

        return report

    def collect(self, block: bool) -> None:
        """Take in the requests that are done (waiting for one with `block`)."""
        if not self.pending:
            return
        done, _ = wait(list(self.pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            part = self.pending.pop(future)
            try:
                segments, language = future.result()
            except Cancelled:
                continue
            except ServiceError as e:
                if e.retryable:  # retries exhausted: stop sending, keep what finished
                    self.failures.append((part, e))
                else:  # bad key, no quota, unknown model: nothing else will work either
                    self.fatal.append(e)
                continue
            except AppError as e:
                self.fatal.append(e)
                continue
            except Exception as e:  # a bug of ours: said plainly, never retried
                log.info("transcribing %s failed", span(part.chunk), exc_info=True)  # -v in the CLI
                self.fatal.append(AppError("Transcribing {span} failed with an internal error ({error}). Finished "
                                           "parts are saved; please report this.", span=span(part.chunk),
                                           error=type(e).__name__))
                continue
            if self.use_cache:
                self.cache.put_chunk(part.key, segments)
            self.finish(part, segments, language, False)

    def send(self) -> None:
        self.report(Progress("decoding", 0.0, self.info.duration, 0, None))
        if warm := getattr(self.backend, "warm", None):
            warm()  # beside the decoder's start, not after the first chunk is cut
        if self.fix_starts:
            voice.warm()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="chunk")
        grow = {} if self.utterances else {"at_least": self.at_least}  # pieces stay short: their times are their text's
        chunks = split(self.path, self.settings, self.utterances, self.info.duration, on_damage=self.damage.append,
                       on_limit=self.limited.append, **grow)
        try:
            for chunk in chunks:
                if self.cancel.is_set() or not self.take(chunk, pool):
                    break
            else:
                self.total = len(self.parts)
        except BaseException:  # Ctrl-C, or the decoder failed: stop sending and retrying
            self.cancel.set()
            raise
        finally:
            chunks.close()  # stops the decoder
            while self.pending:  # what is in flight finishes and is cached: nothing paid for is lost
                self.collect(block=True)
            pool.shutdown(wait=True, cancel_futures=True)

    def at_least(self, at: float) -> float:
        """The least a chunk starting `at` seconds in should last. On an account that allows few
        requests a minute (the service says what is left), the rest of the recording is cut into
        as many chunks as there is room for now, or in the next window when none is left, instead
        of waiting a window for each handful of 3-minute chunks; never past what a request may
        carry. Nothing changes where the service has room for the chunks as they are."""
        room = self.inflight.room()
        if room is None:
            return 0.0
        left, limit = room
        left -= self.encoding  # handed out, and about to ask for a place
        rest = max(0.0, (self.info.duration or 0.0) - at)
        return min(rest / (left if left > 0 else max(1, limit)), self.settings.max_chunk_seconds
                   - self.settings.chunk_overlap_seconds)

    def take(self, chunk: Chunk, pool: ThreadPoolExecutor) -> bool:
        """Send one chunk (unless cached or silent); False when nothing more should be sent."""
        if chunk.gap:  # silence left out: nothing to send, cache or pay for
            part = _Part(chunk)
            self.parts.append(part)
            self.finish(part, [], None, False)
            return True
        part = _Part(replace(chunk, pcm=b""), chunk_key(chunk, self.backend))
        self.parts.append(part)
        cached = self.cache.get_chunk(part.key) if self.use_cache else None
        if cached is not None:
            self.finish(part, cached, None, True)
            return True
        if voice.is_silent(chunk.pcm):  # nothing to hear: nothing to send or pay for
            self.finish(part, [], None, False)
            return True
        while len(self.pending) >= self.concurrency:
            self.collect(block=True)
        while not self.unencoded.acquire(timeout=CANCEL_POLL):  # the workers encode slower than we decode
            self.collect(block=False)
            if self.cancel.is_set():
                return False
        self.collect(block=False)
        if self.failures or self.fatal or self.cancel.is_set() or not self.afford(chunk):
            self.unencoded.release()
            return False  # stop sending; what is in flight finishes and is cached
        with self._encoding_lock:
            self.encoding += 1
        future = pool.submit(self.transcribe, [chunk], self.on_segment(part))
        self.pending[future] = part
        self.sent += 1
        self.report(Progress("sending", self.seconds, self.info.duration, self.saved, self.total,
                             sent=self.sent))
        if self.sent == 1 and (ready := getattr(self.backend, "ready", None)):
            ready()  # the first request waits for it, and cutting on would slow it down (the GIL)
        return True

    def afford(self, chunk: Chunk) -> bool:
        """Whether the visitor's budget covers the part of the recording the chunk answers for
        (charged now, from the decoded audio); if not, it is not sent, nor anything after it."""
        if self.allowance is None or self.allowance.spend(chunk.keep_end - chunk.keep_start):
            return True
        self.parts.pop()  # taken for this chunk, which is not sent
        self.over_budget.append(chunk.keep_start)
        return False

    def transcribe(self, handed: list[Chunk], on_segment: Callable[[Segment], None]
                   ) -> tuple[list[Segment], str | None]:
        """One chunk, in a worker: encoded for upload (here, not in the thread that decodes, by the
        encoder processes of `encode`), then its segments (starts moved to the voice where a server
        put them before it) and language.

        The chunk comes in `handed`, which the worker empties: its PCM is then held only here, and
        dropped once the upload is made, so a chunk in flight holds only what it sends. Where segment
        starts are checked, the PCM waits on disk (`decode.PcmOnDisk`) for the answer: decoding an
        Opus upload again would cost about 0.4 s of CPU for 3 minutes, as much as encoding it."""
        chunk = handed.pop()
        recut = self.recut(chunk)
        try:
            upload = chunk if recut else self.backend.prepare(chunk)
            kept = decode.PcmOnDisk(chunk.pcm) if self.fix_starts and not recut else None
        finally:
            self.unencoded.release()
            with self._encoding_lock:
                self.encoding -= 1
        if recut:
            return self.in_pieces(chunk)
        del chunk
        with kept or nullcontext():
            audio = kept.read if kept else upload.audio  # the chunk's PCM, read after the answer if need be
            try:
                segments, language = transcribe_with_retries(self.backend, upload, self.settings, self.inflight,
                                                             self.cancel, on_segment)
            except TimesLost:  # a successor without times took over before this chunk was sent
                return self.in_pieces(replace(upload, pcm=audio()))
            if not self.utterances and _one_text(segments, upload):  # no times: a piece's text gets the piece's
                self.untimed = True
                log.info("%s came back as one text: sending it again in utterance pieces", span(upload))
                return self.in_pieces(replace(upload, pcm=audio()))
            if self.fix_starts:
                segments = start_at_speech(segments, audio)
            return segments, language

    def recut(self, chunk: Chunk) -> bool:
        """Whether a chunk cut for a model that gives times goes to one that does not after all: a
        retired model's successor took over during the job (the backend's `timestamps` changed),
        or the server answers without segments."""
        untimed = self.untimed or by_utterance(self.backend)
        return not self.utterances and untimed and chunk.duration > piece_seconds(self.settings)

    def in_pieces(self, chunk: Chunk) -> tuple[list[Segment], str | None]:
        """The chunk cut again into utterance pieces, sent one after the other from this worker
        (the other workers carry on meanwhile), and their segments joined in the chunk's time. A
        chunk that came back as one text is paid for twice."""
        parts, language = [], None
        for piece in chunking.utterances_in(chunk.audio(), min_silence_ms=self.settings.min_silence_ms,
                                         max_piece_seconds=piece_seconds(self.settings)):
            if piece.gap or voice.is_silent(piece.pcm):
                continue
            upload = self.backend.prepare(replace(piece, index=chunk.index))
            segments, heard = transcribe_with_retries(self.backend, upload, self.settings, self.inflight, self.cancel)
            parts.append(_Part(piece, segments=segments))
            language = language or heard
        return stitch(parts), language

    def result(self, expected: float, notes: list[str]) -> Transcript:
        if self.fatal:
            raise self.fatal[0]
        if self.failures and not self.cancel.is_set():
            error = self.failures[0][1]
            gave_up = Text("{error} (Gave up after {attempts} attempts; {saved} finished part(s) are saved, so "
                           "running again sends only what is missing.)", attempts=self.settings.max_retries + 1,
                           saved=self.saved)
            raise TranscriptionFailed(gave_up, error=error.text,
                                      visitor=Text(gave_up.template, **{**gave_up.params, "error": error.for_visitor}))
        if self.cancel.is_set() and (self.failures or self.total is None or self.saved < len(self.parts)):
            raise Cancelled("Stopped. {saved} finished part(s) are saved, so running again sends only what is "
                            "missing.", saved=self.saved)
        name = self.path.name
        duration = round(self.parts[-1].chunk.keep_end, 3) if self.parts else 0.0
        damaged = bool(self.damage) or bool(expected and duration < expected * 0.95 - 1 and not self.over_budget)
        if damaged:
            notes.append(damage_note(name, duration, expected))
        if self.limited:
            notes.append(cut_note(name, self.settings.max_duration_minutes, expected, self.limited[0]))
        if self.over_budget:
            notes.append(self.allowance.cut_note(name, self.over_budget[0]))
        segments = stitch(self.parts)
        if not segments and self.over_budget:
            raise self.allowance.exhausted()
        if not segments and self.damage:
            raise UnsupportedMedia("{name} seems damaged: ffmpeg could not decode it cleanly ({detail}), and no "
                                   "speech was found in what it could read.", name=name, detail=self.damage[-1][:120])
        if not segments:
            raise NoSpeech("No speech was found in {name}: it seems to be silence, noise or music.", name=name)
        languages = self.languages
        language = self.settings.language or (max(languages, key=languages.get) if languages else None)
        transcript = Transcript(segments, duration, language, self.backend.model, name,
                                Meta(backend=self.backend.name, notes=notes, damaged=damaged,
                                     cut_at_limit=bool(self.limited or self.over_budget)))
        self.report(Progress("done", duration, duration, len(self.parts), len(self.parts), ()))
        return transcript
