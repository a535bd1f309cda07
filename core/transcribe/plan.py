"""A dry run of a transcription, for `python -m core info`: how the recording would be cut, what
it would cost, and whether it is cached. Nothing is sent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..audio import decode
from ..config import Settings
from ..service.catalogue import PRICE_PER_MINUTE, model_has_timestamps
from ..service.retirement import model_in_force
from .cutting import piece_seconds, split
from .limits import check_limits
from .pipeline import lookup


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
    path = decode.check_file(Path(path))
    info = decode.probe(path)
    check_limits(path, info, settings)
    local = settings.transcribe_backend == "local"
    utterances = not local and not model_has_timestamps(model_in_force(settings))
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
    longest = piece_seconds(settings) if utterances else settings.max_chunk_seconds
    return Plan(duration, chunks, cost, cached, longest, utterances, left_out)
