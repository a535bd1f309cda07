"""What the pipeline reports while it works, and the transcript so far built from those reports."""

from __future__ import annotations

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

