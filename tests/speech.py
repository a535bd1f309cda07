"""Real speech for the tests: espeak-ng sentences joined with pauses, encoded with ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

RATE = 16_000

# Varied sentences (Whisper drops repeated text), each with a word that marks it.
SENTENCES = [
    ("The budget for the new library was approved on Tuesday morning.", "budget"),
    ("Maria will travel to Lisbon to meet the design team.", "travel"),
    ("Our quarterly revenue grew by twelve percent.", "revenue"),
    ("The engineers replaced the old server in the basement.", "engineer"),
    ("The doctor will call you back on Friday afternoon.", "doctor"),
    ("The concert in the park starts at seven in the evening.", "concert"),
    ("A new coffee machine arrived in the kitchen yesterday.", "coffee"),
    ("The mountain trail was closed because of heavy snow.", "mountain"),
    ("Students must submit their essays before the holiday.", "student"),
    ("The museum will open a dinosaur exhibition next spring.", "museum"),
]


@dataclass(frozen=True)
class Spoken:
    start: float
    end: float
    text: str
    key: str


def ffmpeg() -> str:
    return shutil.which("ffmpeg") or __import__("imageio_ffmpeg").get_ffmpeg_exe()


def speak_pcm(text: str, voice: str = "en-us", speed: int = 165) -> bytes:
    """16 kHz mono s16le PCM of espeak-ng saying `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
        return to_pcm(wav)


def to_pcm(path: Path) -> bytes:
    return subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-i", str(path), "-ac", "1",
                           "-ar", str(RATE), "-f", "s16le", "pipe:1"], check=True, capture_output=True).stdout


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * RATE)


def write(pcm: bytes, out: Path, *extra: str) -> Path:
    """Encode PCM to `out` (format from its extension)."""
    subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(RATE),
                    "-ac", "1", "-i", "pipe:0", *extra, str(out)], input=pcm, check=True)
    return out


def recording(out: Path, sentences=SENTENCES, pause: float = 1.2, lead: float = 0.5,
              tail: float = 0.5) -> list[Spoken]:
    """Say each sentence with `pause` seconds between them; return where each one is."""
    pcm, spoken = bytearray(silence(lead)), []
    for text, key in sentences:
        start = len(pcm) / 2 / RATE
        pcm += speak_pcm(text)
        spoken.append(Spoken(start, len(pcm) / 2 / RATE, text, key))
        pcm += silence(pause)
    pcm += silence(tail)
    write(bytes(pcm), out)
    return spoken


MP3_SAMPLES_PER_FRAME = 576  # MPEG-2 Layer III, which 16 kHz MP3s are


def lying_mp3(source: Path, out: Path, claimed: float) -> Path:
    """`source` as a 16 kHz MP3 whose Info (Xing) header counts frames for `claimed` seconds only:
    the header says less than the audio decodes to (the attack on MAX_DURATION_MINUTES)."""
    import struct

    subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-ac", "1", "-ar",
                    str(RATE), "-b:a", "32k", str(out)], check=True)
    data = bytearray(out.read_bytes())
    tag = data.find(b"Info")  # a constant-bitrate file's header: flags, frames, bytes, ...
    assert tag > 0 and data[tag + 7] & 1, "no frame count in the header"
    data[tag + 8:tag + 12] = struct.pack(">I", int(claimed * RATE / MP3_SAMPLES_PER_FRAME))
    out.write_bytes(data)
    return out
