"""What the pipeline needs of a transcription backend: one small Protocol, and what a backend
may raise besides the service's errors."""

from __future__ import annotations

from typing import Callable, Protocol

from ...audio.chunking import Chunk
from ...service.client import Budget
from ...transcript import Segment


class Backend(Protocol):
    name: str  # "openai", "local": recorded in the transcript and its cache key
    model: str  # the model in force (it may change during a job: a retired model's successor)
    timestamps: bool  # answers carry segment times; False: the recording is cut into utterance pieces
    # Segments start where the voice does (the backend runs voice detection itself). False: a
    # server's segments, which may start before the voice, so the pipeline moves their starts.
    starts_at_voice: bool
    max_in_flight: int | None  # requests it takes at once at most; None: as many as the settings allow
    # Set by the pipeline: told, with each answer, what the service says is left of the account's
    # requests a minute. A backend without a rate limit never calls it.
    on_budget: Callable[[Budget], None] | None

    # Optional: `warm()`, called as a job starts, readies what the first chunk will need.

    def cache_params(self) -> dict:
        """Everything about this backend that changes what a chunk transcribes to."""

    def prepare(self, chunk: Chunk) -> Chunk:
        """The chunk as the backend will send it (runs in a worker, before it waits for its turn)."""

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        """Segments with times relative to the chunk, and the language if known. A backend that
        produces segments one by one also hands each to `on_segment` as it comes."""


class TimesLost(Exception):
    """The model that took over gives no timestamps: a chunk cut for one that does is not sent as
    it is, or it would be paid for twice (whole, then in the utterance pieces it needs)."""
