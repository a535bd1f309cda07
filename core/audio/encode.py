"""Encode 16 kHz mono PCM into the file a chunk is uploaded as (the UPLOAD_FORMAT setting).

In-process with PyAV where it can (the libav faster-whisper decodes with): FLAC takes about 7 ms
for a 10 s piece where starting ffmpeg takes over 100 ms, which the hundreds of utterance pieces
in an hour would pay. Else with the ffmpeg binary, which says what is wrong, if anything.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass

from ..errors import UnsupportedMedia
from .decode import BYTES_PER_SECOND, SAMPLE_RATE, ffmpeg_exe, pcm_samples


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
# overshoots by a quarter), complexity 5: about 300x real time on one core where libopus's default
# 10 is about 75x, the difference between minutes and seconds of CPU for an hour of audio.
# The service takes Ogg Opus named `.ogg` and refuses the `.opus` extension.
OPUS_OPTIONS = (("vbr", "constrained"), ("compression_level", "5"))
UPLOAD_FORMATS = {
    "flac": UploadFormat("flac", "flac", "flac", "flac", "audio/flac"),  # lossless, every server takes it
    **{f"opus-{k}k": UploadFormat(f"opus-{k}k", "ogg", "libopus", "ogg", "audio/ogg", k * 1000, OPUS_OPTIONS)
       for k in (24, 32, 48)},
    "mp3-64k": UploadFormat("mp3-64k", "mp3", "libmp3lame", "mp3", "audio/mpeg", 64_000),
}
LOSSLESS = UPLOAD_FORMATS["flac"]

_encoders = threading.BoundedSemaphore(2)  # encoders at once: bounds CPU and memory with many uploads


def encode_pcm(pcm: bytes, fmt: UploadFormat = LOSSLESS) -> bytes:
    """16 kHz mono PCM as an upload file in `fmt`."""
    with _encoders:
        try:
            return _encode_in_process(pcm, fmt)
        except Exception:  # no PyAV, or a libav without the encoder: ffmpeg says what is wrong, if anything
            return _encode_with_ffmpeg(pcm, fmt)


def _encode_in_process(pcm: bytes, fmt: UploadFormat) -> bytes:
    import io

    import av

    samples = pcm_samples(pcm).reshape(1, -1)
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt.container) as container:
        stream = container.add_stream(fmt.codec, rate=SAMPLE_RATE, layout="mono")
        if fmt.bitrate:
            stream.bit_rate = fmt.bitrate
        stream.codec_context.options = dict(fmt.options)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


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
