"""Decode, probe and split recordings.

Every input goes through ffmpeg once, straight to 16 kHz mono 16-bit PCM (what Whisper works at),
read from a pipe in blocks. Chunks are cut from a small rolling buffer as the decoder runs, so a
3-hour file never sits in memory whole, and the first chunk can be on its way to the service
while the rest is still being decoded. There are two ways to cut:

- `iter_chunks`, for models that return timed segments: chunks of about CHUNK_SECONDS, cut in
  pauses (pydub's `detect_silence`) near the target length; where no pause exists, the cut is
  hard and both sides keep an overlap that the stitching in `transcribe` resolves.
- `iter_utterances`, for models that return text only, whose answer becomes one segment spanning
  the request: pieces of a sentence or a few, at most PIECE_MAX_SECONDS, so that segment starts
  at most that long before any word in it. Cuts fall where Silero's voice detection hears a pause,
  else in pydub's quiet moments, else hard (with an overlap, as above). Voice detection chooses
  where to cut, never what to leave out: it hears no voice in singing, whispering or a voice under
  noise, so only silence by loudness (`SILENT_DBFS`) is left out and not sent.

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

import numpy as np

with warnings.catch_warnings():  # pydub warns at import when ffmpeg is not on PATH; we set it below
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_silence

from ..errors import UnsupportedMedia
from ..i18n import Text

SAMPLE_RATE = 16_000  # Hz: Whisper's input rate
SAMPLE_WIDTH = 2  # bytes per sample: signed 16-bit little-endian
BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
READ_BLOCK = BYTES_PER_SECOND * 8  # bytes read from the decoder at a time (8 s of audio)
MIN_CHUNK_SECONDS = 1.0  # shorter tails are padded with silence (the service refuses < 0.1 s)
SILENCE_SEEK_MS = 10  # detect_silence step; 1 ms costs ~40 s an hour, 10 ms is as good for cuts


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
    They differ only at hard cuts, where neighbouring chunks overlap. A `gap` is silence left out
    (`iter_utterances`): it carries no audio, and nothing is sent for it.
    """

    index: int
    start: float
    end: float
    keep_start: float
    keep_end: float
    pcm: bytes  # 16 kHz mono s16le
    encoded: bytes = b""  # the upload file, once made (then the PCM can be dropped)
    gap: bool = False  # silence left out: no audio, nothing to send

    @property
    def duration(self) -> float:
        return self.end - self.start

    def audio(self) -> bytes:
        """The PCM, decoded again from the upload file if it was dropped."""
        return self.pcm or (decode_bytes(self.encoded) if self.encoded else b"")

    @property
    def hard_start(self) -> bool:
        return self.keep_start > self.start

    def encode(self, fmt: UploadFormat = LOSSLESS) -> bytes:
        """The chunk as an audio file for upload."""
        return self.encoded or encode_pcm(self.pcm, fmt)


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_INPUT = re.compile(r"Input #0, ([^,]+)")


def check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UnsupportedMedia("File not found: {path}", path=path)
    if not path.is_file():
        raise UnsupportedMedia("Not a file: {path}", path=path)
    if path.stat().st_size == 0:
        raise UnsupportedMedia("{name} is empty (0 bytes).", name=path.name)
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


def _refusal(stderr: str, path: Path) -> Text | None:
    """The message for a file ffmpeg detected in a format it may not read, or None."""
    if _NOT_ALLOWED not in stderr:
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
        raise UnsupportedMedia("{name} is not an audio or video file that ffmpeg can read.", name=path.name)
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    has_audio = bool(re.search(r"Stream #\S+.*: Audio:", err))
    return MediaInfo(duration=duration, has_audio=has_audio, container=container[1])


_encoders = threading.BoundedSemaphore(2)  # encoders at once: bounds CPU and memory with many uploads


def encode_pcm(pcm: bytes, fmt: UploadFormat = LOSSLESS) -> bytes:
    """16 kHz mono PCM as an upload file in `fmt`."""
    with _encoders:
        return _encode(pcm, fmt)


def _encode(pcm: bytes, fmt: UploadFormat) -> bytes:
    """In-process with PyAV (the libav that faster-whisper decodes with): FLAC takes about 7 ms
    for a 10 s piece where starting ffmpeg takes over 100 ms, which hundreds of utterance pieces an
    hour would pay; else with ffmpeg."""
    try:
        return _encode_in_process(pcm, fmt)
    except Exception:  # no PyAV, or a libav without the encoder: ffmpeg says what is wrong, if anything
        return _encode_with_ffmpeg(pcm, fmt)


def _encode_in_process(pcm: bytes, fmt: UploadFormat) -> bytes:
    import io

    import av

    samples = _samples(pcm).reshape(1, -1)
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


def _decoded(path: Path, max_seconds: float | None, on_damage: Callable[[str], None] | None,
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


def _no_audio(path: Path) -> UnsupportedMedia:
    return UnsupportedMedia("{name} contains no audio (the recording is empty).", name=Path(path).name)


def iter_chunks(path: Path, *, target_seconds: float, window_seconds: float,
                overlap_seconds: float, min_silence_ms: int,
                on_damage: Callable[[str], None] | None = None,
                max_seconds: float | None = None,
                on_limit: Callable[[float], None] | None = None,
                first_seconds: float | None = None, expected_seconds: float | None = None,
                at_least: Callable[[float], float] | None = None) -> Iterator[Chunk]:
    """Decode `path` and yield chunks of about `target_seconds`, cut in pauses.

    A cut is searched in the last `window_seconds` before the target; with no pause there, the
    chunk is cut hard at the target and overlaps its neighbour by `overlap_seconds` on each side.
    With `first_seconds`, the first chunk aims at that length and each next one at twice its
    predecessor's, up to `target_seconds` (a short first chunk is back soon: the first text); and
    if the recording is `expected_seconds` long, the last ones at half of what is left, down to
    `first_seconds` again (a short last chunk is back soon after the decoding ends). `at_least`
    gives, for a chunk starting at a second of the recording, the least it should last (a
    rate-limited account: fewer, longer requests), asked as each chunk is planned.
    Memory stays near one chunk plus one read block, whatever the file's length. Nothing past
    `max_seconds` is decoded or carried (see `_decoded`).
    """
    overlap = pcm_bytes(overlap_seconds)

    def aim(index: int, at: int) -> tuple[int, int]:
        """Bytes to aim at for chunk `index` starting `at` bytes in, and the window before it
        searched for a pause."""
        seconds = target_seconds
        if first_seconds is not None:
            seconds = min(seconds, first_seconds * 2 ** index)
            if expected_seconds:
                seconds = min(seconds, max(first_seconds, (expected_seconds - _sec(at)) / 2))
        if at_least is not None:
            seconds = max(seconds, at_least(_sec(at)))
        return pcm_bytes(seconds), min(pcm_bytes(window_seconds), pcm_bytes(seconds / 2))

    blocks = _decoded(path, max_seconds, on_damage, on_limit)
    buf = bytearray()
    buf_start = 0  # position of buf[0] in the recording, in bytes
    keep_start = 0
    index = 0
    try:
        for block in blocks:
            buf += block
            while True:
                target, window = aim(index, buf_start)
                if len(buf) < target + overlap:  # not enough buffered to plan the cut yet
                    break
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
        if buf and (index == 0 or len(buf) > (keep_start - buf_start)):
            end = buf_start + len(buf)
            yield Chunk(index, _sec(buf_start), _sec(end), _sec(keep_start), _sec(end), _pad(bytes(buf)))
        elif index == 0:
            raise _no_audio(path)
    finally:
        blocks.close()  # stops the decoder


def _sec(nbytes: int) -> float:
    return nbytes / BYTES_PER_SECOND


# Utterance pieces, for models that answer with text and no times (see `iter_utterances`). The
# text of a piece becomes one segment that starts where the piece starts, so pieces are short.
PIECE_MAX_SECONDS = 10.0  # longest piece, overlap included: its segment starts at most this long before its words
PIECE_MIN_SECONDS = 1.0  # no cut in a piece's first second (MIN_CHUNK_SECONDS pads shorter ones anyway)
PIECE_LEAD_SECONDS = 0.3  # kept before a voice or sound starts, so the model hears its onset whole
PIECE_TAIL_SECONDS = 0.3  # kept after a sound ends, before a silence that is left out
GAP_MIN_SECONDS = 2.0  # silences this long inside speech are left out; shorter ones cost less sent than a request
HEAD_GAP_MIN_SECONDS = 0.5  # silence before a piece's first sound beyond its lead is left out from this long
PIECE_OVERLAP_SECONDS = 1.5  # each side of a hard cut (no pause, no quiet moment); stitching keeps each word once
PIECE_OVERLAP_SHARE = 5  # but at most this share of a shorter piece (a low MAX_UPLOAD_MB)
VAD_PAUSE_MS = 200  # a pause in the voice at least this long is a place to cut (a breath between phrases)
# Audio analysed at once. Silero runs ~300x real time on one core, so a first piece is on its way a
# fraction of a second after the decoder starts, and memory stays at about a minute of PCM.
ANALYSIS_SECONDS = 60.0
# Audio past a piece's latest possible end that must be decoded before it is cut: enough to tell
# a silence that will be left out (GAP_MIN_SECONDS) and where the voice comes back.
SETTLE_SECONDS = GAP_MIN_SECONDS + 1.0
FRAME_SECONDS = 0.01  # the grid of loudness, voice and cut times
FRAME_BYTES = int(SAMPLE_RATE * FRAME_SECONDS) * SAMPLE_WIDTH
# The loudest sample of a silent stretch stays under this: `is_silent` (pydub's max_dBFS) per frame.
SILENT_PEAK = 2 ** (8 * SAMPLE_WIDTH - 1) * 10 ** (SILENT_DBFS / 20)


def _frames(seconds: float) -> int:
    return int(round(seconds / FRAME_SECONDS))


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], dtype=np.int16)


def loud_frames(pcm: bytes) -> np.ndarray:
    """Per 10 ms frame, whether it is not silent: its loudest sample reaches SILENT_DBFS, the
    `is_silent` rule (so a stretch of frames that are not loud is silent by `is_silent`)."""
    samples = _samples(pcm).astype(np.int32)
    per = FRAME_BYTES // SAMPLE_WIDTH
    samples = np.pad(samples, (0, -len(samples) % per))
    return np.abs(samples.reshape(-1, per)).max(axis=1) >= SILENT_PEAK


def voice_spans(pcm: bytes, min_silence_ms: int = VAD_PAUSE_MS) -> list[tuple[float, float]]:
    """Where Silero (shipped with faster-whisper) hears a voice, in seconds into `pcm`, unpadded.

    Silero hears no voice in singing, music with words, whispering or a voice under noise: this
    may say where to cut or where speech starts, never what to leave out.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(pcm) < SAMPLE_WIDTH * SAMPLE_RATE // 10:
        return []
    audio = _samples(pcm).astype("float32") / 32768.0
    options = VadOptions(min_speech_duration_ms=VAD_MIN_SPEECH_MS, min_silence_duration_ms=min_silence_ms,
                         speech_pad_ms=0)
    return [(t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE) for t in get_speech_timestamps(audio, options)]


def first_voice(pcm: bytes) -> float | None:
    """Seconds into `pcm` where Silero first hears a voice, or None."""
    spans = voice_spans(pcm)
    return spans[0][0] if spans else None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) frame ranges where `mask` is True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


@dataclass(frozen=True)
class Span:
    """Part of an analysed stretch, in frames: a piece to send (keeping [keep_start, keep_end)) or
    a silence to leave out."""

    start: int
    end: int
    keep_start: int
    keep_end: int
    gap: bool = False


class Cutter:
    """Where to cut one stretch of decoded audio into utterance pieces and silences left out.

    A piece starts just before a sound and ends, in order of preference:
    1. where a silence of GAP_MIN_SECONDS or more begins (the silence is left out);
    2. at the end of the recording, if it fits;
    3. in the longest pause in the voice (Silero), just before the voice comes back, looking in
       the second half of the longest piece first (fuller pieces, fewer requests), then earlier;
    4. in the longest quiet moment pydub finds (`find_pause`), likewise: music, a voice under noise;
    5. hard, at `max_seconds`, overlapping the next piece by PIECE_OVERLAP_SECONDS each side.
    No piece is longer than `max_seconds`, and only silence (by loudness) is ever left out.
    """

    def __init__(self, pcm: bytes, final: bool, min_silence_ms: int, max_seconds: float = PIECE_MAX_SECONDS):
        self.pcm, self.final, self.min_silence_ms = pcm, final, min_silence_ms
        self.max = _frames(max_seconds)
        self.overlap = min(_frames(PIECE_OVERLAP_SECONDS), self.max // PIECE_OVERLAP_SHARE)
        self.loud = loud_frames(pcm)
        self.n = len(self.loud)
        voice = np.zeros(self.n, dtype=bool)
        if self.loud.any():  # Silero on silence is time wasted
            for a, b in voice_spans(pcm):
                voice[_frames(a):_frames(b) + 1] = True
        self.pauses = _runs(~voice)
        self.silences = [(a, b) for a, b in _runs(~self.loud)
                         if b - a >= _frames(GAP_MIN_SECONDS) or (final and b == self.n)]

    def cut(self, p: int, keep: int) -> tuple[list[Span], int, int]:
        """Spans from frame `p` on (audio before `keep` belongs to the previous piece: a hard cut's
        overlap), as far as the audio decoded so far settles; and the `p`, `keep` to go on from."""
        spans: list[Span] = []
        lead = _frames(PIECE_LEAD_SECONDS)
        while p < self.n:
            if keep <= p:  # a piece after a hard cut starts in the overlap, whatever is there
                sound = self._next_sound(p)
                if sound is None:  # silent up to here: left out, but for a lead for what comes
                    end = self.n if self.final else max(p, self.n - lead)
                    if end > p:
                        spans.append(Span(p, end, p, end, gap=True))
                        p = keep = end
                    break
                start = max(p, sound - lead)
                if start - p >= _frames(HEAD_GAP_MIN_SECONDS):
                    spans.append(Span(p, start, p, start, gap=True))
                    p = keep = start
            if not self.final and p + self.max + _frames(SETTLE_SECONDS) > self.n:
                break  # where this piece ends is not settled yet
            cut, end, after = self._piece_end(p, keep)
            spans.append(Span(p, end, max(p, keep), cut))
            p, keep = after, cut
        return spans, p, keep

    def _next_sound(self, p: int) -> int | None:
        hits = np.flatnonzero(self.loud[p:])
        return p + int(hits[0]) if len(hits) else None

    def _piece_end(self, p: int, keep: int) -> tuple[int, int, int]:
        """(cut, end, next piece's start) of the piece that starts at `p`."""
        hi = min(p + self.max, self.n)
        lo = max(p, keep) + _frames(PIECE_MIN_SECONDS)
        first = self._next_sound(p)
        first = p if first is None else first
        for a, b in self.silences:  # 1. a silence left out ends the piece
            if first < a < hi:
                end = min(a + _frames(PIECE_TAIL_SECONDS), b, hi)
                if end > keep:
                    return end, end, end
        if self.final and self.n <= hi:  # 2. the rest fits
            return self.n, self.n, self.n
        windows = [w for w in (max(lo, p + self.max // 2), lo) if w < hi]
        for w in windows:  # 3. a pause in the voice
            cut = self._pause_cut(p, w, hi)
            if cut is not None:
                return cut, cut, cut
        for w in windows:  # 4. a quiet moment
            if hi - w >= _frames(self.min_silence_ms / 1000):
                quiet = find_pause(self.pcm[w * FRAME_BYTES:hi * FRAME_BYTES], self.min_silence_ms)
                if quiet is not None and w < w + _frames(quiet) <= hi:
                    return w + _frames(quiet), w + _frames(quiet), w + _frames(quiet)
        return hi - self.overlap, hi, hi - 2 * self.overlap  # 5. hard

    def _pause_cut(self, p: int, lo: int, hi: int) -> int | None:
        """The cut in the longest pause in the voice with a cut in (lo, hi] (the latest on ties):
        just before the voice comes back, or just after it stops if it comes back too late."""
        lead, tail = _frames(PIECE_LEAD_SECONDS), _frames(PIECE_TAIL_SECONDS)
        best = None
        for a, b in self.pauses:
            if b <= p or a >= hi:
                continue
            cut = max(b - lead, (a + b) // 2)
            if cut > hi:
                cut = min(a + tail, (a + b) // 2)
            if lo < cut <= hi:
                best = max(best or (0, 0), (b - max(a, p), cut))
        return best[1] if best else None


class _Pieces:
    """The rolling buffer of `iter_utterances`: analyses, cuts and hands out chunks."""

    def __init__(self, min_silence_ms: int, max_seconds: float):
        self.min_silence_ms, self.max_seconds = min_silence_ms, max_seconds
        self.buf = bytearray()
        self.start = 0  # position of buf[0] in the recording, in bytes
        self.p = self.keep = 0  # frames into buf: where the next span starts, and what it keeps
        self.index = 0
        self.gap: tuple[int, int] | None = None  # silence left out, in bytes, not handed out yet

    def cut(self, final: bool) -> list[Chunk]:
        pcm = bytes(self.buf)
        spans, p, keep = Cutter(pcm, final, self.min_silence_ms, self.max_seconds).cut(self.p, self.keep)
        out = []
        for s in spans:
            a, b = self._at(s.start), self._at(s.end)
            if s.gap:  # consecutive silences are one gap
                self.gap = (self.gap[0] if self.gap else a, b)
                continue
            out += self._flush_gap()
            pcm_piece = pcm[a - self.start:b - self.start]
            keep_start, keep_end = _sec(self._at(s.keep_start)), _sec(self._at(s.keep_end))
            out.append(Chunk(self.index, _sec(a), _sec(b), keep_start, keep_end, _pad(pcm_piece)))
            self.index += 1
        if final:
            out += self._flush_gap()
        drop = min(p * FRAME_BYTES, len(self.buf))
        del self.buf[:drop]
        self.start += drop
        self.p, self.keep = 0, keep - p
        return out

    def _at(self, frame: int) -> int:
        """Bytes into the recording of a frame of the buffer (the recording's end at most)."""
        return self.start + min(frame * FRAME_BYTES, len(self.buf))

    def _flush_gap(self) -> list[Chunk]:
        if not self.gap:
            return []
        a, b = self.gap
        self.gap = None
        self.index += 1
        return [Chunk(self.index - 1, _sec(a), _sec(b), _sec(a), _sec(b), b"", gap=True)]


def iter_utterances(path: Path, *, min_silence_ms: int, max_piece_seconds: float = PIECE_MAX_SECONDS,
                    on_damage: Callable[[str], None] | None = None,
                    max_seconds: float | None = None,
                    on_limit: Callable[[float], None] | None = None) -> Iterator[Chunk]:
    """Decode `path` and yield utterance pieces (a sentence or a few) and the silences between.

    For models that answer with text only: each piece is sent on its own, and its text becomes a
    segment from the piece's start to its end, so no piece is longer than `max_piece_seconds` (see
    `Cutter` for where they are cut). Voice detection chooses where to cut, never what to leave
    out: only silence by loudness is (as `gap` chunks, which carry no audio); music, singing or
    whispering that Silero does not hear as a voice is sent like speech. The recording is analysed
    ANALYSIS_SECONDS at a time, so memory stays small and the first piece leaves early. Nothing past
    `max_seconds` is decoded or carried (see `_decoded`).
    """
    blocks = _decoded(path, max_seconds, on_damage, on_limit)
    pieces = _Pieces(min_silence_ms, max_piece_seconds)
    decoded = False
    try:
        for block in blocks:
            decoded = True
            pieces.buf += block
            if len(pieces.buf) >= pcm_bytes(ANALYSIS_SECONDS):
                yield from pieces.cut(final=False)
        if not decoded:
            raise _no_audio(path)
        yield from pieces.cut(final=True)
    finally:
        blocks.close()  # stops the decoder


def utterances_in(pcm: bytes, *, min_silence_ms: int, max_piece_seconds: float = PIECE_MAX_SECONDS) -> list[Chunk]:
    """`iter_utterances` for PCM at hand, with times into it: a chunk cut for a model that gives
    times, to be sent to one that does not after all."""
    pieces = _Pieces(min_silence_ms, max_piece_seconds)
    pieces.buf += pcm
    return pieces.cut(final=True)
