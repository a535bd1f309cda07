"""Read a PyTorch checkpoint (`torch.save` of a state dict) without torch: numpy arrays by name.

Both formats are handled: the zip archive of torch >= 1.6 (`archive/data.pkl` plus one raw file
per storage) and the legacy stream (magic number, protocol, system info, the pickle, the storage
keys, then each storage as an int64 element count and its raw little-endian bytes). Tensors are
rebuilt from (storage, offset, size, stride) with numpy's as_strided. Only plain tensors and
containers are supported, which is all a state dict holds.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": np.uint16,
}


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_DTYPES[name])


class _Storage:
    def __init__(self, dtype, key):
        self.dtype, self.key, self.data = dtype, key, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        item = data.itemsize
        if not self.size:
            return data[self.offset].copy()
        return np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * item for s in self.stride]).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name == "Size":
            return tuple
        raise pickle.UnpicklingError(f"unsupported {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        _, stype, key = pid[0], pid[1], pid[2]
        if key not in self.storages:
            self.storages[key] = _Storage(stype.dtype, key)
        return self.storages[key]


def _arrays(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _arrays(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    return obj


def load(path: str | Path) -> dict:
    path = Path(path)
    storages: dict = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = next(n for n in names if n.endswith("data.pkl"))
            root = pkl[: -len("data.pkl")]
            obj = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
            for key, st in storages.items():
                st.data = np.frombuffer(z.read(f"{root}data/{key}"), dtype=st.dtype)
        return _arrays(obj)
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            st = storages[key]
            st.data = np.frombuffer(f.read(numel * st.dtype.itemsize), dtype=st.dtype)
    return _arrays(obj)


if __name__ == "__main__":
    import sys

    sd = load(sys.argv[1])
    if "model_state" in sd:
        sd = sd["model_state"]
    for k, v in sd.items():
        print(k, getattr(v, "shape", v), getattr(v, "dtype", ""))
