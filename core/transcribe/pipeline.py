"""Transcription: backends, and the pipeline that runs them over a recording of any length.

The pipeline decodes the file once, sends chunks in parallel with bounded concurrency, retries
each chunk on its own, caches every finished chunk, and stitches the parts into one transcript
with absolute times.

How the file is cut depends on what the model answers. A model that returns timed segments
(whisper-1, the local Whisper) gets chunks of about CHUNK_SECONDS cut in pauses
(`media.iter_chunks`); where a server put a segment's start before the voice (Whisper without
voice detection starts one at 0.0 after music), it is moved to the voice
(`stitch.start_at_speech`).
A model that returns text only (gpt-transcribe, the gpt-4o-*transcribe models) gets utterance
pieces of at most PIECE_MAX_SECONDS (`media.iter_utterances`), and each piece's text becomes a
segment with the piece's times: every model's segments start at most 10 s before the words they
hold, so subtitles and citations come out the same whatever the model. That means many more,
shorter requests (a few hundred an hour of audio instead of twenty); silences left out are not
sent at all. Should a model that was to give times answer without them (a server that answers
without segments, a retired model's successor taking over during the job), the chunks cut for
it are cut again into pieces in the worker (`_Run.in_pieces`); a chunk that came back as one text
is paid for twice.

A chunk that still fails fails the job with its time range; what succeeded stays cached, so
running again sends only what is missing. A cancelled job (`cancel`: a closed tab, Ctrl-C) sends
nothing new and retries nothing, and what is in flight finishes and is cached too. Only what the
service or the network did wrong is retried, and never with more requests on the service than
the job's share (`InFlight`), which the service's rate limit lowers: a 429 halves the requests
in flight and holds the whole job for its Retry-After, successes raise them again one by one.
Two jobs for the same recording and settings in one process do the work once (`_claim`).

Chunks are uploaded in the UPLOAD_FORMAT (`media.UPLOAD_FORMATS`; Ogg Opus at 24 kbit/s unless
set, FLAC for lossless), encoded by the workers, and sized by duration: CHUNK_SECONDS and the
model's cap decide, and only lossless FLAC, whose worst case is the PCM itself, is held under
MAX_UPLOAD_MB by length too (`Settings.max_chunk_seconds`). The first chunks are shorter
(`FIRST_CHUNK_SECONDS`), so that the first text comes within seconds.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import openai
from tenacity import (Retrying, retry_if_exception, stop_after_attempt, stop_when_event_set,
                      wait_exponential_jitter)

from ..audio import media
from ..service import client as service
from .backends import get_backend
from .backends.base import Backend, TimesLost
from ..cache import Cache, file_digest, make_key
from ..config import Settings
from ..service.catalogue import PRICE_PER_MINUTE, model_has_timestamps
from ..errors import (
    AppError,
    Cancelled,
    NoSpeech,
    ServiceError,
    TooLarge,
    TranscriptionFailed,
    UnsupportedMedia,
)
from ..i18n import Text
from ..audio.media import Chunk
from .stitch import start_at_speech, stitch
from ..transcript import Meta, Segment, Transcript, format_timestamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """What the pipeline reports; `segments` are the newly finished ones, in absolute time."""

    stage: str  # "preparing", "decoding", "sending" (a request went out), "transcribing", "done"
    seconds_done: float
    seconds_total: float | None
    chunks_done: int
    chunks_total: int | None  # None until the whole file is decoded
    segments: tuple[Segment, ...] = ()
    cached: bool = False
    chunk_index: int | None = None  # the chunk the segments belong to
    partial: bool = False  # segments of a chunk still running; its final event replaces them
    message: str | None = None  # something to tell the user (a download, a fallback model)
    sent: int = 0  # requests sent so far in this run (0: nothing has gone to the service yet)

    @property
    def fraction(self) -> float | None:
        if not self.seconds_total:
            return None
        return min(1.0, self.seconds_done / self.seconds_total)


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


@dataclass
class _Part:
    chunk: Chunk  # without its audio: only the worker sending it holds that, and only while it works
    key: str = ""  # cache key of the chunk's audio
    segments: list[Segment] = field(default_factory=list)
    done: bool = False


def by_utterance(backend: Backend) -> bool:
    """Whether the backend's answers have no times of their own, so the file is cut into utterance
    pieces whose times are the segments' (see the module docstring)."""
    return not backend.timestamps


def _fixes_starts(backend: Backend) -> bool:
    """Whether segment starts are moved to the voice: the backend's segments are timed by a server
    that may start one before it (Whisper without voice detection starts one at 0.0 after music)."""
    return backend.timestamps and not backend.starts_at_voice


# What decides the pieces, in the transcript key: a change makes a new transcript, never a mix.
UTTERANCE_CUTS = ("utterances", media.PIECE_MAX_SECONDS, media.GAP_MIN_SECONDS, media.VAD_PAUSE_MS,
                  media.PIECE_OVERLAP_SECONDS)


def transcript_key(digest: str, backend: Backend, settings: Settings) -> str:
    if by_utterance(backend):
        return make_key("transcript", digest, backend.cache_params(), *UTTERANCE_CUTS,
                        _piece_seconds(settings), settings.min_silence_ms)
    return make_key("transcript", digest, backend.cache_params(), settings.target_chunk_seconds,
                    settings.chunk_overlap_seconds, *_ramp(settings))


def _chunk_key(chunk: Chunk, backend: Backend) -> str:
    return make_key("chunk", hashlib.sha256(chunk.pcm).hexdigest(), backend.cache_params())


def check_limits(path: Path, info: media.MediaInfo, settings: Settings) -> float:
    """Refuse, before anything is decoded, sent or paid for, what is over the configured limits."""
    size = path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        raise TooLarge("{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).",
                       name=path.name, mb=size / 2**20, limit=settings.max_file_mb)
    if not info.has_audio:
        raise UnsupportedMedia("{name} has no audio track.", name=path.name)
    duration = info.duration if info.duration is not None else media.measure_duration(
        path, max_seconds=settings.max_duration_minutes * 60)
    if duration > settings.max_duration_minutes * 60:
        raise TooLarge("{name} is {duration} long; the limit is {limit:g} min (MAX_DURATION_MINUTES).",
                       name=path.name, duration=format_timestamp(duration, hours=True),
                       limit=settings.max_duration_minutes)
    return duration


# The first chunk is short and each next one twice as long, up to CHUNK_SECONDS (30, 60, 120,
# 180, 180 ... s), and the last ones short again, each at most half of what is left: at 30x real
# time plus 0.5 s a request, a 30 s chunk is back in about 1.5 s where a 180 s one takes 6.5 s, so
# the first text shows within seconds, and the job does not wait 6.5 s for the last chunk after
# the whole file is decoded. The ramps cost about six requests.
FIRST_CHUNK_SECONDS = 30.0


def _ramp(settings: Settings) -> tuple:
    """What the ramps change in the cutting, for the transcript key (nothing when chunks are short)."""
    first = _first_seconds(settings)
    return () if first is None else ("ramps", first)


def _first_seconds(settings: Settings) -> float | None:
    return FIRST_CHUNK_SECONDS if settings.target_chunk_seconds > FIRST_CHUNK_SECONDS else None


def _split_params(settings: Settings) -> dict:
    return {"target_seconds": settings.target_chunk_seconds, "window_seconds": settings.silence_window,
            "overlap_seconds": settings.chunk_overlap_seconds, "min_silence_ms": settings.min_silence_ms,
            "max_seconds": settings.max_duration_minutes * 60,  # whatever the header says
            "first_seconds": _first_seconds(settings)}


def _piece_seconds(settings: Settings) -> float:
    """Longest utterance piece: PIECE_MAX_SECONDS, or less if a request may carry less."""
    return min(media.PIECE_MAX_SECONDS, settings.max_chunk_seconds)


def _utterance_params(settings: Settings) -> dict:
    return {"min_silence_ms": settings.min_silence_ms, "max_piece_seconds": _piece_seconds(settings),
            "max_seconds": settings.max_duration_minutes * 60}


def split(path: Path, settings: Settings, utterances: bool, expected: float | None = None,
          **callbacks) -> Iterator[Chunk]:
    """The chunks of `path`: utterance pieces and the silences left out between them, or chunks
    of about CHUNK_SECONDS (see the module docstring), the last ones shorter if the recording is
    `expected` to last that long (its header's word: a wrong one changes only where cuts fall)."""
    if utterances:
        return media.iter_utterances(path, **_utterance_params(settings), **callbacks)
    return media.iter_chunks(path, **_split_params(settings), expected_seconds=expected, **callbacks)


MAX_BACKOFF = 60.0  # seconds between two attempts at most: 1, 2, 4 ... 60 s rides out a few minutes
CANCEL_POLL = 0.25  # seconds between two looks at the cancel flag while waiting


class InFlight:
    """The requests one job has on the service, abandoned ones included, and how many it may have.

    A request that timed out on our side is most likely still being worked on by a slow server:
    it keeps its place for another `linger` seconds, so its retry (or the next chunk) does not
    pile a second request on a server that is still busy with the first. A job never has more
    than `limit` requests on the server, retries included.

    The limit follows the service's rate limit (additive increase, multiplicative decrease, as TCP
    does with a congested link): a 429 halves it, once for all the requests that were already on
    their way when it came (their 429s are the same news), and holds every request of the job, not
    only the refused one, for as long as Retry-After says. When that hold ends, one request goes
    alone, and the others only once it has succeeded: a burst into a window that has just room for
    one would be refused, and the service counts refused requests against the limit too.
    Better still, a service that says with each answer what is left of the account's requests a
    minute (OpenAI's x-ratelimit headers: `budget`) is not sent more than that: once it is used
    up, nothing goes until the limit is whole again, then one request asks and its count lets the
    others go, so the account's limit is met without a refusal after the first answers. Once a
    whole rate-limit window (the longest Retry-After seen) has passed without a 429, each `limit`
    successes raise the limit by one, up to `ceiling` (TRANSCRIBE_CONCURRENCY). Places are given in
    the order of the chunks, so a retry goes before later chunks and the transcript fills in from
    the start.
    """

    def __init__(self, limit: int, linger: float):
        self.ceiling = self.limit = self.lowest = limit
        self.linger = linger
        self.throttled_count = 0  # 429s seen
        self._busy = 0
        self._ghosts: list[float] = []  # when each abandoned request is assumed to be over
        self._hold_until = 0.0  # nothing is sent before this (time.monotonic()): Retry-After
        self._round = 0  # one more at each decrease or hold: a request remembers the round it was sent in
        self._successes = 0  # of requests sent in this round, since the limit last changed
        self._probing = False  # after a hold: one request at a time until one succeeds
        self._throttled_at = float("-inf")  # time.monotonic() of the last 429
        self._window = 0.0  # the service's rate-limit window, as far as its Retry-After tells (s)
        self._left: int | None = None  # requests the service's last word leaves us; None: not known
        self._whole: int | None = None  # the room expected once a hold for a used-up limit ends
        self._sent = 0  # requests sent so far: each is numbered, to know what was sent after which
        self._mine = threading.local()  # the number of the request this worker thread has on its way
        self._numbers: set[int] = set()  # of the requests on their way
        self._limit_seen: int | None = None  # the service's limit of requests, as its answers say
        self._counted = 0  # the number of the latest request whose answer gave the service's count
        self._waiting: list[tuple[int, int]] = []  # (order, arrival) of the requests waiting, a heap
        self._arrivals = 0
        self._cond = threading.Condition()

    def acquire(self, cancel: threading.Event, order: int = 0) -> int | None:
        """Wait for a place, the lowest `order` first; the round the request goes in, or None if
        the job was cancelled meanwhile."""
        with self._cond:
            me = (order, self._arrivals)
            self._arrivals += 1
            heapq.heappush(self._waiting, me)
            try:
                while not cancel.is_set():
                    now = time.monotonic()
                    self._ghosts = [t for t in self._ghosts if t > now]
                    if self._whole is not None and self._left == 0 and now >= self._hold_until:
                        # The limit should be whole again, but a request sent before the counted one
                        # may have reached the service after it: one goes alone and asks.
                        self._left, self._probing = None, True
                    free = self._busy + len(self._ghosts) < (1 if self._probing else self.limit)
                    if self._left is not None and self._left <= 0:
                        free = False  # the answers in flight will say more
                    if self._waiting[0] == me and free and now >= self._hold_until:
                        self._busy += 1
                        if self._left is not None:
                            self._left -= 1
                        self._sent += 1
                        self._mine.number = self._sent
                        self._numbers.add(self._sent)
                        return self._round
                    soonest = min(self._ghosts) - now if self._ghosts else CANCEL_POLL
                    if now < self._hold_until:
                        soonest = self._hold_until - now
                    self._cond.wait(max(0.0, min(soonest, CANCEL_POLL)))
                return None
            finally:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._cond.notify_all()

    def release(self, abandoned: bool) -> None:
        with self._cond:
            self._busy -= 1
            self._numbers.discard(getattr(self._mine, "number", None))
            if abandoned:
                self._ghosts.append(time.monotonic() + self.linger)
            if self._busy == 0 and self._whole is None and self._left is not None and self._left <= 0:
                self._left, self._probing = None, True  # no answer is left to tell: one goes to ask
            self._cond.notify_all()

    def budget(self, seen: service.Budget) -> None:
        """The service's count of the account's requests when the request this worker thread has
        on its way reached it, with its answer (the request still holds its place). What was
        sent after it is not in that count, nor perhaps what was sent before it and is still
        unanswered (requests sent together reach the service in any order): both are taken from
        what the count leaves. The count of the latest request answered is the one in force: an older
        request's answer, coming last, is older news (and a newer one may show room the window has
        freed since). Nothing left: nothing more is sent until the limit is whole again (`reset`);
        then the whole limit, less what was sent after the counted request, is expected, and one
        request goes alone first: its count lets the others go."""
        with self._cond:
            self._limit_seen = seen.limit
            mine = getattr(self._mine, "number", self._sent)
            if mine < self._counted:
                return
            self._counted = mine
            # Sent after it: not counted. Sent before it and still unanswered: maybe not counted
            # either, as requests sent together can reach the service in any order.
            later = self._sent - mine + sum(1 for n in self._numbers if n < mine)
            self._left = seen.remaining - later
            if self._left <= 0 and seen.reset > 0:
                now = time.monotonic()
                if now >= self._hold_until:  # said once a hold
                    log.info("rate limit: the service's %d requests used up, next in %.1f s", seen.limit, seen.reset)
                self._hold_until = max(self._hold_until, now + seen.reset)
                self._left, self._whole = 0, max(1, seen.limit - later)
                self._round += 1  # answers to what was sent before this tell nothing new
            elif self._left <= 0 and self._busy <= 1:
                self._left = None  # used up, and no word of when: the service's 429 will say
            elif self._left > 0:
                self._whole = None  # room, as a later count says: no longer a guess
            self._cond.notify_all()

    def room(self) -> tuple[int, int] | None:
        """What the service has room for, as its answers say: the requests that may go now (or as
        soon as a hold ends) and are not already waiting for a place, and its whole limit. None
        when it has not said."""
        with self._cond:
            left = self._left if self._left is not None else self._whole
            if self._limit_seen is None or left is None:
                return None
            return left - len(self._waiting), self._limit_seen

    def succeeded(self, sent_in: int) -> None:
        """A request of round `sent_in` was answered (those sent before the last 429 tell nothing
        about the room the service has now)."""
        with self._cond:
            if sent_in != self._round:
                return
            if self._probing:
                self._probing = False
                self._cond.notify_all()
            self._successes += 1
            calm = time.monotonic() - self._throttled_at >= self._window
            if self._successes >= self.limit and calm and self.limit < self.ceiling:
                self.limit += 1
                self._successes = 0
                log.info("rate limit: up to %d requests at once", self.limit)
                self._cond.notify_all()

    def throttled(self, sent_in: int, retry_after: float | None) -> None:
        """The service answered a request of round `sent_in` with 429 (rate limited)."""
        with self._cond:
            self.throttled_count += 1
            self._successes = 0
            self._throttled_at = time.monotonic()
            if retry_after is not None and retry_after <= service.MAX_RETRY_AFTER:
                self._hold_until = max(self._hold_until, self._throttled_at + retry_after)
                self._window = max(self._window, retry_after)
                self._probing, self._left, self._whole = True, None, None
            if sent_in == self._round:  # the first news of this round: later ones are the same news
                self._round += 1
                self.limit = max(1, self.limit // 2)
                self.lowest = min(self.lowest, self.limit)
                log.info("rate limited (429): %d requests at once now, holding %.1f s", self.limit,
                         max(0.0, self._hold_until - time.monotonic()))


def _span(chunk: Chunk) -> str:
    return f"{format_timestamp(chunk.keep_start, hours=True)}–{format_timestamp(chunk.keep_end, hours=True)}"


def _one_text(segments: list[Segment], chunk: Chunk) -> bool:
    """Whether a backend made one segment of the whole chunk, as it does for an answer without
    times (a Whisper segment never spans a chunk longer than a piece exactly)."""
    return (len(segments) == 1 and segments[0].start == 0.0 and chunk.duration > media.PIECE_MAX_SECONDS
            and abs(segments[0].end - chunk.duration) < 1e-6)


def _transcribe_with_retries(backend: Backend, chunk: Chunk, settings: Settings, inflight: InFlight,
                             cancel: threading.Event, on_segment: Callable[[Segment], None] | None = None
                             ) -> tuple[list[Segment], str | None]:
    """One chunk, retried on its own. Only what the service or the network did wrong is retried
    (our own bugs are not paid for nine times), and nothing is retried once the job is cancelled."""
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
        sent_in = inflight.acquire(cancel, chunk.index)
        if sent_in is None:
            raise Cancelled("Stopped before {span} was sent.", span=span)
        abandoned = False
        try:
            result = backend.transcribe_chunk(chunk, on_segment)
            inflight.succeeded(sent_in)
            return result
        except (openai.OpenAIError, service.BadResponse) as e:
            abandoned = isinstance(e, openai.APITimeoutError)
            model = backend.model  # the one in force, after a switch
            error = service.explain(e, settings, model=model, what=Text("Transcribing {span}", span=span))
            if isinstance(e, openai.RateLimitError) and error.retryable:  # not an exhausted quota
                inflight.throttled(sent_in, error.retry_after)
            raise error from e
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
        backend = get_backend(settings, download=False)
    except AppError:
        return None  # no key, or no local model yet: nothing can be cached for it
    key = transcript_key(file_digest(path), backend, settings)
    hit = _cache(settings).get_transcript(key, source=path.name)
    if hit is not None:
        hit.meta.id = key
    return hit


def by_id(transcript_id: str, settings: Settings, source: str | None = None) -> Transcript | None:
    """A cached transcript by its id (`meta.id`, its cache key: a sha256 of the recording's
    content and the settings, which nobody can guess without the recording). Anything that is
    not such an id finds nothing."""
    if not isinstance(transcript_id, str) or not re.fullmatch(r"[0-9a-f]{64}", transcript_id):
        return None
    hit = _cache(settings).get_transcript(transcript_id, source=source)
    if hit is not None:
        hit.meta.id = transcript_id
    return hit


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
            if hit.meta.damaged:  # the cache keeps the fact, not the note naming someone's file
                hit.meta.notes.append(_damage_note(path.name, hit.duration, expected))
            hit.meta.id = key
            n = len(hit.segments)
            report(Progress("done", hit.duration, hit.duration, n, n, tuple(hit.segments), cached=True))
        return hit

    if hit := cached():
        return hit
    waiting = Progress("preparing", 0.0, info.duration, 0, None, message=WAITING_FOR_TWIN)
    with _claim(key, cancel, lambda: report(waiting)) if use_cache else nullcontext():
        if hit := cached():  # the job it waited for made it
            return hit
        run = _Run(path, info, settings, backend, cache, use_cache, report, cancel)
        run.send()
        transcript = run.result(expected, notes)
        if use_cache and not transcript.meta.cut_at_limit:  # a higher limit later must not get the cut one
            cache.put_transcript(key, transcript)
            transcript.meta.id = key
    return transcript


ENCODE_AHEAD = 4  # chunks decoded but not yet encoded at most: the decoder waits for the encoders


class _Run:
    """One transcription of one file: owns its pool, its stop flag and what it has done so far.

    `send` decodes the file, hands each chunk to a worker (cached and silent chunks, and silences
    left out, need none),
    and stops sending at the first hopeless failure or a cancel; whatever happens, the requests
    in flight finish and are cached. `result` stitches the parts or says what went wrong.
    """

    def __init__(self, path: Path, info: media.MediaInfo, settings: Settings, backend: Backend, cache: Cache,
                 use_cache: bool, report: Callable[[Progress], None], cancel: threading.Event):
        self.path, self.info, self.settings, self.backend = path, info, settings, backend
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
                log.info("transcribing %s failed", _span(part.chunk), exc_info=True)  # -v in the CLI
                self.fatal.append(AppError("Transcribing {span} failed with an internal error ({error}). Finished "
                                           "parts are saved; please report this.", span=_span(part.chunk),
                                           error=type(e).__name__))
                continue
            if self.use_cache:
                self.cache.put_chunk(part.key, segments)
            self.finish(part, segments, language, False)

    def send(self) -> None:
        self.report(Progress("decoding", 0.0, self.info.duration, 0, None))
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
        part = _Part(replace(chunk, pcm=b""), _chunk_key(chunk, self.backend))
        self.parts.append(part)
        cached = self.cache.get_chunk(part.key) if self.use_cache else None
        if cached is not None:
            self.finish(part, cached, None, True)
            return True
        if media.is_silent(chunk.pcm):  # nothing to hear: nothing to send or pay for
            self.finish(part, [], None, False)
            return True
        while len(self.pending) >= self.concurrency:
            self.collect(block=True)
        while not self.unencoded.acquire(timeout=CANCEL_POLL):  # the workers encode slower than we decode
            self.collect(block=False)
            if self.cancel.is_set():
                return False
        self.collect(block=False)
        if self.failures or self.fatal or self.cancel.is_set():
            self.unencoded.release()
            return False  # stop sending; what is in flight finishes and is cached
        with self._encoding_lock:
            self.encoding += 1
        future = pool.submit(self.transcribe, chunk, self.on_segment(part))
        self.pending[future] = part
        self.sent += 1
        self.report(Progress("sending", self.seconds, self.info.duration, self.saved, self.total,
                             sent=self.sent))
        return True

    def transcribe(self, chunk: Chunk, on_segment: Callable[[Segment], None]) -> tuple[list[Segment], str | None]:
        """One chunk, in a worker: encoded for upload (here, not in the thread that decodes: Opus
        takes a core for about 12 s an hour of audio, two encoders run beside the decoder), then
        its segments (starts moved to the voice where a server put them before it) and language.

        The chunk's PCM is kept while it is in flight only where segment starts are checked:
        decoding an Opus upload again would cost about 0.4 s of CPU for 3 minutes, as much as
        encoding it. Elsewhere a chunk in flight holds only what it sends."""
        recut = self.recut(chunk)
        try:
            upload = chunk if recut else self.backend.prepare(chunk)
        finally:
            self.unencoded.release()
            with self._encoding_lock:
                self.encoding -= 1
        if recut:
            return self.in_pieces(chunk)
        heard = chunk if self.fix_starts else upload  # what the audio is read from after the answer
        try:
            segments, language = _transcribe_with_retries(self.backend, upload, self.settings, self.inflight,
                                                          self.cancel, on_segment)
        except TimesLost:  # a successor without times took over before this chunk was sent
            return self.in_pieces(heard)
        if not self.utterances and _one_text(segments, heard):  # no times: a piece's text gets the piece's
            self.untimed = True
            log.info("%s came back as one text: sending it again in utterance pieces", _span(heard))
            return self.in_pieces(heard)
        if self.fix_starts:
            segments = start_at_speech(segments, heard.audio)
        return segments, language

    def recut(self, chunk: Chunk) -> bool:
        """Whether a chunk cut for a model that gives times goes to one that does not after all: a
        retired model's successor took over during the job (the backend's `timestamps` changed),
        or the server answers without segments."""
        untimed = self.untimed or by_utterance(self.backend)
        return not self.utterances and untimed and chunk.duration > _piece_seconds(self.settings)

    def in_pieces(self, chunk: Chunk) -> tuple[list[Segment], str | None]:
        """The chunk cut again into utterance pieces, sent one after the other from this worker
        (the other workers carry on meanwhile), and their segments joined in the chunk's time."""
        parts, language = [], None
        for piece in media.utterances_in(chunk.audio(), min_silence_ms=self.settings.min_silence_ms,
                                         max_piece_seconds=_piece_seconds(self.settings)):
            if piece.gap or media.is_silent(piece.pcm):
                continue
            upload = self.backend.prepare(replace(piece, index=chunk.index))
            segments, heard = _transcribe_with_retries(self.backend, upload, self.settings, self.inflight, self.cancel)
            parts.append(_Part(piece, segments=segments))
            language = language or heard
        return stitch(parts), language

    def result(self, expected: float, notes: list[str]) -> Transcript:
        if self.fatal:
            raise self.fatal[0]
        if self.failures and not self.cancel.is_set():
            error = self.failures[0][1]
            raise TranscriptionFailed(
                "{error} (Gave up after {attempts} attempts; {saved} finished part(s) are saved, so running again "
                "sends only what is missing.)", error=error.text, attempts=self.settings.max_retries + 1,
                saved=self.saved)
        if self.cancel.is_set() and (self.failures or self.total is None or self.saved < len(self.parts)):
            raise Cancelled("Stopped. {saved} finished part(s) are saved, so running again sends only what is "
                            "missing.", saved=self.saved)
        name = self.path.name
        duration = round(self.parts[-1].chunk.keep_end, 3) if self.parts else 0.0
        damaged = bool(self.damage) or bool(expected and duration < expected * 0.95 - 1)
        if damaged:
            notes.append(_damage_note(name, duration, expected))
        if self.limited:
            notes.append(f"{name} goes on past the {self.settings.max_duration_minutes:g} min limit "
                         f"(MAX_DURATION_MINUTES), though its header says {format_timestamp(expected, hours=True)}: "
                         f"only the first {format_timestamp(self.limited[0], hours=True)} were transcribed.")
        segments = stitch(self.parts)
        if not segments and self.damage:
            raise UnsupportedMedia("{name} seems damaged: ffmpeg could not decode it cleanly ({detail}), and no "
                                   "speech was found in what it could read.", name=name, detail=self.damage[-1][:120])
        if not segments:
            raise NoSpeech("No speech was found in {name}: it seems to be silence, noise or music.", name=name)
        languages = self.languages
        language = self.settings.language or (max(languages, key=languages.get) if languages else None)
        transcript = Transcript(segments, duration, language, self.backend.model, name,
                                Meta(backend=self.backend.name, notes=notes, damaged=damaged,
                                     cut_at_limit=bool(self.limited)))
        self.report(Progress("done", duration, duration, len(self.parts), len(self.parts), ()))
        return transcript


@dataclass(frozen=True)
class Plan:
    duration: float
    chunks: list[tuple[float, float, bool]]  # start, end, hard cut: what would be sent
    estimated_cost: float | None
    cached: bool
    max_chunk_seconds: float
    utterances: bool = False  # cut into utterance pieces: the model answers without times
    left_out_seconds: float = 0.0  # silence not sent


def plan(path: Path, settings: Settings) -> Plan:
    """What `transcribe_file` would do, without sending anything: for `info`. The cutting is the
    one the configured model calls for (`model_has_timestamps`); a backend that finds out
    otherwise when it starts (a model switched for its successor) cuts as that one needs."""
    path = media.check_file(Path(path))
    info = media.probe(path)
    check_limits(path, info, settings)
    local = settings.transcribe_backend == "local"
    utterances = not local and not model_has_timestamps(service.model_in_force(settings))
    chunks, duration, left_out = [], 0.0, 0.0
    for c in split(path, settings, utterances, info.duration):  # one at a time: only the times are kept
        duration = c.keep_end
        if c.gap:
            left_out += c.duration
        else:
            chunks.append((c.start, c.end, c.keep_end < c.end))
    price = 0.0 if local else PRICE_PER_MINUTE.get(settings.transcribe_model)
    cost = None if price is None else math.ceil(duration - left_out) / 60 * price
    cached = lookup(path, settings) is not None
    longest = _piece_seconds(settings) if utterances else settings.max_chunk_seconds
    return Plan(duration, chunks, cost, cached, longest, utterances, left_out)
