"""Where the CPU of a transcription goes, stage by stage, on a service that answers at once.

    python bench/stages.py                     # the 70-minute recording of bench/run.py
    python bench/stages.py --minutes 180       # the 3-hour one
    python bench/stages.py --upload flac       # another UPLOAD_FORMAT

The pipeline runs in a child process (`transcribe_file`, DIARIZATION=off: speakers are priced in
bench/diarization_speed.py) against the simulated service of bench/run.py with no latency, so
nothing waits for the network or the service: what is left is the work the job does itself. CPU
time, not wall time, is what is reported (the machine may be shared): each stage is the thread CPU
time (`time.thread_time`) spent inside the functions that do it, summed over threads; ffmpeg's
own CPU is its child rusage. Prints one JSON line, and a table in CPU seconds per audio hour:

- decode: the ffmpeg processes (probe and decoding);
- cut: the pause search (pydub's detect_silence, `voice.find_pause`);
- silence: the loudness checks (`voice.is_silent`, `voice.loud_frames`);
- voice: Silero voice detection (`voice.voice_spans`, whatever calls it);
- encode: the upload files (`encode.encode_pcm`);
- hash: the content hashes of the file and of each chunk (cache keys);
- python: the rest of the job's CPU (reading the pipe, cutting buffers, threads, HTTP, JSON);
- imports: starting Python and importing the libraries, before the job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

import run  # noqa: E402  (bench/run.py: the recordings, the simulated service, run_child)

STAGED = r"""
import json, resource, sys, threading, time
from pathlib import Path
c0 = time.process_time()
from core.config import Settings
from core.audio import chunking, decode, encode, voice
from core.transcribe import keys, pipeline
import core.cache
spent = {}
lock = threading.Lock()

def timed(stage, module, name):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        t = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            with lock:
                spent[stage] = spent.get(stage, 0.0) + time.thread_time() - t
    setattr(module, name, wrapper)
    return wrapper

for stage, module, name in (("cut", voice, "find_pause"), ("silence", voice, "is_silent"),
                            ("silence", voice, "loud_frames"), ("voice", voice, "voice_spans"),
                            ("encode", encode, "encode_pcm"), ("hash", core.cache, "file_digest"),
                            ("hash", keys, "chunk_key")):
    wrapped = timed(stage, module, name)
    for other in (chunking, pipeline, keys, core.cache, voice):  # names imported elsewhere too
        if getattr(other, name, None) is not None and other is not module:
            setattr(other, name, wrapped)
imports = time.process_time() - c0
s = Settings(api_key=sys.argv[3], base_url=sys.argv[2], cache_dir=Path(sys.argv[4]), backend="openai",
             diarization="off", upload_format=sys.argv[5])
first = []
t0 = time.perf_counter()
def progress(p):
    if p.segments and not first:
        first.append(time.perf_counter() - t0)
c1 = time.process_time()
t = pipeline.transcribe_file(Path(sys.argv[1]), s, progress)
job = time.process_time() - c1
wall = time.perf_counter() - t0
workers = []  # encoder processes (`encode_worker`), where this version has them
while hasattr(encode, "_idle") and not encode._idle.empty():
    workers.append(encode._idle.get_nowait())
import psutil
encoders = sum(sum(psutil.Process(w.proc.pid).cpu_times()[:2]) for w in workers)
spent["encode"] = spent.get("encode", 0.0) + encoders
for w in workers:
    w.close()
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"stages": spent, "job_cpu": job, "encoders_cpu": encoders,
                  "decode_cpu": children.ru_utime + children.ru_stime - encoders,
                  "imports_cpu": imports, "wall": wall, "first_text_s": first[0] if first else None,
                  "duration": t.duration, "segments": len(t.segments),
                  "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "starts": [x.start for x in t.segments]}))
"""

ORDER = ("decode", "cut", "silence", "voice", "encode", "hash", "python", "imports")


def measure(minutes: int, upload: str, root: Path = run.ROOT) -> dict:
    """One run of the staged pipeline (the code of the tree `root`) on the recording of `minutes`;
    its figures per audio hour."""
    service = run.Service(rtf=1e9, fast_decode=True)
    service.fake.latency = lambda seconds: 0.0
    service.reset()
    audio, expected = run.make_recording(minutes)
    cache = run.WORK / f"cache-stages-{time.time_ns()}"
    result, wall, peak = run.run_child(STAGED, str(audio), service.base_url, run.KEY, str(cache), upload,
                                       root=root)
    if "error" in result:
        raise SystemExit(f"the pipeline failed: {result['error']}")
    stages = dict(result["stages"])
    stages["python"] = result["job_cpu"] + result["encoders_cpu"] - sum(stages.values())
    stages["decode"] = result["decode_cpu"]
    stages["imports"] = result["imports_cpu"]
    hours = result["duration"] / 3600
    stats = service.stats()
    return {"minutes": minutes, "upload": upload, "per_hour": {k: stages.get(k, 0.0) / hours for k in ORDER},
            "cpu_total": sum(stages.values()), "wall": wall, "job_wall": result["wall"], "peak_mb": peak,
            "first_text_s": result["first_text_s"], "requests": stats["requests"],
            "sent_mb": stats["uploaded_mb"], "complete": run.check_ours(result, expected)}


def table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown: CPU seconds per audio hour by stage, one row per run."""
    out = ["| run | " + " | ".join(ORDER) + " | all CPU s/h | job wall s | peak RSS MB | first text s |",
           "|---|" + "---|" * (len(ORDER) + 4)]
    for name, r in rows:
        per = r["per_hour"]
        first = f"{r['first_text_s']:.1f}" if r["first_text_s"] is not None else "-"
        out.append(f"| {name} | " + " | ".join(f"{per[k]:.1f}" for k in ORDER)
                   + f" | {sum(per.values()):.1f} | {r['job_wall']:.1f} | {r['peak_mb']:.0f} | {first} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=70)
    parser.add_argument("--upload", default="opus-24k", help="UPLOAD_FORMAT")
    parser.add_argument("--name", default="this run", help="the row's name in the table")
    parser.add_argument("--root", type=Path, default=run.ROOT, help="the tree whose code runs (default: this one)")
    args = parser.parse_args()
    r = measure(args.minutes, args.upload, args.root.resolve())
    print(json.dumps(r))
    print("\n".join(table([(args.name, r)])))
    print(f"{r['requests']} requests, {r['sent_mb']:.1f} MB sent, {r['complete']}")


if __name__ == "__main__":
    main()
