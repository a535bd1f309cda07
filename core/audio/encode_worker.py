"""An encoder process: 16 kHz mono PCM in on stdin, upload files out on stdout, until stdin closes.

Run by `encode` as a script (`python -I encode_worker.py`), so it imports PyAV and the standard
library only, not the app. PyAV hands the GIL back and forth for every 20 ms Opus packet, so
encoding in a thread of the job's process slows every other thread there (the decoding, the
pause search, the answers) to the encoder's pace; in processes of their own, the encoders run on
the other cores at full speed.

Each request: a 4-byte length and a JSON header (container, codec, bitrate, options, rate), then
an 8-byte length and the PCM. Each reply: one status byte (0 ok, 1 failed), an 8-byte length, and
the file, or the error's text.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from typing import Iterator

BLOCK_BYTES = 16_000 * 2 * 4  # 4 s of 16 kHz 16-bit PCM


def encode(pcm: bytes, spec: dict) -> bytes:
    """The PCM as a file in the container and codec `spec` names."""
    return encode_blocks(iter([pcm[: len(pcm) - len(pcm) % 2]]), spec)


def encode_blocks(blocks: Iterator[bytes], spec: dict) -> bytes:
    """PCM given in blocks of whole samples as one file in the container and codec `spec` names:
    the encoder holds a block at a time, not the chunk (the file is the same either way)."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=spec["container"]) as container:
        stream = container.add_stream(spec["codec"], rate=spec["rate"], layout="mono")
        if spec["bitrate"]:
            stream.bit_rate = spec["bitrate"]
        stream.codec_context.options = dict(spec["options"])
        at = 0
        for block in blocks:
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(block) // 2)
            frame.planes[0].update(block)
            frame.sample_rate, frame.pts = spec["rate"], at
            at += frame.samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def _blocks(stream, size: int) -> Iterator[bytes]:
    """`size` bytes of PCM read from `stream` in blocks of BLOCK_BYTES (an odd last byte dropped)."""
    while size:
        block = _read(stream, min(size, BLOCK_BYTES))
        size -= len(block)
        if len(block) > 1:
            yield block[: len(block) - len(block) % 2]


def _read(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def serve(stdin, stdout) -> None:
    while True:
        try:
            head = _read(stdin, 4)
        except EOFError:
            return  # the job's process closed the pipe: done
        spec = json.loads(_read(stdin, struct.unpack("<I", head)[0]))
        blocks = _blocks(stdin, struct.unpack("<Q", _read(stdin, 8))[0])
        try:
            status, body = 0, encode_blocks(blocks, spec)
        except Exception as e:  # noqa: BLE001 - said to the caller, which encodes another way
            status, body = 1, f"{type(e).__name__}: {e}".encode()
        for _ in blocks:  # the rest of the request, if the encoder stopped early
            pass
        stdout.write(struct.pack("<BQ", status, len(body)) + body)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
