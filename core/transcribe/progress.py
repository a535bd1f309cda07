"""What the pipeline reports while it works, the transcript so far built from those reports, and
the time left, told from the pace of the run."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..transcript import Segment, Transcript


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


class Eta:
    """Time left in a job, from the pace of this run's own work.

    Parts found in the cache (a resume) arrive at once and would make the work look faster
    than it is ("about 5 s left" for 30 s), so their seconds are left out of the pace, and the
    clock starts when the first request goes out. Nothing is told until `MIN_WATCH` seconds of
    real work have been seen.
    """

    MIN_WATCH = 2.0  # seconds of work before a pace is worth telling

    def __init__(self) -> None:
        self._start: float | None = None  # when the first request was sent
        self._skipped = 0.0  # seconds of audio that came from the cache after the start
        self._base = 0.0  # seconds done when the clock started
        self._last = 0.0  # seconds done at the previous event

    def update(self, p: Progress, now: float | None = None) -> float | None:
        """Seconds left after this event, or None while it cannot be told."""
        now = time.monotonic() if now is None else now
        if p.stage not in ("sending", "transcribing") or not p.seconds_total:
            return None
        if p.cached and not p.partial:
            self._skipped += max(0.0, p.seconds_done - self._last)
        self._last = max(self._last, p.seconds_done)
        if self._start is None:
            if not p.sent:
                return None
            self._start, self._base, self._skipped = now, p.seconds_done, 0.0
        worked = p.seconds_done - self._base - self._skipped
        elapsed = now - self._start
        if worked <= 0 or elapsed < self.MIN_WATCH:
            return None
        return max(0.0, p.seconds_total - p.seconds_done) * elapsed / worked
