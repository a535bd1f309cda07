"""Decode, probe and split recordings.

Every input goes through ffmpeg once, straight to 16 kHz mono 16-bit PCM (what Whisper works at),
read from a pipe in blocks. Chunks are cut from a small rolling buffer as the decoder runs, so a
3-hour file never sits in memory whole, and the first chunk can be on its way to the service
while the rest is still being decoded. Cuts fall in pauses (pydub's `detect_silence`) near the
target length; where no pause exists, the cut is hard and both sides keep an overlap that the
stitching in `transcribe` resolves.

Uploads are hostile until proven otherwise. ffmpeg guesses a file's format from its content, and
some formats are playlists or indirections (HLS, DASH, ffconcat, image sequences, SDP ...) that
make ffmpeg open further files or URLs: a text file named `x.mp3` could make the server read any
file it can see, or fetch from its own network. So every ffmpeg that reads an upload gets that one
file through the `file` protocol only, and may use only the plain container demuxers in
`PLAIN_DEMUXERS`; anything else is refused before ffmpeg reads its header. And since a header can
lie about the length, decoding stops at `max_seconds` whatever the header said.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

with warnings.catch_warnings():  # pydub warns at import when ffmpeg is not on PATH; we set it below
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_silence

from .errors import UnsupportedMedia

SAMPLE_RATE = 16_000  # Hz: Whisper's input rate
SAMPLE_WIDTH = 2  # bytes per sample: signed 16-bit little-endian
BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
READ_BLOCK = BYTES_PER_SECOND * 8  # bytes read from the decoder at a time (8 s of audio)
MIN_CHUNK_SECONDS = 1.0  # shorter tails are padded with silence (the service refuses < 0.1 s)
SILENCE_SEEK_MS = 10  # detect_silence step; 1 ms costs ~40 s an hour, 10 ms is as good for cuts
UPLOAD_FORMAT = "flac"  # lossless, about half the size of WAV, accepted by every Whisper server

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
    AudioSegment.converter = found
    return found


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None  # seconds, from the container; None when it does not say
    has_audio: bool
    container: str


@dataclass(frozen=True)
class Chunk:
    """A slice of the recording to transcribe on its own.

    `start`/`end` are the audio it carries; `keep_start`/`keep_end` the part it answers for.
    They differ only at hard cuts, where neighbouring chunks overlap.
    """

    index: int
    start: float
    end: float
    keep_start: float
    keep_end: float
    pcm: bytes  # 16 kHz mono s16le
    encoded: bytes = b""  # the upload file, once made (then the PCM can be dropped)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def audio(self) -> bytes:
        """The PCM, decoded again from the upload file if it was dropped."""
        return self.pcm or (decode_bytes(self.encoded) if self.encoded else b"")

    @property
    def hard_start(self) -> bool:
        return self.keep_start > self.start

    def encode(self, fmt: str = UPLOAD_FORMAT) -> bytes:
        """The chunk as an audio file for upload."""
        return self.encoded or encode_pcm(self.pcm, fmt)


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_INPUT = re.compile(r"Input #0, ([^,]+)")


def check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UnsupportedMedia(f"File not found: {path}")
    if not path.is_file():
        raise UnsupportedMedia(f"Not a file: {path}")
    if path.stat().st_size == 0:
        raise UnsupportedMedia(f"{path.name} is empty (0 bytes).")
    return path


def _input_args(path: Path) -> list[str]:
    """ffmpeg options that read `path` and nothing else (see the module docstring).

    The demuxer allowlist stops ffmpeg right after it guesses the format, before a playlist's
    header is parsed; the protocol allowlist keeps whatever runs on local files, with no network
    and no protocol that wraps others. `file:` and an absolute path keep a name such as
    `concat:a.mp3|b.mp3` or `http:x.mp3` from being taken for a URL.
    """
    return ["-protocol_whitelist", INPUT_PROTOCOLS, "-format_whitelist", ",".join(PLAIN_DEMUXERS),
            "-i", "file:" + os.path.abspath(path)]


_NOT_ALLOWED = "Format not on whitelist"  # what ffmpeg says when it detects a format not allowed
_DETECTED = re.compile(r"Format (\S+) (?:probed with size|detected only with low score)")  # at -loglevel debug


def _refusal(stderr: str, path: Path) -> str | None:
    """The message for a file ffmpeg detected in a format it may not read, or None."""
    if _NOT_ALLOWED not in stderr:
        return None
    found = _detected_format(path)
    if found in PLAYLIST_DEMUXERS:
        return f"{Path(path).name} is a playlist that points to other files; upload the media file itself."
    return (f"{Path(path).name} is not a recording this app reads (ffmpeg sees {found} data); "
            "upload an audio or video file such as MP3, M4A, WAV or MP4.")


def _detected_format(path: Path) -> str:
    """The format ffmpeg detects in `path`: only its debug log names it, in every ffmpeg version.

    Run again only for refused files; the allowlists still stop it before the format is read.
    """
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "debug", *_input_args(path)],
                         capture_output=True, text=True, errors="replace")
    m = _DETECTED.search(run.stderr)
    return m[1] if m else "unknown"


def probe(path: Path) -> MediaInfo:
    """Read the container header with `ffmpeg -i` (ffprobe is not shipped by imageio-ffmpeg)."""
    path = check_file(path)
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *_input_args(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = run.stderr
    if refused := _refusal(err, path):
        raise UnsupportedMedia(refused)
    container = _INPUT.search(err)
    if not container:
        raise UnsupportedMedia(f"{path.name} is not an audio or video file that ffmpeg can read.")
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    has_audio = bool(re.search(r"Stream #\S+.*: Audio:", err))
    return MediaInfo(duration=duration, has_audio=has_audio, container=container[1])


_encoders = threading.BoundedSemaphore(2)  # ffmpeg encoders at once: bounds memory with many uploads


def encode_pcm(pcm: bytes, fmt: str = UPLOAD_FORMAT) -> bytes:
    with _encoders:
        return _encode(pcm, fmt)


def _encode(pcm: bytes, fmt: str) -> bytes:
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
         "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
         "-f", fmt, "pipe:1"],
        input=pcm,
        capture_output=True,
    )
    if run.returncode != 0:
        raise UnsupportedMedia(f"Could not encode audio: {run.stderr.decode(errors='replace')[-300:]}")
    return run.stdout


def decode_bytes(data: bytes) -> bytes:
    """16 kHz mono PCM of an audio file held in memory."""
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "pipe:0",
                          "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"], input=data, capture_output=True)
    return run.stdout


def segment(pcm: bytes) -> AudioSegment:
    return AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE, channels=1)


def find_pause(pcm: bytes, min_silence_ms: int) -> float | None:
    """Seconds into `pcm` of the middle of its longest pause (the latest on ties), or None."""
    audio = segment(pcm)
    if len(audio) < min_silence_ms:
        return None
    loudness = audio.dBFS
    # Relative threshold: 16 dB under the window's average, as pydub's docs suggest; a silent
    # window (-inf dBFS) is all pause.
    thresh = -50.0 if loudness == float("-inf") else loudness - 16
    pauses = detect_silence(audio, min_silence_len=min_silence_ms, silence_thresh=thresh,
                            seek_step=SILENCE_SEEK_MS)
    if not pauses:
        return None
    start, end = max(pauses, key=lambda p: (p[1] - p[0], p[0]))
    return (start + end) / 2000.0


SILENT_DBFS = -50.0  # a chunk whose loudest sample stays under this has nothing to transcribe
VAD_MIN_SPEECH_MS = 250  # shorter blips are not speech


def is_silent(pcm: bytes) -> bool:
    return segment(pcm).max_dBFS < SILENT_DBFS


def has_speech(pcm: bytes) -> bool:
    """Silero voice activity detection (shipped with faster-whisper) on 16 kHz mono PCM."""
    import numpy as np
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(pcm) < SAMPLE_WIDTH * SAMPLE_RATE // 10 or is_silent(pcm):
        return False
    audio = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.float32) / 32768.0
    return bool(get_speech_timestamps(audio, VadOptions(min_speech_duration_ms=VAD_MIN_SPEECH_MS)))


OVER_LIMIT_SECONDS = 1.0  # decoded past a limit, to tell a recording over it from one just at it


def measure_duration(path: Path, max_seconds: float | None = None) -> float:
    """Seconds of audio, by decoding (for containers that do not say, e.g. some WebM recordings).

    With `max_seconds`, decoding stops just past it: enough to tell the recording is over a limit,
    without decoding the hours a small file can hold.
    """
    stop = ["-t", f"{max_seconds + OVER_LIMIT_SECONDS:g}"] if max_seconds is not None else []
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *_input_args(path), "-map", "0:a:0?",
                          "-vn", *stop, "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    if refused := _refusal(run.stderr, path):
        raise UnsupportedMedia(refused)
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", run.stderr)
    return int(times[-1][0]) * 3600 + int(times[-1][1]) * 60 + float(times[-1][2]) if times else 0.0


def pcm_bytes(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE)) * SAMPLE_WIDTH


def _pad(pcm: bytes) -> bytes:
    short = pcm_bytes(MIN_CHUNK_SECONDS) - len(pcm)
    return pcm + b"\0" * short if short > 0 else pcm


class Decoder:
    """ffmpeg decoding a file to 16 kHz mono PCM on a pipe."""

    def __init__(self, path: Path):
        self.path = check_file(path)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
             *_input_args(self.path), "-map", "0:a:0?", "-vn", "-sn", "-dn",
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
            last = err.splitlines()[-1] if err else f"exit code {code}"
            raise UnsupportedMedia(_refusal(err, self.path) or f"Could not decode {self.path.name}: {last}")
        return err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()


def iter_chunks(path: Path, *, target_seconds: float, window_seconds: float,
                overlap_seconds: float, min_silence_ms: int,
                on_damage: Callable[[str], None] | None = None,
                max_seconds: float | None = None,
                on_limit: Callable[[float], None] | None = None) -> Iterator[Chunk]:
    """Decode `path` and yield chunks of about `target_seconds`, cut in pauses.

    A cut is searched in the last `window_seconds` before the target; with no pause there, the
    chunk is cut hard at the target and overlaps its neighbour by `overlap_seconds` on each side.
    Memory stays near one chunk plus one read block, whatever the file's length.

    With `max_seconds`, decoding stops there even if the file goes on: a header can claim 30 s for
    hours of audio, and the limit checked against the header must hold for what is sent. No chunk
    carries audio past the limit; `on_limit(max_seconds)` is called once when audio was cut off.
    """
    target = pcm_bytes(target_seconds)
    window = min(pcm_bytes(window_seconds), pcm_bytes(target_seconds / 2))
    overlap = pcm_bytes(overlap_seconds)
    need = target + overlap  # bytes buffered before a cut is planned
    limit = pcm_bytes(max_seconds) if max_seconds is not None else None

    decoder = Decoder(path)
    buf = bytearray()
    buf_start = 0  # position of buf[0] in the recording, in bytes
    keep_start = 0
    index = 0
    cut_off = False  # audio went on past `limit`
    try:
        for block in decoder.blocks():
            if limit is not None and buf_start + len(buf) + len(block) > limit:
                block, cut_off = block[:max(0, limit - buf_start - len(buf))], True
            buf += block
            while len(buf) >= need:
                pause = find_pause(bytes(buf[target - window:target]), min_silence_ms)
                if pause is not None:
                    cut = target - window + pcm_bytes(pause)
                    pcm, end, next_start = bytes(buf[:cut]), cut, cut
                else:  # no pause: hard cut at the target, both sides overlap it
                    cut = target
                    pcm, end, next_start = bytes(buf[:cut + overlap]), cut + overlap, cut - overlap
                yield Chunk(index, _sec(buf_start), _sec(buf_start + end), _sec(keep_start),
                            _sec(buf_start + cut), pcm)
                index += 1
                keep_start = buf_start + cut
                del buf[:next_start]
                buf_start += next_start
            if cut_off:
                break
        if cut_off:
            decoder.close()  # stops ffmpeg: nothing past the limit is decoded
            if on_limit:
                on_limit(float(max_seconds))
        elif (complaints := decoder.finish()) and on_damage:  # decoded, but not cleanly: damaged data
            on_damage(complaints.splitlines()[-1])
        if buf and (index == 0 or len(buf) > (keep_start - buf_start)):
            end = buf_start + len(buf)
            yield Chunk(index, _sec(buf_start), _sec(end), _sec(keep_start), _sec(end), _pad(bytes(buf)))
        elif index == 0:
            raise UnsupportedMedia(f"{Path(path).name} contains no audio (the recording is empty).")
    finally:
        decoder.close()


def _sec(nbytes: int) -> float:
    return nbytes / BYTES_PER_SECOND
