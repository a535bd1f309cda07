"""Listening to a recording once: where someone speaks, where two do, and a voice print every
0.75 s of speech.

What is heard (`Heard`) is all that clustering needs, so it is cached: asking for another number
of speakers clusters again without decoding anything. The audio is read block by block as it is
decoded (a 3-hour recording never sits in memory). Voice detection is pyannote's segmentation
model (`segment.py`; Silero, shipped with faster-whisper, can stand in: VOICE_DETECTION), run on
blocks of BLOCK_SECONDS whose unfinished last stretch of speech is carried into the next block so
that no speech is cut at a block's edge.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from . import segment
from .voices import DIM, SAMPLE_RATE, STEP_SECONDS, WINDOW_SECONDS, windows

BLOCK_SECONDS = 60.0
# Silero's speech probability. Its default (0.5) missed 61 s of the 168 s spoken in the meeting
# excerpts (far voices); 0.2 misses 44 s (31 of them the second voice of overlapping speech, which
# no one-voice-at-a-time labelling can have) for 2.7 s heard where no one spoke; 0.15 hears more noise.
VAD_THRESHOLD = 0.2
VAD_MIN_SPEECH_MS = 250
VAD_MIN_SILENCE_MS = 500  # shorter pauses stay inside a stretch of speech (300: 4 s more missed)
# Speech kept either side of what Silero hears: the meetings' annotators count word edges as speech.
# 0 missed 11.4 s and heard 3.2 s of no one (pyannote DetectionErrorRate, collar 0.25); 100 ms misses
# 9.8 s and hears 4.0 s; 200 ms 8.5 s and 5.1 s. Longer pauses are filled in cluster.turns.
VAD_PAD_MS = 100
# Voice detection: "silero", "segmentation" (pyannote's segmentation-3.0, segment.py) or "both"
# (speech where either hears it). Overlapping speech always comes from the segmentation model.
VOICE_DETECTION = "segmentation"
SEG_MIN_SILENCE = 0.5  # seconds: shorter pauses the segmentation model hears stay inside speech
SEG_MIN_SPEECH = 0.25
SEG_PAD = 0.1  # seconds of speech kept either side, as VAD_PAD_MS
OVERLAP_MIN = 0.1  # seconds: shorter stretches of two voices are ignored
__all__ = ["Heard", "listen", "STEP_SECONDS", "WINDOW_SECONDS"]


@dataclass
class Heard:
    """Speech spans (seconds) and the voice prints found in them: `times[i]` is the middle of
    window i, `emb[i]` its unit CAM++ embedding, `span[i]` the index of the speech span it is in."""

    duration: float
    speech: np.ndarray  # (spans, 2) float: start, end
    times: np.ndarray  # (windows,) float
    span: np.ndarray  # (windows,) int
    emb: np.ndarray  # (windows, DIM) float16
    overlap: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (spans, 2): two voices at once
    voices: int = 0  # the most people the segmentation model heard speak in one 10 s window

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez_compressed(out, duration=np.array(self.duration), speech=self.speech, times=self.times,
                            span=self.span, emb=self.emb, overlap=self.overlap, voices=np.array(self.voices))
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Heard":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(float(z["duration"]), z["speech"].astype(float), z["times"].astype(float),
                       z["span"].astype(int), z["emb"].astype(np.float16),
                       z["overlap"].astype(float) if "overlap" in z.files else np.zeros((0, 2)),
                       int(z["voices"]) if "voices" in z.files else 0)


def _join(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of two lists of spans, sorted, touching spans joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(a + b):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _regions(samples: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
    """Speech spans and spans of two voices at once in `samples`, in samples (VOICE_DETECTION), and
    the most people heard in one window (segment.local_speakers)."""
    if VOICE_DETECTION == "silero":
        return _speech(samples), [], 0
    frames, most = segment.frame_scores(samples)
    per_second = SAMPLE_RATE / segment.FRAME_STEP
    heard = segment.spans(frames[:, 0] > segment.SPEECH_THRESHOLD, int(SEG_MIN_SILENCE * per_second),
                          int(SEG_MIN_SPEECH * per_second))
    speech = [segment.to_samples(a, b, len(samples), int(SEG_PAD * SAMPLE_RATE)) for a, b in heard]
    if VOICE_DETECTION == "both":
        speech = _join(speech, _speech(samples))
    two = segment.spans(frames[:, 1] > segment.OVERLAP_THRESHOLD, 0, int(OVERLAP_MIN * per_second))
    return speech, [segment.to_samples(a, b, len(samples)) for a, b in two], most


def _speech(samples: np.ndarray) -> list[tuple[int, int]]:
    """Silero's speech spans in `samples` (float, 16 kHz), in samples."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(samples) < SAMPLE_RATE // 10:
        return []
    options = VadOptions(threshold=VAD_THRESHOLD, min_speech_duration_ms=VAD_MIN_SPEECH_MS,
                         min_silence_duration_ms=VAD_MIN_SILENCE_MS, speech_pad_ms=VAD_PAD_MS)
    return [(t["start"], t["end"]) for t in get_speech_timestamps(samples, options)]


def _blocks(pcm: Iterable[bytes]) -> Iterator[np.ndarray]:
    """float32 samples in blocks of about BLOCK_SECONDS."""
    want = int(BLOCK_SECONDS * SAMPLE_RATE) * 2
    buf = bytearray()
    for piece in pcm:
        buf += piece
        while len(buf) >= want:
            yield np.frombuffer(bytes(buf[:want]), dtype=np.int16).astype(np.float32) / 32768.0
            del buf[:want]
    if len(buf) >= 2:
        yield np.frombuffer(bytes(buf[:len(buf) - len(buf) % 2]), dtype=np.int16).astype(np.float32) / 32768.0


def listen(pcm: Iterable[bytes], on_progress: Callable[[float], None] | None = None) -> Heard:
    """Speech spans, voice prints and spans of two voices of 16 kHz mono s16le PCM arriving in blocks."""
    spans: list[tuple[float, float]] = []
    times: list[np.ndarray] = []
    embs: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    two: list[tuple[float, float]] = []
    most = 0
    carry = np.zeros(0, dtype=np.float32)
    offset = 0  # samples before `carry`

    def take(samples: np.ndarray, at: int, found: list, overlaps: list, upto: int) -> None:
        """The spans of `found` and `overlaps` before `upto`, cut there (the rest is carried)."""
        for a, b in found:
            if a < upto:
                b = min(b, upto)
                t, e = windows(samples, a, b)
                times.append(t + at / SAMPLE_RATE)
                embs.append(e)
                owner.append(np.full(len(t), len(spans)))
                spans.append(((at + a) / SAMPLE_RATE, (at + b) / SAMPLE_RATE))
        two.extend(((at + a) / SAMPLE_RATE, (at + min(b, upto)) / SAMPLE_RATE) for a, b in overlaps if a < upto)
    for block in _blocks(pcm):
        samples = np.concatenate([carry, block])
        found, overlaps, local = _regions(samples)
        most = max(most, local)
        keep = len(samples)  # where the carried tail starts
        if found and found[-1][1] >= len(samples) - SAMPLE_RATE // 2:  # may go on in the next block
            keep = found[-1][0]
        keep = max(keep, len(samples) - int(BLOCK_SECONDS * SAMPLE_RATE))  # a block of speech at most is carried
        take(samples, offset, found, overlaps, keep)
        carry, offset = samples[keep:], offset + keep
        if on_progress:
            on_progress(offset / SAMPLE_RATE)
    found, overlaps, local = _regions(carry)
    take(carry, offset, found, overlaps, len(carry) + 1)
    duration = (offset + len(carry)) / SAMPLE_RATE
    cat = (lambda xs, shape, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(shape, dt))
    return Heard(duration, np.array(spans, dtype=float).reshape(-1, 2), cat(times, (0,), float),
                 cat(owner, (0,), int), cat(embs, (0, DIM), np.float16), np.array(two, float).reshape(-1, 2),
                 max(most, local))
