"""A copy of the recording that the browser's own `<audio>`/`<video>` element plays.

The media element streams with range requests, so a 3-hour file has its duration at once and
seeks anywhere; Gradio's waveform player decodes the whole file first and does not get there on
long recordings (bench/RESULTS.md, "Browser player"). The element needs a file every browser plays,
small enough to stream, so `prepare` reads what the file really holds (its header, through the
guards of `decode`, so what `decode` refuses is refused here too; the extension is never trusted):

- video that Chromium, Firefox and Safari all play (MP4/MOV with H.264 8-bit 4:2:0 and AAC or MP3;
  WebM with VP8/VP9/AV1 and Opus/Vorbis) is kept as it is;
- the same codecs in another container (MKV, AVI, FLV, MPEG-TS ...) are remuxed without
  re-encoding: H.264 to MP4 (`-c copy -movflags +faststart`), VP8/VP9/AV1 to WebM;
- any other video becomes audio only (a video streams whatever its size, so `max_mb` is for audio);
- audio the browsers play (MP3, AAC in M4A or ADTS, Ogg Vorbis/Opus, 16-bit or 8-bit PCM WAV,
  FLAC, WebM Opus/Vorbis) is kept when it is not over `max_mb`; the same codecs in another
  container (Opus in MKA, AAC in a video with HEVC ...) have their audio stream copied out;
- everything else (WMA, AMR, AC3, ALAC, ADPCM ..., or too large) gets a compressed mono copy.

The compressed copy is MP3, mono, 48 kbit/s constant bit rate at 24 kHz (21.6 MB an hour): the
fastest candidate to encode on a small server (bench/player.py), played by every browser, old
Safari included, and a constant bit rate lets the browser seek by byte offset.

Files in `folder` are named by content (the `name` given, which the app makes a keyed hash of the
recording's sha256 so that a served name cannot be computed from the file; else the sha256), so
preparing the same recording again returns the file already there; they are written to a temporary file
and renamed into place (or hardlinked whole), so a reader never sees half a file. Setting
`cancel` stops ffmpeg within POLL_SECONDS and removes what it wrote.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from . import decode
from ..cache import TMP_PREFIX, file_digest
from ..errors import Cancelled, UnsupportedMedia

PLAYABLE_MAX_MB = 200.0  # larger audio gets the compressed copy (a 3 h MP3 at 128 kbit/s is 173 MB)
POLL_SECONDS = 0.1  # how often a running ffmpeg looks at the cancel event
COPY_BLOCK = 1 << 20  # bytes copied at a time when a hardlink is not possible

# The compressed copy (see the module docstring).
COPY_SUFFIX = ".mono48k.mp3"  # names the copy apart from a kept MP3 of the same recording
COPY_MIME = "audio/mpeg"
COPY_KBPS = 48
COPY_ARGS = ("-c:a", "libmp3lame", "-b:a", f"{COPY_KBPS}k", "-ar", "24000", "-ac", "1",
             "-compression_level", "7", "-f", "mp3")

# One encoder at a time: each takes a core for ~50 s per 3 hours, and the other core is left to
# decode for transcription and to serve the page. Copies and remuxes are not counted: disk-bound.
_encoders = threading.BoundedSemaphore(1)

Kind = Literal["audio", "video"]

MIME = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg", ".wav": "audio/wav",
        ".flac": "audio/flac", ".webm": "audio/webm", ".mp4": "video/mp4"}


@dataclass(frozen=True)
class Playback:
    path: Path  # in the folder given to `prepare`
    kind: Kind
    mime: str
    converted: bool  # a compressed copy (not the recording's own bytes or streams)
    duration: float | None  # seconds, from the container; None when it does not say


# What ffmpeg's header dump says about each stream, e.g.
#   Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1280x720 ...
#   Stream #0:1: Audio: aac (LC), 44100 Hz, stereo, fltp, 128 kb/s
_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio): (\w+)(?: \(([^)]*)\))?(.*)$", re.MULTILINE)
_KBPS = re.compile(r"(\d+) kb/s")

# Browser-native codecs.
H264_PROFILES = {"Constrained Baseline", "Baseline", "Main", "High"}  # 8-bit 4:2:0 only, below
WEBM_VIDEO = {"vp8", "vp9", "av1"}
WEBM_AUDIO = {"opus", "vorbis"}
MP4_AUDIO = {"aac", "mp3"}
WAV_CODECS = {"pcm_s16le", "pcm_u8"}
KEPT_SUFFIX = {"mp3": ".mp3", "aac": ".aac", "ogg": ".ogg", "wav": ".wav", "flac": ".flac"}  # by ffmpeg's demuxer
# Audio stream alone, in its own container: codec -> (suffix, ffmpeg muxer, extra output options).
AUDIO_REMUX = {"aac": (".m4a", "mp4", ("-movflags", "+faststart")), "mp3": (".mp3", "mp3", ()),
               "opus": (".webm", "webm", ()), "vorbis": (".webm", "webm", ()), "flac": (".flac", "flac", ()),
               "pcm_s16le": (".wav", "wav", ()), "pcm_u8": (".wav", "wav", ())}


@dataclass(frozen=True)
class Stream:
    index: int  # ffmpeg's input stream number, for -map 0:N
    type: str  # "Video" or "Audio"
    codec: str
    profile: str  # what ffmpeg prints in brackets after the codec ("High", "LC"), or ""
    rest: str  # the rest of the line: pixel format, rates, "(attached pic)" ...

    @property
    def kbps(self) -> int | None:
        m = _KBPS.search(self.rest)
        return int(m[1]) if m else None


@dataclass(frozen=True)
class Probed:
    container: str  # ffmpeg's demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None
    video: Stream | None  # the first real video stream (cover art is not one)
    audio: Stream | None  # the first audio stream
    webm: bool  # a Matroska file whose DocType says WebM


def inspect(path: Path) -> Probed:
    """Read the header of `path` with the guarded `ffmpeg -i` of `decode`.

    A file `decode` refuses (a playlist, a text file, no media at all) is refused with
    `decode.probe`'s own message.
    """
    path = decode.check_file(path)
    run = subprocess.run([decode.ffmpeg_exe(), "-hide_banner", "-nostdin", *decode.input_args(path)],
                         check=False, capture_output=True, text=True, errors="replace")
    err = run.stderr
    container = decode.HEADER_CONTAINER.search(err)
    if container is None or decode.NOT_ALLOWED in err:
        decode.probe(path)  # raises with the message decode gives for this file
        raise UnsupportedMedia("{name} is not an audio or video file that ffmpeg can read.", name=path.name)
    m = decode.HEADER_DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    streams = [Stream(int(s[1]), s[2], s[3], s[4] or "", s[5]) for s in _STREAM.finditer(err)]
    video = next((s for s in streams if s.type == "Video" and "(attached pic)" not in s.rest), None)
    audio = next((s for s in streams if s.type == "Audio"), None)
    return Probed(container[1], duration, video, audio, "matroska" in container[1] and _doctype_webm(path))


def _doctype_webm(path: Path) -> bool:
    """Whether a Matroska file's EBML header names it WebM (DocType element 0x4282, "webm")."""
    with open(path, "rb") as f:
        head = f.read(64)
    return b"\x42\x82\x84webm" in head


def _h264_ok(s: Stream) -> bool:
    return s.codec == "h264" and s.profile in H264_PROFILES and bool(re.search(r",\s*yuvj?420p\b", s.rest))


@dataclass(frozen=True)
class _Plan:
    kind: Kind
    suffix: str  # of the file in the folder; also says the MIME type
    args: tuple[str, ...] | None  # ffmpeg output options; None: the file as it is
    converted: bool = False

    @property
    def mime(self) -> str:
        return "video/webm" if self.kind == "video" and self.suffix == ".webm" else MIME.get(self.suffix, COPY_MIME)


def _copy(a: Stream) -> _Plan:
    """The compressed mono copy of audio stream `a` (no cover art, no tags)."""
    return _Plan("audio", COPY_SUFFIX, ("-map", f"0:{a.index}", "-vn", "-sn", "-dn", "-map_metadata", "-1",
                                        *COPY_ARGS), converted=True)


def _plan(p: Probed, size: int, max_bytes: float, name: str) -> _Plan:
    """What the browser gets for a file with this header and size (see the module docstring)."""
    v, a = p.video, p.audio
    mov, mkv = p.container.startswith("mov,"), "matroska" in p.container
    if v is not None and a is not None:  # video streams with range requests, whatever its size
        if _h264_ok(v) and a.codec in MP4_AUDIO:
            if mov:
                return _Plan("video", ".mp4", None)
            return _Plan("video", ".mp4", ("-map", f"0:{v.index}", "-map", f"0:{a.index}", "-c", "copy",
                                           "-movflags", "+faststart", "-f", "mp4"))
        if v.codec in WEBM_VIDEO and a.codec in WEBM_AUDIO:
            if p.webm:
                return _Plan("video", ".webm", None)
            return _Plan("video", ".webm", ("-map", f"0:{v.index}", "-map", f"0:{a.index}", "-c", "copy", "-f", "webm"))
    if a is None:
        raise UnsupportedMedia("{name} has no audio track.", name=name)
    native = (p.container == "mp3" and a.codec == "mp3"
              or mov and a.codec == "aac"
              or p.container == "aac" and a.codec == "aac"
              or p.container == "ogg" and a.codec in WEBM_AUDIO
              or p.container == "wav" and a.codec in WAV_CODECS
              or p.container == "flac" and a.codec == "flac"
              or mkv and p.webm and a.codec in WEBM_AUDIO)
    remux = AUDIO_REMUX.get(a.codec)
    audio_bytes = size if v is None or a.kbps is None or p.duration is None else a.kbps * 125 * p.duration
    # A copy that would not be smaller is not worth its encoding (a long recording at a low rate).
    copy_smaller = p.duration is None or COPY_KBPS * 125 * p.duration < audio_bytes
    if native and v is None and (size <= max_bytes or not copy_smaller):
        return _Plan("audio", ".m4a" if mov else ".webm" if mkv else KEPT_SUFFIX[p.container], None)
    if remux and (audio_bytes <= max_bytes or not copy_smaller):
        suffix, muxer, extra = remux
        return _Plan("audio", suffix, ("-map", f"0:{a.index}", "-vn", "-sn", "-dn", "-c:a", "copy",
                                       "-map_metadata", "-1", *extra, "-f", muxer))
    return _copy(a)


def prepare(source: Path, folder: Path, *, name: str | None = None, max_mb: float = PLAYABLE_MAX_MB,
            cancel: threading.Event | None = None) -> Playback:
    """The recording as the browser will play it: a file in `folder` (see the module docstring).

    `name` is the content name of the file in `folder` (without suffix; `Jobs.playable` gives a
    keyed one, `core.seal`): the same for the same recording; the recording's sha256 when not
    given (`core.cache.file_digest`, which remembers it). Calling again for the same recording
    returns the file already made. Raises `UnsupportedMedia` for a file that is not
    a recording (nothing is written then), `Cancelled` when `cancel` is set (nothing is left).
    """
    cancel = cancel or threading.Event()
    source = Path(source)
    if cancel.is_set():
        raise Cancelled("Stopped making a playable copy of {name}.", name=source.name)
    probed = inspect(source)
    plan = _plan(probed, source.stat().st_size, max_mb * 2**20, source.name)
    folder = Path(folder)
    if plan.args is None and source.suffix.lower() == plan.suffix and _inside(source, folder):
        # A file made here before, handed back (a page reloaded): it is its own playable copy.
        plan = replace(plan, converted=source.name.endswith(COPY_SUFFIX))
        return _playback(source, plan, probed)
    stem = name if name is not None else file_digest(source)
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}", stem) or ".." in stem:
        raise ValueError(f"not a plain file name: {stem!r}")
    target = folder / (stem + plan.suffix)
    with _held(_writer(target), cancel, source.name):
        if not _ready(target):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _unwritable(source, e) from e
            if plan.args is None:
                _keep(source, target, cancel)
            else:
                with _held(_encoders, cancel, source.name) if plan.converted else nullcontext():
                    _ffmpeg(source, target, plan.args, cancel)
    duration = probed.duration
    if duration is None and plan.args is not None:  # the container we wrote says
        duration = inspect(target).duration
    return _playback(target, plan, probed, duration)


def _playback(path: Path, plan: _Plan, probed: Probed, duration: float | None = None) -> Playback:
    return Playback(path, plan.kind, plan.mime, plan.converted, duration if duration is not None else probed.duration)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().parent == folder.resolve()
    except OSError:
        return False


def _ready(target: Path) -> bool:
    try:
        return target.stat().st_size > 0
    except FileNotFoundError:
        return False


# One writer per target in this process; the others wait for its file (other processes write
# their own temporary file, and the last rename wins: both are whole).
_writers: dict[str, threading.Lock] = {}
_writers_guard = threading.Lock()


def _writer(target: Path) -> threading.Lock:
    with _writers_guard:
        return _writers.setdefault(os.fspath(target.absolute()), threading.Lock())


@contextmanager
def _held(lock: threading.Lock | threading.BoundedSemaphore, cancel: threading.Event, name: str) -> Iterator[None]:
    """Hold `lock`, waiting for it as long as the job is not cancelled."""
    while not lock.acquire(timeout=POLL_SECONDS):
        if cancel.is_set():
            raise Cancelled("Stopped making a playable copy of {name}.", name=name)
    try:
        yield
    finally:
        lock.release()


def _keep(source: Path, target: Path, cancel: threading.Event) -> None:
    """The recording's own bytes at `target`: a hardlink (atomic: the name appears with the whole
    file), else a copy written beside it and renamed."""
    try:
        os.link(source, target)
        return
    except FileExistsError:  # made meanwhile by another process: same name, same content
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise _unwritable(source, e) from e
    with _writing(source, target) as tmp, open(source, "rb") as src, open(tmp, "wb") as dst:
        while block := src.read(COPY_BLOCK):
            if cancel.is_set():
                raise Cancelled("Stopped making a playable copy of {name}.", name=source.name)
            dst.write(block)


@contextmanager
def _writing(source: Path, target: Path) -> Iterator[Path]:
    """A temporary file beside `target`, renamed to it when the block completes, else removed."""
    tmp: Path | None = None
    try:
        tmp = _tmp(target)
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        raise _unwritable(source, e) from e
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _tmp(target: Path) -> Path:
    """A fresh temporary name beside `target` (its prefix tells `core.cache` a write is running)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TMP_PREFIX, suffix=target.suffix)
    os.close(fd)
    return Path(tmp)


def _ffmpeg(source: Path, target: Path, args: tuple[str, ...], cancel: threading.Event) -> None:
    """Run ffmpeg on `source` (guarded as in `decode`) into a temporary file, renamed to
    `target` when complete; killed within POLL_SECONDS of `cancel`."""
    with _writing(source, target) as tmp, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [decode.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
             *decode.input_args(source), "-map_chapters", "-1", *args, "file:" + os.path.abspath(tmp)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        try:
            while True:
                try:
                    code = proc.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if cancel.is_set():
                        raise Cancelled("Stopped making a playable copy of {name}.", name=source.name) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code != 0 or not _ready(tmp):
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines()
            raise UnsupportedMedia("Could not make a playable copy of {name}: {detail}", name=source.name,
                                   detail=lines[-1] if lines else f"ffmpeg exit code {code}")


def _unwritable(source: Path, e: OSError) -> UnsupportedMedia:
    return UnsupportedMedia("Could not save a playable copy of {name}: {detail}", name=source.name,
                            detail=e.strerror or type(e).__name__)
