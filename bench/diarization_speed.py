"""Time and peak memory of finding speakers in 10 minutes, 1 hour and 3 hours, and what it adds
to a transcription's own time.

The recordings are two espeak-ng voices taking turns (a man's and `en+f3`), repeated to length,
as FLAC. Each measurement runs in a child process of its own, so its peak RSS is its own:
- listening (decode, voice detection, voice prints) and clustering, alone;
- the local transcription of the 10-minute file with DIARIZATION=off and with auto (speakers
  are found beside it, on the same two cores): the ratio is what a user waits more.

    python bench/diarization_speed.py [--minutes 10 60 180] [--model PATH_OR_SIZE] [--listen-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000

LISTEN = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from core.audio.decode import pcm_blocks
from core.speakers import cluster
from core.speakers.listen import listen
t0, c0 = time.monotonic(), time.process_time()
heard = listen(pcm_blocks({path!r}, None, None, None))
t1 = time.monotonic()
who = cluster.labels(heard, cluster.Count())
t2 = time.monotonic()
print(json.dumps({{"listen": t1 - t0, "cluster": t2 - t1, "cpu": time.process_time() - c0,
                   "speakers": len(set(who.tolist())), "windows": len(heard.times),
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

TRANSCRIBE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from core.config import Settings
from core.transcribe.pipeline import transcribe_file
settings = Settings.from_env(backend="local", local_model={model!r}, diarization={diarization!r},
                             cache_dir={cache!r})
t0 = time.monotonic()
t = transcribe_file({path!r}, settings, use_cache=False)
print(json.dumps({{"wall": time.monotonic() - t0, "speakers": len(t.meta.speakers),
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def espeak(text: str, voice: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
        return subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), "-ac", "1", "-ar",
                               str(RATE), "-f", "s16le", "pipe:1"], check=True, capture_output=True).stdout


def conversation(minutes: float, folder: Path) -> Path:
    path = folder / f"turns-{minutes:g}min.flac"
    if path.exists():
        return path
    turns = [espeak(f"Point {i}: the team reviewed item {i} of the plan and agreed on the next step for week {i}.",
                    "en" if i % 2 == 0 else "en+f3") + b"\0\0" * (RATE // 2) for i in range(24)]
    one = b"".join(turns)
    pcm = one * (int(minutes * 60 * RATE * 2 / len(one)) + 1)
    pcm = pcm[: int(minutes * 60 * RATE) * 2]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(RATE), "-ac", "1",
                    "-i", "pipe:0", str(path)], input=pcm, check=True)
    return path


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="*", default=[10, 60, 180])
    ap.add_argument("--model", default="base", help="local Whisper model for the transcription comparison")
    ap.add_argument("--listen-only", action="store_true", help="leave out the transcription comparison")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "diarization-bench")
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    print("| audio | listening | clustering | x real time | CPU s per audio hour | peak RSS | speakers |")
    print("|---|---|---|---|---|---|---|")
    for minutes in args.minutes:
        path = conversation(minutes, args.data)
        r = child(LISTEN.format(root=str(ROOT), path=str(path)))
        total = r["listen"] + r["cluster"]
        print(f"| {minutes:g} min | {r['listen']:.1f} s | {r['cluster']:.2f} s | {minutes * 60 / total:.0f}x | "
              f"{r['cpu'] * 60 / minutes:.0f} | {r['rss_mb']:.0f} MB | {r['speakers']} |", flush=True)
    if args.listen_only:
        return
    path = conversation(min(args.minutes), args.data)
    with tempfile.TemporaryDirectory() as cache:
        runs = {d: child(TRANSCRIBE.format(root=str(ROOT), path=str(path), model=args.model, diarization=d,
                                           cache=cache)) for d in ("off", "auto")}
    off, on = runs["off"], runs["auto"]
    print(f"\nLocal transcription ({args.model}) of {min(args.minutes):g} min: {off['wall']:.1f} s without speakers, "
          f"{on['wall']:.1f} s with them ({on['wall'] / off['wall']:.2f}x; {on['speakers']} found); "
          f"peak RSS {off['rss_mb']:.0f} / {on['rss_mb']:.0f} MB.")


if __name__ == "__main__":
    main()
