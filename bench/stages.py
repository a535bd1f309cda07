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
import os
import subprocess
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


SPEED_HEADING = "## Fast again (issue 22)"


def tree_of(commit: str) -> Path:
    """The project's code at `commit`, unpacked in bench/work (`git archive`; the repository is not touched)."""
    tree = run.WORK / f"tree-{commit}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=run.ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def compare_speed(minutes: int, long_minutes: int, links: list[float | None], rtf: float, before: str) -> None:
    """Issue 22: the parser, this project before issue 14 (FLAC), at commit `before`, and now, side by
    side through each uplink; then the CPU of each stage and the peak memory, before and now."""
    service = run.Service(rtf)
    audio, expected = run.make_recording(minutes)
    old = tree_of(before)
    pipelines = (*run.PIPELINES[:2], (f"talk-to-your-audio at {before} (before issue 22)", run.OURS, (), old),
                 ("talk-to-your-audio, now", run.OURS, ()))
    runs = []
    for mbps in links:
        scenario = f"{mbps:g} Mbit/s" if mbps else "unlimited"
        for name, code, extra, *root in pipelines:
            service.reset(uplink_mbps=mbps)
            runs.append(run.run_pipeline(service, scenario, name, code, extra, audio, expected, *root))
    service.fake.stop()
    rows = []
    for length in (minutes, long_minutes):
        for name, root in ((f"{before}, before", old), ("now", run.ROOT)):
            r = measure(length, "opus-24k", root)
            rows.append((f"{length} min, {name}", r))
            print(f"  stages, {length} min, {name}: {r['per_hour']}, {r['peak_mb']:.0f} MB", flush=True)
    run.write_section(SPEED_HEADING, [
        SPEED_HEADING, "",
        f"`python bench/run.py --speed --before {before}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}: "
        f"the {minutes}-minute recording on the simulated service above (0.5 s + audio/{rtf:g} per request, "
        f"{run.ACCOUNT_RPM} requests a minute), each pipeline in turn, with speakers off (DIARIZATION=off: the parser "
        "finds none). \"CPU s\" is the CPU time of the pipeline's process and the children it waited for "
        "(ffmpeg, encoders): the parser's is small, as it mostly waits for the service; a busy machine "
        "changes it far less than the wall time.", "",
        *issue_table(runs, rows, minutes, long_minutes), "", *run.runs_table(runs), "",
        f"CPU seconds per audio hour by stage (`python bench/stages.py`: the service answers at once, so what "
        f"is left is the job's own work; speakers off), and peak RSS of the process and its children, "
        f"at {minutes} and {long_minutes} minutes:", "", *table(rows), "", SPEED_NOTES])


SPEED_NOTES = (
    "What changed (issue 22): the uploads are encoded by encoder processes of their own (`encode_worker`; "
    "the cores but one), fed in 4 s blocks: PyAV in a thread of the job hands the GIL back and forth for "
    "every 20 ms Opus packet, so the decoding, the pause search and the answers ran at the encoder's pace "
    "on one core (a thread spinning beside one encoder of 3 minutes of audio took it from 1.3 s to 82 s). "
    "Silero checks a suspect segment's first 1.6 s first and all of it only when no voice starts within "
    "1 s there (the same starts). A chunk in flight holds only its upload: its PCM was kept by the "
    "thread pool's work item until its answer, and where starts are checked it now waits in a "
    "temporary file; glibc is told to give large buffers back (a fixed mmap threshold). The encoder "
    "process and Silero start when the job does, beside the decoder, and so does the import of the openai "
    "package, on a thread of its own (`core/service/sdk.py`): it took 1.2 s of one core before the file "
    "was even probed. Uploads are encoded at libopus complexity 1, not 5, and in 60 ms frames, not 20 "
    "(see \"Upload format\"). Decoding, cutting and the cache keys are as before.")


def issue_table(runs: list[run.Run], rows: list[tuple[str, dict]], minutes: int, long_minutes: int) -> list[str]:
    """The table of issue 22: each pipeline's wall time (and times the parser's) with its peak
    memory unlimited and its bytes at 20 Mbit/s, its first text, and the peak memory of the
    stage runs (`stages.py`, the service answering at once) at both lengths."""
    names = list(dict.fromkeys(r.pipeline for r in runs))
    out = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for scenario in dict.fromkeys(r.scenario for r in runs):
        these = {r.pipeline: r for r in runs if r.scenario == scenario}
        base = these[names[0]]
        cells = [f"{r.wall_s:.0f} s, " + (f"{r.sent_mb:.0f} MB sent" if scenario != "unlimited" else f"{r.peak_mb:.0f} MB")
                 + ("" if r is base else f" ({base.wall_s / r.wall_s:.1f}x)") for r in (these[n] for n in names)]
        out.append(f"| {scenario} | " + " | ".join(cells) + " |")
        if scenario == "unlimited":
            out.append("| first text, unlimited | " + " | ".join(
                f"{these[n].first_text_s:.1f} s" if these[n].first_text_s is not None else "-" for n in names) + " |")
    peaks = [r["peak_mb"] for _, r in rows]
    if len(peaks) == 4:
        out.append(f"| peak RSS, service answering at once, {minutes} min / {long_minutes} min | - | - | "
                   f"{peaks[0]:.0f} / {peaks[2]:.0f} MB | {peaks[1]:.0f} / {peaks[3]:.0f} MB |")
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
