"""Transcription: backends, and the pipeline that runs them over a recording of any length.

The pipeline decodes the file once (`media.iter_chunks`), sends chunks in parallel with bounded
concurrency, retries each chunk on its own, caches every finished chunk, and stitches the parts
into one transcript with absolute times. A chunk that still fails fails the job with its time
range; what succeeded stays cached, so running again sends only what is missing. A cancelled job
(`cancel`: a closed tab, Ctrl-C) sends nothing new and retries nothing, and what is in flight
finishes and is cached too. Only what the service or the network did wrong is retried, and never
with more requests on the service than the job's share (`InFlight`). Two jobs for the same
recording and settings in one process do the work once (`_claim`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import openai
from tenacity import (Retrying, retry_if_exception, stop_after_attempt, stop_when_event_set,
                      wait_exponential_jitter)

from . import media, service
from .cache import Cache, file_digest, make_key
from .config import PRICE_PER_MINUTE, Settings, model_has_timestamps
from .errors import AppError, Cancelled, NoSpeech, ServiceError, TooLarge, TranscriptionFailed, UnsupportedMedia
from .local import LocalBackend
from .media import Chunk
from .stitch import stitch
from .transcript import Segment, Transcript, format_timestamp

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def cache_params(self) -> dict:
        """Everything about this backend that changes what a chunk transcribes to."""

    def prepare(self, chunk: Chunk) -> Chunk:
        """The chunk as the backend will send it (runs in the producer, before a worker gets it)."""

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        """Segments with times relative to the chunk, and the language if known. A backend that
        produces segments one by one also hands each to `on_segment` as it comes."""


class OpenAIBackend:
    """Whisper through the OpenAI audio API, or any server that speaks it."""

    name = "openai"

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None):
        self.settings = settings
        self.model = settings.transcribe_model
        self.timestamps = model_has_timestamps(self.model)
        # Retries are ours (per chunk, with Retry-After); the client must not retry on top.
        self.client = service.make_client(settings, max_retries=0)

    def cache_params(self) -> dict:
        s = self.settings
        return {"backend": self.name, "model": self.model, "language": s.language,
                "prompt": s.prompt, "server": s.base_url or "openai"}

    def prepare(self, chunk: Chunk) -> Chunk:
        """Encode the upload up front and drop the PCM: a chunk in flight holds only what it sends."""
        return replace(chunk, encoded=chunk.encode(), pcm=b"")

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        audio = chunk.encode()
        if len(audio) > self.settings.max_upload_bytes:  # cannot happen with lossless 16 kHz mono
            raise AppError(f"Internal error: a {len(audio)} byte chunk is over the upload limit.")
        args: dict = {
            "model": self.model,
            "file": (f"chunk-{chunk.index:04d}.{media.UPLOAD_FORMAT}", audio, f"audio/{media.UPLOAD_FORMAT}"),
            "response_format": "verbose_json" if self.timestamps else "json",
        }
        if self.timestamps:
            args["timestamp_granularities"] = ["segment"]
        if self.settings.language:
            args["language"] = self.settings.language
        if self.settings.prompt:
            args["prompt"] = self.settings.prompt
        try:
            segments, language = self._send(chunk, args)
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # a body that is not the API's
            raise service.BadResponse(type(e).__name__) from e
        return drop_hallucinations(segments, chunk), language

    def _send(self, chunk: Chunk, args: dict) -> tuple[list[Segment], str | None]:
        """One request, and its response read into segments relative to the chunk."""
        result = self.client.audio.transcriptions.create(**args)
        if not self.timestamps:
            text = result.text.strip()
            return ([Segment(0.0, chunk.duration, text)] if text else []), None
        segments = [Segment(float(s.start), float(s.end), s.text.strip()) for s in result.segments or []
                    if not _no_speech(s)]
        if not segments and result.text.strip() and not result.segments:  # text without segments
            segments = [Segment(0.0, chunk.duration, result.text.strip())]
        return segments, getattr(result, "language", None)


# Whisper's own rule (openai/whisper transcribe.py): a segment the model itself thinks is probably
# not speech, and is not confident about, is silence or noise.
NO_SPEECH_PROB = 0.6
LOGPROB_FLOOR = -1.0

# What Whisper writes over silence, noise or music (learned from subtitled videos).
HALLUCINATIONS = {
    "thank you", "thank you for watching", "thanks for watching", "thank you so much for watching",
    "thank you very much", "please subscribe", "like and subscribe", "subscribe to my channel",
    "subtitles by the amara org community", "subtitles by", "you", "bye", "so", "okay",
    "gracias", "gracias por ver", "gracias por ver el video", "suscríbete",
    "subtítulos realizados por la comunidad de amara org", "sous titres réalisés par la communauté d amara org",
    "untertitel der amara org community", "music", "applause",
}


def _no_speech(seg) -> bool:
    prob, logprob = getattr(seg, "no_speech_prob", None), getattr(seg, "avg_logprob", None)
    return prob is not None and logprob is not None and prob > NO_SPEECH_PROB and logprob < LOGPROB_FLOOR


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def drop_hallucinations(segments: list[Segment], chunk: Chunk) -> list[Segment]:
    """Drop the stock phrases Whisper invents over silence, when no voice is heard under them."""
    kept = []
    for seg in segments:
        if _plain(seg.text) in HALLUCINATIONS:
            a = media.pcm_bytes(max(0.0, seg.start))
            b = media.pcm_bytes(min(chunk.duration, max(seg.end, seg.start + 1.0)))
            if not media.has_speech(chunk.audio()[a:b]):
                log.info("dropped %r at %.1f s: no voice under it", seg.text, chunk.start + seg.start)
                continue
        kept.append(seg)
    return kept


BACKENDS: dict[str, Callable[..., Backend]] = {"openai": OpenAIBackend, "local": LocalBackend}


def get_backend(settings: Settings, notify: Callable[[str], None] | None = None) -> Backend:
    """The backend in force (TRANSCRIBE_BACKEND; `auto` is OpenAI with a key, else local)."""
    return BACKENDS[settings.transcribe_backend](settings, notify)


@dataclass(frozen=True)
class Progress:
    """What the pipeline reports; `segments` are the newly finished ones, in absolute time."""

    stage: str  # "preparing", "decoding", "transcribing", "done"
    seconds_done: float
    seconds_total: float | None
    chunks_done: int
    chunks_total: int | None  # None until the whole file is decoded
    segments: tuple[Segment, ...] = ()
    cached: bool = False
    chunk_index: int | None = None  # the chunk the segments belong to
    partial: bool = False  # segments of a chunk still running; its final event replaces them
    message: str | None = None  # something to tell the user (a download, a fallback model)

    @property
    def fraction(self) -> float | None:
        if not self.seconds_total:
            return None
        return min(1.0, self.seconds_done / self.seconds_total)

    def describe(self, elapsed: float) -> str:
        """One line for a person: stage, chunk k of n, and the time left once it can be told."""
        if self.message:
            return self.message
        if self.stage == "decoding":
            return "Decoding the audio…"
        if self.stage == "done":
            return "Loaded from the cache." if self.cached else "Done."
        total = f" of {self.chunks_total}" if self.chunks_total else ""
        if self.partial:
            of = f" of {format_timestamp(self.seconds_total)}" if self.seconds_total else ""
            line = f"Transcribing: {format_timestamp(self.seconds_done)}{of}"
        else:
            line = f"Transcribing: part {self.chunks_done}{total} done"
        fraction = self.fraction
        if fraction and 0.02 < fraction < 1 and elapsed > 1:
            left = elapsed * (1 - fraction) / fraction
            line += f", about {_duration(left)} left"
        return line + "…"


class LiveTranscript:
    """The transcript so far, from progress events: finished chunks replace their running text."""

    def __init__(self) -> None:
        self._by_chunk: dict[int | None, list[Segment]] = {}

    def add(self, p: Progress) -> Transcript:
        if p.partial:
            self._by_chunk.setdefault(p.chunk_index, []).extend(p.segments)
        elif p.segments:
            self._by_chunk[p.chunk_index] = list(p.segments)
        segments = sorted((s for segs in self._by_chunk.values() for s in segs), key=lambda s: s.start)
        return Transcript(segments, p.seconds_done)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Part:
    chunk: Chunk  # without its audio: only the worker sending it holds that, and only while it works
    key: str = ""  # cache key of the chunk's audio
    segments: list[Segment] = field(default_factory=list)
    done: bool = False


def transcript_key(digest: str, backend: Backend, settings: Settings) -> str:
    return make_key("transcript", digest, backend.cache_params(), settings.target_chunk_seconds,
                    settings.chunk_overlap_seconds)


def _chunk_key(chunk: Chunk, backend: Backend) -> str:
    return make_key("chunk", hashlib.sha256(chunk.pcm).hexdigest(), backend.cache_params())


def check_limits(path: Path, info: media.MediaInfo, settings: Settings) -> float:
    """Refuse, before anything is decoded, sent or paid for, what is over the configured limits."""
    size = path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        raise TooLarge(f"{path.name} is {size / 2**20:.0f} MB; the limit is {settings.max_file_mb:g} MB (MAX_FILE_MB).")
    if not info.has_audio:
        raise UnsupportedMedia(f"{path.name} has no audio track.")
    duration = info.duration if info.duration is not None else media.measure_duration(
        path, max_seconds=settings.max_duration_minutes * 60)
    if duration > settings.max_duration_minutes * 60:
        raise TooLarge(f"{path.name} is {format_timestamp(duration, hours=True)} long; the limit is "
                       f"{settings.max_duration_minutes:g} min (MAX_DURATION_MINUTES).")
    return duration


def _split_params(settings: Settings) -> dict:
    return {"target_seconds": settings.target_chunk_seconds, "window_seconds": settings.silence_window,
            "overlap_seconds": settings.chunk_overlap_seconds, "min_silence_ms": settings.min_silence_ms,
            "max_seconds": settings.max_duration_minutes * 60}  # whatever the header says


MAX_BACKOFF = 60.0  # seconds between two attempts at most: 1, 2, 4 ... 60 s rides out a few minutes
CANCEL_POLL = 0.25  # seconds between two looks at the cancel flag while waiting


class InFlight:
    """The requests one job has on the service, abandoned ones included.

    A request that timed out on our side is most likely still being worked on by a slow server:
    it keeps its place for another `linger` seconds, so its retry (or the next chunk) does not
    pile a second request on a server that is still busy with the first. A job never has more
    than `limit` requests on the server, retries included.
    """

    def __init__(self, limit: int, linger: float):
        self.limit, self.linger = limit, linger
        self._busy = 0
        self._ghosts: list[float] = []  # when each abandoned request is assumed to be over
        self._cond = threading.Condition()

    def acquire(self, cancel: threading.Event) -> bool:
        """Wait for a place; False if the job was cancelled meanwhile."""
        with self._cond:
            while not cancel.is_set():
                now = time.monotonic()
                self._ghosts = [t for t in self._ghosts if t > now]
                if self._busy + len(self._ghosts) < self.limit:
                    self._busy += 1
                    return True
                soonest = min(self._ghosts) - now if self._ghosts else CANCEL_POLL
                self._cond.wait(min(soonest, CANCEL_POLL))
            return False

    def release(self, abandoned: bool) -> None:
        with self._cond:
            self._busy -= 1
            if abandoned:
                self._ghosts.append(time.monotonic() + self.linger)
            self._cond.notify_all()


def _span(chunk: Chunk) -> str:
    return f"{format_timestamp(chunk.keep_start, hours=True)}–{format_timestamp(chunk.keep_end, hours=True)}"


def _transcribe_with_retries(backend: Backend, chunk: Chunk, settings: Settings, inflight: InFlight,
                             cancel: threading.Event, on_segment: Callable[[Segment], None] | None = None
                             ) -> tuple[list[Segment], str | None]:
    """One chunk, retried on its own. Only what the service or the network did wrong is retried
    (our own bugs are not paid for nine times), and nothing is retried once the job is cancelled."""
    model = getattr(backend, "model", settings.transcribe_model)
    span = _span(chunk)
    backoff = wait_exponential_jitter(multiplier=settings.retry_base_delay, max=MAX_BACKOFF,
                                      jitter=settings.retry_base_delay)

    def wait_for(state) -> float:
        exc = state.outcome.exception()
        asked = getattr(exc, "retry_after", None)
        if asked is not None and asked <= service.MAX_RETRY_AFTER:
            return asked
        return backoff(state)

    def attempt():
        if not inflight.acquire(cancel):
            raise Cancelled(f"Stopped before {span} was sent.")
        abandoned = False
        try:
            return backend.transcribe_chunk(chunk, on_segment)
        except (openai.OpenAIError, service.BadResponse) as e:
            abandoned = isinstance(e, openai.APITimeoutError)
            raise service.explain(e, settings, model=model, what=f"Transcribing {span}") from e
        finally:
            inflight.release(abandoned)

    retrying = Retrying(
        stop=stop_after_attempt(settings.max_retries + 1) | stop_when_event_set(cancel),
        retry=retry_if_exception(lambda e: isinstance(e, ServiceError) and e.retryable),
        wait=wait_for,
        sleep=cancel.wait,  # a cancel ends the wait at once, and the next attempt sends nothing
        reraise=True,
        before_sleep=lambda s: log.info("retrying %s (attempt %d): %s", span, s.attempt_number,
                                        s.outcome.exception()),
    )
    return retrying(attempt)


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
    path = media.check_file(Path(path))
    try:
        backend = (LocalBackend(settings, download=False) if settings.transcribe_backend == "local"
                   else get_backend(settings))
    except AppError:
        return None  # no key, or no local model yet: nothing can be cached for it
    return _cache(settings).get_transcript(transcript_key(file_digest(path), backend, settings), source=path.name)


def _cache(settings: Settings) -> Cache:
    return Cache(settings.cache_dir, max_bytes=int(settings.cache_max_mb * 2**20))


def _damage_note(name: str, duration: float, expected: float | None) -> str:
    return (f"{name} seems damaged or cut short: the transcript covers the {format_timestamp(duration)} "
            f"that could be decoded{f' of {format_timestamp(expected)}' if expected else ''}.")


def transcribe_file(path: Path, settings: Settings, on_progress: Callable[[Progress], None] | None = None,
                    *, use_cache: bool = True, backend: Backend | None = None,
                    cancel: threading.Event | None = None) -> Transcript:
    """Transcribe a recording of any length; see the module docstring. Setting `cancel` stops the
    job: nothing new is sent, what is in flight finishes and is cached, and `Cancelled` is raised."""
    path = media.check_file(Path(path))
    info = media.probe(path)
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

    def cached() -> Transcript | None:
        hit = cache.get_transcript(key, source=path.name) if use_cache else None
        if hit is not None:
            if hit.meta.get("damaged"):  # the cache keeps the fact, not the note naming someone's file
                hit.meta["notes"].append(_damage_note(path.name, hit.duration, expected))
            n = len(hit.segments)
            report(Progress("done", hit.duration, hit.duration, n, n, tuple(hit.segments), cached=True))
        return hit

    if hit := cached():
        return hit
    waiting = Progress("preparing", 0.0, info.duration, 0, None, message=WAITING_FOR_TWIN)
    with _claim(key, cancel, lambda: report(waiting)) if use_cache else nullcontext():
        if hit := cached():  # the job it waited for made it
            return hit
        transcript = _transcribe(path, info, expected, settings, backend, cache, use_cache, report, cancel, notes)
        if use_cache and not transcript.meta["cut_at_limit"]:  # a higher limit later must not get the cut one
            cache.put_transcript(key, transcript)
    return transcript


def _transcribe(path: Path, info: media.MediaInfo, expected: float, settings: Settings, backend: Backend,
                cache: Cache, use_cache: bool, report: Callable[[Progress], None], cancel: threading.Event,
                notes: list[str]) -> Transcript:
    concurrency = min(settings.concurrency, getattr(backend, "max_concurrency", settings.concurrency))
    inflight = InFlight(concurrency, linger=settings.request_timeout)
    report(Progress("decoding", 0.0, info.duration, 0, None))
    parts: list[_Part] = []
    pending: dict[Future, _Part] = {}
    failures: list[tuple[_Part, ServiceError]] = []
    fatal: list[AppError] = []
    languages: dict[str, float] = {}
    state = {"seconds": 0.0, "done": 0}
    total_chunks: list[int] = []

    def finish(part: _Part, segments: list[Segment], language: str | None, cached: bool) -> None:
        part.segments, part.done = segments, True
        if language:
            languages[language] = languages.get(language, 0.0) + part.chunk.duration
        state["seconds"] += part.chunk.keep_end - part.chunk.keep_start
        state["done"] += 1
        shown = tuple(stitch([part]))
        report(Progress("transcribing", state["seconds"], info.duration, state["done"],
                        total_chunks[0] if total_chunks else None, shown, cached, part.chunk.index))

    def partial(part: _Part) -> Callable[[Segment], None]:
        """Report a running chunk's segments as they come (the local backend makes them one by one,
        lazily, like faster-whisper: raising here on a cancel stops its work)."""
        c = part.chunk

        def on_segment(seg: Segment) -> None:
            if cancel.is_set():  # a backend that makes segments lazily stops making them
                raise Cancelled("Stopped.")
            heard = min(max(seg.end + c.start, c.keep_start), c.keep_end) - c.keep_start
            report(Progress("transcribing", state["seconds"] + heard, info.duration, state["done"],
                            total_chunks[0] if total_chunks else None, (seg.shifted(c.start),),
                            chunk_index=c.index, partial=True))

        return on_segment

    def collect(block: bool) -> None:
        if not pending:
            return
        done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            part = pending.pop(future)
            try:
                segments, language = future.result()
            except Cancelled:
                continue
            except ServiceError as e:
                if e.retryable:  # retries exhausted: stop sending, keep what finished
                    failures.append((part, e))
                else:  # bad key, no quota, unknown model: nothing else will work either
                    fatal.append(e)
                continue
            except AppError as e:
                fatal.append(e)
                continue
            except Exception as e:  # a bug of ours: said plainly, never retried
                log.info("transcribing %s failed", _span(part.chunk), exc_info=True)  # -v in the CLI
                fatal.append(AppError(f"Transcribing {_span(part.chunk)} failed with an internal error "
                                      f"({type(e).__name__}). Finished parts are saved; please report this."))
                continue
            if use_cache:
                cache.put_chunk(part.key, segments)
            finish(part, segments, language, False)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chunk")
    damage: list[str] = []
    limited: list[float] = []  # decoding stopped at MAX_DURATION_MINUTES: the header said less
    try:
        for chunk in media.iter_chunks(path, **_split_params(settings), on_damage=damage.append,
                                       on_limit=limited.append):
            if cancel.is_set():
                break
            part = _Part(replace(chunk, pcm=b""), _chunk_key(chunk, backend))
            parts.append(part)
            cached = cache.get_chunk(part.key) if use_cache else None
            if cached is not None:
                finish(part, cached, None, True)
                continue
            if media.is_silent(chunk.pcm):  # nothing to hear: nothing to send or pay for
                finish(part, [], None, False)
                continue
            chunk = backend.prepare(chunk)
            while len(pending) >= concurrency:
                collect(block=True)
            collect(block=False)
            if failures or fatal or cancel.is_set():
                break  # stop sending; what is in flight finishes and is cached
            pending[pool.submit(_transcribe_with_retries, backend, chunk, settings, inflight, cancel,
                                partial(part))] = part
        else:
            total_chunks.append(len(parts))
    except BaseException:  # Ctrl-C, or the decoder failed: stop sending and retrying
        cancel.set()
        raise
    finally:
        while pending:  # what is in flight finishes and is cached: nothing paid for is lost
            collect(block=True)
        pool.shutdown(wait=True, cancel_futures=True)

    saved = sum(p.done for p in parts)
    if fatal:
        raise fatal[0]
    if failures and not cancel.is_set():
        part, error = failures[0]
        raise TranscriptionFailed(
            f"{error} (Gave up after {settings.max_retries + 1} attempts; {saved} finished part(s) are "
            "saved, so running again sends only what is missing.)"
        )
    if cancel.is_set() and (failures or not total_chunks or saved < len(parts)):
        raise Cancelled(f"Stopped. {saved} finished part(s) are saved, so running again sends only what "
                        "is missing.")

    duration = round(parts[-1].chunk.keep_end, 3) if parts else 0.0
    damaged = bool(damage) or bool(expected and duration < expected * 0.95 - 1)
    if damaged:
        notes.append(_damage_note(path.name, duration, expected))
    if limited:
        notes.append(f"{path.name} goes on past the {settings.max_duration_minutes:g} min limit "
                     f"(MAX_DURATION_MINUTES), though its header says {format_timestamp(expected, hours=True)}: "
                     f"only the first {format_timestamp(limited[0], hours=True)} were transcribed.")
    segments = stitch(parts)
    if not segments and damage:
        raise UnsupportedMedia(f"{path.name} seems damaged: ffmpeg could not decode it cleanly "
                               f"({damage[-1][:120]}), and no speech was found in what it could read.")
    if not segments:
        raise NoSpeech(f"No speech was found in {path.name}: it seems to be silence, noise or music.")
    language = settings.language or (max(languages, key=languages.get) if languages else None)
    transcript = Transcript(segments, duration, language, getattr(backend, "model", None), path.name,
                            {"backend": backend.name, "notes": notes, "damaged": damaged,
                             "cut_at_limit": bool(limited)})
    report(Progress("done", duration, duration, len(parts), len(parts), ()))
    return transcript


@dataclass(frozen=True)
class Plan:
    duration: float
    chunks: list[tuple[float, float, bool]]  # start, end, hard cut
    estimated_cost: float | None
    cached: bool
    max_chunk_seconds: float


def plan(path: Path, settings: Settings) -> Plan:
    """What `transcribe_file` would do, without sending anything: for `info`."""
    path = media.check_file(Path(path))
    check_limits(path, media.probe(path), settings)
    chunks = [(c.start, c.end, c.keep_end < c.end) for c in media.iter_chunks(path, **_split_params(settings))]
    duration = chunks[-1][1] if chunks else 0.0
    local = settings.transcribe_backend == "local"
    price = 0.0 if local else PRICE_PER_MINUTE.get(settings.transcribe_model)
    cost = None if price is None else math.ceil(duration) / 60 * price
    cached = lookup(path, settings) is not None
    return Plan(duration, chunks, cost, cached, settings.max_chunk_seconds)
