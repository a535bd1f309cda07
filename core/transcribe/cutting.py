"""How a recording is cut into what is sent, which depends on what the model answers.

A model that returns timed segments (whisper-1, the local Whisper) gets chunks of about
CHUNK_SECONDS cut in pauses (`chunking.iter_chunks`). A model that returns text only
(gpt-transcribe, the gpt-4o-*transcribe models) gets utterance pieces of at most
PIECE_MAX_SECONDS (`chunking.iter_utterances`), each piece's text becoming a segment with the
piece's times, so every model's segments start at most 10 s before the words they hold; the
silences between pieces are not sent at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..audio import chunking
from ..audio.chunking import Chunk
from ..config import Settings
from .backends.base import Backend

# The first chunk is short and each next one twice as long, up to CHUNK_SECONDS (30, 60, 120,
# 180, 180 ... s), and the last ones short again, each at most half of what is left: at 30x real
# time plus 0.5 s a request, a 30 s chunk is back in about 1.5 s where a 180 s one takes 6.5 s, so
# the first text shows within seconds, and the job does not wait 6.5 s for the last chunk after
# the whole file is decoded. The ramps cost about six requests.
FIRST_CHUNK_SECONDS = 30.0


def by_utterance(backend: Backend) -> bool:
    """Whether the backend's answers have no times of their own, so the file is cut into utterance
    pieces whose times are the segments'."""
    return not backend.timestamps


def ramp(settings: Settings) -> tuple:
    """What the ramps change in the cutting, for the transcript key (nothing when chunks are short)."""
    first = first_seconds(settings)
    return () if first is None else ("ramps", first)


def first_seconds(settings: Settings) -> float | None:
    return FIRST_CHUNK_SECONDS if settings.target_chunk_seconds > FIRST_CHUNK_SECONDS else None


def _split_params(settings: Settings) -> dict:
    return {"target_seconds": settings.target_chunk_seconds, "window_seconds": settings.silence_window,
            "overlap_seconds": settings.chunk_overlap_seconds, "min_silence_ms": settings.min_silence_ms,
            "max_seconds": settings.max_duration_minutes * 60,  # whatever the header says
            "first_seconds": first_seconds(settings)}


def piece_seconds(settings: Settings) -> float:
    """Longest utterance piece: PIECE_MAX_SECONDS, or less if a request may carry less."""
    return min(chunking.PIECE_MAX_SECONDS, settings.max_chunk_seconds)


def _utterance_params(settings: Settings) -> dict:
    return {"min_silence_ms": settings.min_silence_ms, "max_piece_seconds": piece_seconds(settings),
            "max_seconds": settings.max_duration_minutes * 60}


def split(path: Path, settings: Settings, utterances: bool, expected: float | None = None,
          **callbacks) -> Iterator[Chunk]:
    """The chunks of `path`: utterance pieces and the silences left out between them, or chunks
    of about CHUNK_SECONDS, the last ones shorter if the recording is `expected` to last that long
    (its header's word: a wrong one changes only where cuts fall). Chunks are sized by duration:
    CHUNK_SECONDS and the model's cap decide, and only lossless FLAC uploads, whose worst case is
    the PCM itself, are held under MAX_UPLOAD_MB by length too (`Settings.max_chunk_seconds`)."""
    if utterances:
        return chunking.iter_utterances(path, **_utterance_params(settings), **callbacks)
    return chunking.iter_chunks(path, **_split_params(settings), expected_seconds=expected, **callbacks)
