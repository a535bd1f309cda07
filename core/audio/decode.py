"""Read recordings with ffmpeg: probe the header, decode to 16 kHz mono 16-bit PCM (what Whisper
works at), measure the length. The PCM is read from a pipe in blocks, so a 3-hour file never sits
in memory whole.

Uploads are hostile until proven otherwise. ffmpeg guesses a file's format from its content, and
some formats are playlists or indirections (HLS, DASH, ffconcat, image sequences, SDP ...) that
make ffmpeg open further files or URLs: a text file named `x.mp3` could make the server read any
file it can see, or fetch from its own network. So every ffmpeg that reads an upload gets that one
file through the `file` protocol only, and may use only the plain container demuxers in
`PLAIN_DEMUXERS`; anything else is refused before ffmpeg reads its header. And since a header can
lie about the length, decoding stops at `max_seconds` whatever the header said.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import UnsupportedMedia
from ..i18n import Text, visitor_forms

SAMPLE_RATE = 16_000  # Hz: Whisper's input rate
SAMPLE_WIDTH = 2  # bytes per sample: signed 16-bit little-endian
BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
READ_BLOCK = BYTES_PER_SECOND * 8  # bytes read from the decoder at a time (8 s of audio)
OVER_LIMIT_SECONDS = 1.0  # decoded past a limit, to tell a recording over it from one just at it

# The only ffmpeg demuxers an upload may be read with: audio and video containers that carry their
# media inside themselves (mov's external data references stay off, ffmpeg's default). Names as
# `ffmpeg -demuxers` prints them; ffmpeg matches each against every alias of the one it detects.
PLAIN_DEMUXERS = (
    "mp3", "wav", "w64", "flac", "ogg", "aac", "loas", "ac3", "eac3", "dts", "dtshd", "truehd", "mlp",
    "aiff", "caf", "au", "amr", "amrnb", "amrwb", "ape", "wv", "tta", "tak", "shn", "mpc", "mpc8",
    "dsf", "iff", "oma", "qcp", "voc", "xwma", "gsm", "nistsphere",
    "mov", "matroska", "avi", "asf", "flv", "mpeg", "mpegts", "mxf", "nut", "rm", "dv", "wtv",
)
# Demuxers that open further files, URLs or devices: refused like any other demuxer not in
# PLAIN_DEMUXERS, named here only to tell the user what they uploaded. hls/dash/imf read the media
# a playlist or manifest names; concat (ffconcat) the files it lists; image2 a numbered file
# sequence; vobsub the .sub next to an .idx; dvdvideo a DVD's folder; avisynth/vapoursynth run
# scripts; sdp/rtsp/rtp/sap open network streams.
PLAYLIST_DEMUXERS = frozenset({"hls", "dash", "imf", "concat", "image2", "vobsub", "dvdvideo", "avisynth",
                               "vapoursynth", "sdp", "rtsp", "rtp", "sap"})
# Only the local file itself: no http/tcp/udp, and no concat:, subfile: or crypto: wrapping others.
INPUT_PROTOCOLS = "file"

# What `ffmpeg -i` prints about a file it reads: its length and its container.
HEADER_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
HEADER_CONTAINER = re.compile(r"Input #0, ([^,]+)")
NOT_ALLOWED = "Format not on whitelist"  # what ffmpeg says when it detects a format not allowed
_DETECTED = re.compile(r"Format (\S+) (?:probed with size|detected only with low score)")  # at -loglevel debug


def _return_big_buffers() -> None:
    """Make large buffers (a chunk's PCM: megabytes) go back to the system when freed. glibc raises
    its mmap threshold to the size of the first such buffer freed and serves the next ones from its
    heaps, where, freed by one thread and made by another, they stay: a 70-minute job grew by about
    60 MB that way (bench/stages.py). A fixed threshold keeps them apart. Not glibc: nothing done."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError, TypeError):
        pass


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20
_return_big_buffers()


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The system ffmpeg, else the one shipped by the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg")
    if not found:
        try:
            import imageio_ffmpeg

            found = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as e:  # not installed, or no binary for this platform
            raise UnsupportedMedia(
                "ffmpeg was not found. Install it (apt-get install ffmpeg) or `pip install imageio-ffmpeg`."
            ) from e
    return found


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None  # seconds, from the container; None when it does not say
    has_audio: bool
    container: str


# The path is the server's: a visitor is told it by the file's name.
visitor_forms({"File not found: {path}": "{name} is no longer on the server: choose it again.",
               "Not a file: {path}": "{name} is not a file."})


def check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UnsupportedMedia("File not found: {path}", path=path, name=path.name)
    if not path.is_file():
        raise UnsupportedMedia("Not a file: {path}", path=path, name=path.name)
    if path.stat().st_size == 0:
        raise UnsupportedMedia("{name} is empty (0 bytes).", name=path.name)
    return path


def input_args(path: Path) -> list[str]:
    """ffmpeg options that read `path` and nothing else (see the module docstring).

    The demuxer allowlist stops ffmpeg right after it guesses the format, before a playlist's
    header is parsed; the protocol allowlist keeps whatever runs on local files, with no network
    and no protocol that wraps others. `file:` and an absolute path keep a name such as
    `concat:a.mp3|b.mp3` or `http:x.mp3` from being taken for a URL.
    """
    return ["-protocol_whitelist", INPUT_PROTOCOLS, "-format_whitelist", ",".join(PLAIN_DEMUXERS),
            "-i", "file:" + os.path.abspath(path)]


def _refusal(stderr: str, path: Path) -> Text | None:
    """The message for a file ffmpeg detected in a format it may not read, or None."""
    if NOT_ALLOWED not in stderr:
        return None
    found = _detected_format(path)
    if found in PLAYLIST_DEMUXERS:
        return Text("{name} is a playlist that points to other files; upload the media file itself.",
                    name=Path(path).name)
    return Text("{name} is not a recording this app reads (ffmpeg sees {found} data); upload an audio or "
                "video file such as MP3, M4A, WAV or MP4.", name=Path(path).name, found=found)


def _detected_format(path: Path) -> str:
    """The format ffmpeg detects in `path`: only its debug log names it, in every ffmpeg version.

    Run again only for refused files; the allowlists still stop it before the format is read.
    """
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "debug", *input_args(path)],
                         capture_output=True, text=True, errors="replace")
    m = _DETECTED.search(run.stderr)
    return m[1] if m else "unknown"


def probe(path: Path) -> MediaInfo:
    """Read the container header with `ffmpeg -i` (ffprobe is not shipped by imageio-ffmpeg)."""
    path = check_file(path)
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *input_args(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = run.stderr
    if refused := _refusal(err, path):
        raise UnsupportedMedia(refused)
    container = HEADER_CONTAINER.search(err)
    if not container:
        raise UnsupportedMedia("{name} is not an audio or video file that ffmpeg can read.", name=path.name)
    m = HEADER_DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    has_audio = bool(re.search(r"Stream #\S+.*: Audio:", err))
    return MediaInfo(duration=duration, has_audio=has_audio, container=container[1])


def measure_duration(path: Path, max_seconds: float | None = None) -> float:
    """Seconds of audio, by decoding (for containers that do not say, e.g. some WebM recordings).

    With `max_seconds`, decoding stops just past it: enough to tell the recording is over a limit,
    without decoding the hours a small file can hold.
    """
    stop = ["-t", f"{max_seconds + OVER_LIMIT_SECONDS:g}"] if max_seconds is not None else []
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *input_args(path), "-map", "0:a:0?",
                          "-vn", *stop, "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    if refused := _refusal(run.stderr, path):
        raise UnsupportedMedia(refused)
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", run.stderr)
    return int(times[-1][0]) * 3600 + int(times[-1][1]) * 60 + float(times[-1][2]) if times else 0.0


def decode_bytes(data: bytes) -> bytes:
    """16 kHz mono PCM of an audio file held in memory."""
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "pipe:0",
                          "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"], input=data, capture_output=True)
    return run.stdout


def pcm_bytes(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE)) * SAMPLE_WIDTH


def pcm_seconds(nbytes: int) -> float:
    return nbytes / BYTES_PER_SECOND


def pcm_samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], dtype=np.int16)


class PcmOnDisk:
    """PCM kept in an unnamed temporary file until it is needed again, instead of in memory (the
    chunks in flight of a long recording would hold hundreds of MB). Closing it deletes it."""

    def __init__(self, pcm: bytes):
        self._file = tempfile.TemporaryFile()
        self._file.write(pcm)

    def read(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PcmOnDisk":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Decoder:
    """ffmpeg decoding a file to 16 kHz mono PCM on a pipe."""

    def __init__(self, path: Path):
        self.path = check_file(path)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
             *input_args(self.path), "-map", "0:a:0?", "-vn", "-sn", "-dn",
             "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def blocks(self) -> Iterator[bytes]:
        assert self.proc.stdout is not None
        while block := self.proc.stdout.read(READ_BLOCK):
            yield block

    def finish(self) -> str:
        """Wait for ffmpeg; raise if it failed, else return what it complained about (if anything)."""
        code = self.proc.wait()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace").strip()
        self._stderr.close()
        if code != 0:
            last = err.splitlines()[-1] if err else Text("exit code {code}", code=code)
            raise UnsupportedMedia(_refusal(err, self.path)
                                   or Text("Could not decode {name}: {detail}", name=self.path.name, detail=last))
        return err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()


def pcm_blocks(path: Path, max_seconds: float | None, on_damage: Callable[[str], None] | None,
               on_limit: Callable[[float], None] | None) -> Iterator[bytes]:
    """The PCM of `path` in blocks, as the decoder makes it; nothing past `max_seconds`.

    A header can claim 30 s for hours of audio, and the limit checked against the header must hold
    for what is sent: decoding stops at the limit, and `on_limit(max_seconds)` is called once when
    audio was cut off. When ffmpeg decoded to the end but complained (damaged data), `on_damage`
    gets its last complaint. Closing the generator stops ffmpeg.
    """
    limit = pcm_bytes(max_seconds) if max_seconds is not None else None
    decoder = Decoder(path)
    done = 0  # bytes yielded so far
    cut_off = False  # audio went on past `limit`
    try:
        for block in decoder.blocks():
            if limit is not None and done + len(block) > limit:
                block, cut_off = block[:max(0, limit - done)], True
            done += len(block)
            if block:
                yield block
            if cut_off:
                break
        if cut_off:
            decoder.close()  # stops ffmpeg: nothing past the limit is decoded
            if on_limit:
                on_limit(float(max_seconds))
        elif (complaints := decoder.finish()) and on_damage:  # decoded, but not cleanly: damaged data
            on_damage(complaints.splitlines()[-1])
    finally:
        decoder.close()
