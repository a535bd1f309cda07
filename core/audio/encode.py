"""Encode 16 kHz mono PCM into the file a chunk is uploaded as (the UPLOAD_FORMAT setting).

With PyAV (the libav faster-whisper decodes with) in a few encoder processes that stay up
(`encode_worker`): starting ffmpeg takes over 100 ms of CPU, which the hundreds of utterance
pieces in an hour would pay, and PyAV in a thread of the job's process holds up its other threads
(see `encode_worker`). Where no worker can run, with PyAV here; else with the ffmpeg binary, which
says what is wrong, if anything.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from ..errors import UnsupportedMedia
from . import encode_worker
from .decode import BYTES_PER_SECOND, SAMPLE_RATE, ffmpeg_exe


@dataclass(frozen=True)
class UploadFormat:
    """How a chunk is encoded for upload (the UPLOAD_FORMAT setting names one of `UPLOAD_FORMATS`)."""

    name: str
    container: str  # muxer, as PyAV and ffmpeg name it
    codec: str  # encoder
    extension: str  # of the uploaded file's name: one the service accepts
    mime: str
    bitrate: int | None = None  # bit/s asked of a lossy encoder; None: lossless
    options: tuple[tuple[str, str], ...] = ()  # encoder options, as ffmpeg names them

    @property
    def lossless(self) -> bool:
        return self.bitrate is None

    @property
    def max_bytes_per_second(self) -> float:
        """Bytes a second of audio can take at most: what sizes a chunk under the upload limit.
        Lossless is about the PCM at worst (white noise); a lossy encoder is held near its bitrate,
        and twice that leaves room for VBR peaks and the container's framing."""
        if self.bitrate is None:
            return BYTES_PER_SECOND * LOSSLESS_FRAMING
        return self.bitrate / 8 * LOSSY_HEADROOM


LOSSLESS_FRAMING = 1.03  # FLAC of full-scale white noise is 1.7% over the PCM (PyAV's encoder, measured)
LOSSY_HEADROOM = 2.0  # worst case over the asked bitrate (constrained VBR stays within a few percent)
# Opus in Ogg, constrained VBR (the bitrate holds over any second; plain VBR below complexity 7
# overshoots by a quarter), complexity 1: about twice as fast as complexity 5 (300x real time on
# one core), itself four times libopus's default 10, at the same bitrate and word error rate
# (bench/RESULTS.md: 16.99% at 1, 16.77% at 5, 18.71% for FLAC; complexity 0 loses 2.9 points).
# Frames of 60 ms, not 20: a fifth less encoding and 1% fewer bytes, at 17.06%. The encoder set
# the pace of a job on 2 cores (issue 22). The service takes Ogg Opus named `.ogg` and refuses the
# `.opus` extension.
OPUS_OPTIONS = (("vbr", "constrained"), ("compression_level", "1"), ("frame_duration", "60"))
UPLOAD_FORMATS = {
    "flac": UploadFormat("flac", "flac", "flac", "flac", "audio/flac"),  # lossless, every server takes it
    **{f"opus-{k}k": UploadFormat(f"opus-{k}k", "ogg", "libopus", "ogg", "audio/ogg", k * 1000, OPUS_OPTIONS)
       for k in (24, 32, 48)},
    "mp3-64k": UploadFormat("mp3-64k", "mp3", "libmp3lame", "mp3", "audio/mpeg", 64_000),
}
LOSSLESS = UPLOAD_FORMATS["flac"]

# Encoder processes at most: the cores but one, which the job's own thread and its decoder keep
# busy (on 2 cores, decoding and cutting an hour take about 10 s of CPU, encoding it in Opus 11 s).
WORKERS = max(1, min((os.cpu_count() or 1) - 1, 4))
PIPE_BYTES = 1 << 20  # the pipes' buffers (Linux's most for a user: /proc/sys/fs/pipe-max-size)
_slots = threading.BoundedSemaphore(WORKERS)  # encodings at once
_idle: queue.SimpleQueue = queue.SimpleQueue()  # workers started and free
_failed_starts = [0]  # workers that could not start: after two, everything is encoded here


def encode_pcm(pcm: bytes, fmt: UploadFormat = LOSSLESS) -> bytes:
    """16 kHz mono PCM as an upload file in `fmt`."""
    with _slots:
        worker = _worker()
        if worker is not None:
            try:
                status, body = worker.encode(pcm, fmt)
            except (OSError, EOFError, ValueError):  # the worker died (killed, out of memory): not reused
                worker.close()
            else:
                _idle.put(worker)
                if status == 0:
                    return body
        try:
            return _encode_in_process(pcm, fmt)
        except Exception:  # no PyAV, or a libav without the encoder: ffmpeg says what is wrong, if anything
            return _encode_with_ffmpeg(pcm, fmt)


def warm() -> None:
    """Start an encoder process now, in the background, so that the first chunk does not wait
    for one (about 0.3 s: Python and PyAV starting)."""

    def start() -> None:
        if not _slots.acquire(blocking=False):
            return  # encoding already: the workers are up
        try:
            if _idle.empty() and (worker := _worker()) is not None:
                _idle.put(worker)
        finally:
            _slots.release()

    threading.Thread(target=start, name="encoder-start", daemon=True).start()


class _Worker:
    """One `encode_worker` process, used by one thread at a time."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__).with_name("encode_worker.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for pipe in (self.proc.stdin, self.proc.stdout):  # a chunk in a few writes, not a hundred
            try:  # (each takes the GIL again: with a busy thread beside it, 5 ms a time)
                fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
            except (OSError, AttributeError):  # not Linux
                pass

    def encode(self, pcm: bytes, fmt: UploadFormat) -> tuple[int, bytes]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        spec = json.dumps(_spec(fmt)).encode()
        self.proc.stdin.write(struct.pack("<I", len(spec)) + spec + struct.pack("<Q", len(pcm)))
        self.proc.stdin.write(pcm)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(9)
        if len(head) != 9:
            raise EOFError
        status, size = struct.unpack("<BQ", head)
        body = self.proc.stdout.read(size)
        if len(body) != size:
            raise EOFError
        return status, body

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe:
                    pipe.close()
            except OSError:  # a dead worker's pipe: what was buffered for it goes nowhere
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _worker() -> _Worker | None:
    """A free worker (started if none is), or None where none can run."""
    try:
        return _idle.get_nowait()
    except queue.Empty:
        pass
    if _failed_starts[0] >= 2 or not sys.executable:
        return None
    try:
        worker = _Worker()
    except OSError:
        _failed_starts[0] += 1
        return None
    if worker.proc.poll() is not None:
        _failed_starts[0] += 1
        return None
    return worker


@atexit.register
def _stop_workers() -> None:
    while True:
        try:
            _idle.get_nowait().close()
        except queue.Empty:
            return


def _spec(fmt: UploadFormat) -> dict:
    """What an encoder is told of the format (`encode_worker.encode`)."""
    return {"container": fmt.container, "codec": fmt.codec, "bitrate": fmt.bitrate, "options": fmt.options,
            "rate": SAMPLE_RATE}


def _encode_in_process(pcm: bytes, fmt: UploadFormat) -> bytes:
    return encode_worker.encode(pcm, _spec(fmt))


def _encode_with_ffmpeg(pcm: bytes, fmt: UploadFormat) -> bytes:
    options = [arg for name, value in fmt.options for arg in (f"-{name}", value)]
    bitrate = ["-b:a", str(fmt.bitrate)] if fmt.bitrate else []
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
         "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
         "-c:a", fmt.codec, *bitrate, *options, "-f", fmt.container, "pipe:1"],
        input=pcm,
        capture_output=True,
    )
    if run.returncode != 0:
        raise UnsupportedMedia("Could not encode audio: {detail}", detail=run.stderr.decode(errors="replace")[-300:])
    return run.stdout
