"""Who is speaking, frame by frame, without knowing who: pyannote's segmentation-3.0 over 10 s windows.

The model (ONNX, converted without torch by scripts/convert_segmentation.py; see models/NOTICE)
reads 10 s of 16 kHz audio and gives, every 16.875 ms, the probabilities of 7 classes: no one,
one of three local speakers, or two of them at once. The windows slide by STEP_SECONDS; each
frame's probabilities are averaged over the windows that cover it, weighted by a Hamming window
(a window's edges, with context on one side only, count less), as pyannote.audio aggregates them.
What is kept per frame is the probability that someone speaks and that two people do: voice
detection, and where a second speaker is to be added to the turns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .voices import OnnxModel

SAMPLE_RATE = 16000
MODEL = Path(__file__).resolve().parent / "models" / "segmentation.onnx"
WINDOW = 10 * SAMPLE_RATE  # samples the model was trained on
FRAME_STEP = 270  # samples between output frames (16.875 ms), from SincNet's strides (10 * 3 * 3 * 3)
FRAME_SIZE = 991  # samples one frame hears (61.9 ms): frame i is centred at i * FRAME_STEP + FRAME_SIZE // 2
# Windows start every STEP_SECONDS. pyannote uses 1 s (10 looks at each frame); 5 s (2 looks, the
# second from another context) was measured against 2.5 s in bench/diarization.py (see RESULTS).
STEP_SECONDS = 5.0
BATCH = 4
# A frame is speech when the averaged P(someone speaks) is above this, two voices when P(two) is.
# Measured on the meeting excerpts (bench/diarization.py, pooled DER): speech 0.5 0.270, 0.4 0.253,
# 0.35 0.246, 0.3 0.247 (but 2 speakers found in trn01, where no one talks 2 s); two voices at 0.3
# (precision 0.97, recall 0.49 of the reference's overlap; 0.5: 0.99, 0.38) with speech 0.4: 0.247.
SPEECH_THRESHOLD = 0.4
OVERLAP_THRESHOLD = 0.3
_TWO = [4, 5, 6]  # the powerset classes {1,2}, {1,3}, {2,3}
_EACH = [[1, 4, 5], [2, 4, 6], [3, 5, 6]]  # the classes in which local speaker 1, 2, 3 speaks
# A local speaker counts as a person of the recording when they speak this long in one window.
LOCAL_SECONDS = 1.5  # (bench, pooled DER: 2.0 0.240, 1.5 0.227, 1.0 0.228 with 2 found where 1 talks)


class Segmenter(OnnxModel):
    """The ONNX segmentation model."""

    @classmethod
    def model_path(cls) -> Path:
        return MODEL

    @classmethod
    def probabilities(cls, chunks: np.ndarray) -> np.ndarray:
        """(windows, frames, 7) class probabilities of (windows, WINDOW) samples."""
        out = [cls.session().run(None, {"waveform": np.ascontiguousarray(chunks[i:i + BATCH, None], np.float32)})[0]
               for i in range(0, len(chunks), BATCH)]
        return np.exp(np.concatenate(out))


def _starts(n: int, step: int) -> list[int]:
    """Window starts over n samples: every `step`, and one more ending at the end."""
    if n <= WINDOW:
        return [0]
    starts = list(range(0, n - WINDOW + 1, step))
    if starts[-1] != n - WINDOW:
        starts.append(n - WINDOW)
    return starts


def local_speakers(p: np.ndarray) -> int:
    """How many of a window's three local speakers speak LOCAL_SECONDS or more in it."""
    seconds = np.stack([p[:, k].sum(axis=1) for k in _EACH], axis=1).sum(axis=0) * FRAME_STEP / SAMPLE_RATE
    return int((seconds >= LOCAL_SECONDS).sum())


def frame_scores(samples: np.ndarray, step_seconds: float = STEP_SECONDS) -> tuple[np.ndarray, int]:
    """(frames, 2) P(someone speaks), P(two speak) for frames every FRAME_STEP samples of `samples`,
    averaged over the sliding windows (Hamming-weighted); and the most local speakers in one window
    (`local_speakers`): a floor for how many people the recording has."""
    n = len(samples)
    frames = max(0, (n - FRAME_SIZE) // FRAME_STEP + 1)
    total = np.zeros((frames, 2), np.float64)
    weight = np.zeros(frames, np.float64)
    if frames == 0:
        return total.astype(np.float32), 0
    starts = _starts(n, int(step_seconds * SAMPLE_RATE))
    chunks = np.zeros((len(starts), WINDOW), np.float32)
    for i, s in enumerate(starts):
        piece = samples[s:s + WINDOW]
        chunks[i, :len(piece)] = piece
    hamming, most = None, 0
    for i in range(0, len(starts), BATCH):
        probs = Segmenter.probabilities(chunks[i:i + BATCH])
        if hamming is None:
            hamming = np.hamming(probs.shape[1])
        for s, p in zip(starts[i:i + BATCH], probs):
            most = max(most, local_speakers(p))
            first = int(round(s / FRAME_STEP))
            take = min(len(p), frames - first)
            both = np.stack([1.0 - p[:take, 0], p[:take, _TWO].sum(axis=1)], axis=1)
            total[first:first + take] += both * hamming[:take, None]
            weight[first:first + take] += hamming[:take]
    return (total / np.maximum(weight, 1e-12)[:, None]).astype(np.float32), most


def spans(active: np.ndarray, min_gap: int = 0, min_length: int = 0) -> list[tuple[int, int]]:
    """[start, end) frame spans where `active` holds, gaps up to `min_gap` frames filled, spans shorter
    than `min_length` frames dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    out: list[tuple[int, int]] = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()):
        if out and a - out[-1][1] <= min_gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return [(a, b) for a, b in out if b - a >= min_length]


def to_samples(a: int, b: int, n: int, pad: int = 0) -> tuple[int, int]:
    """Frame span [a, b) as a sample span of audio n samples long (frame centres, widened by `pad`)."""
    lo = a * FRAME_STEP + FRAME_SIZE // 2 - FRAME_STEP // 2 - pad
    hi = (b - 1) * FRAME_STEP + FRAME_SIZE // 2 + FRAME_STEP // 2 + pad
    return max(0, lo), min(n, hi)
