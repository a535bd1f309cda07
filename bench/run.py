"""Benchmark: this project against LangChain's OpenAIWhisperParser, side by side, same server.

    pip install -r requirements.txt -r requirements-test.txt -r bench/requirements.txt
    python bench/run.py                    # 10, 60 and 180 minutes (about 15 minutes in all)
    python bench/run.py --sizes 10 --rtf 60   # a quick look
    python bench/run.py --pieces           # text-only model: utterance pieces vs 3-minute chunks, 60 min
    python bench/run.py --uplink           # 70 min through a 20 and a 100 Mbit/s uplink and an unlimited one
    python bench/run.py --rate-limit       # 70 min on an account allowed 10 requests a minute
    python bench/run.py --speed            # issue 22: 70 min, unlimited and 20 Mbit/s, against commit
                                           # --before too, and CPU by stage at 70 and 180 min (~20 min)

Writes bench/RESULTS.md and prints, last, `speedup_vs_langchain=<x> peak_rss_mb=<y>` for the
largest size. `--pieces`, `--uplink` and `--rate-limit` each rewrite only their own section of
RESULTS.md, and the full run only its preamble and its two sections (`--speed` too).

The recordings are varied espeak-ng sentences joined with pauses, 44.1 kHz mono MP3 at 96 kbps
(podcast-like). The simulated service (tests/fakeopenai.py on 127.0.0.1) refuses uploads over 25 MB
and takes `0.5 s + audio seconds / RTF` per request: whisper-1 returns about 30x real time in our
experience (a 10-minute file in ~20 s) plus a fixed overhead for upload and queueing, and the
time grows with the audio, not the bytes. The account may send 500 requests a minute (refused
ones count), answered beyond that with 429 and Retry-After, as the service does (`--rate-limit`
lowers it); until issue 14 the simulated service answered every 7th request 429 whatever the pace,
which no service does. Uploads come through an unlimited pipe, or with `--uplink` through one of a
home or office connection's bandwidth, shared by the uploads at once (`fakeopenai.Uplink`). It
"recognises" each spoken sentence by its energy (`fakeopenai.energy_recognizer`: a sentence between
pauses is one segment), so completeness is checked exactly: every sentence once, at the right time,
in order.
A second scenario puts a 45-second outage (503) at the start of a run of the shortest file.
Each pipeline runs in its own process; memory is the peak RSS of that process and its children
(ffmpeg), sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import speech  # noqa: E402
from core.audio import decode  # noqa: E402
from fakeopenai import FakeOpenAI, Uplink, energy_recognizer  # noqa: E402

KEY = "bench-key"
RATE = 16_000
WORK = HERE / "work"
SUBJECTS = ("budget library travel design revenue server doctor concert coffee mountain museum river garden "
            "window teacher market bridge summer winter station harbor village engine forest").split()
VERBS = "discussed approved postponed reviewed cancelled explained".split()


# ---------- recordings ----------

def sentence_pool(n: int = 120) -> list[bytes]:
    """n distinct spoken sentences as 16 kHz PCM, made once and kept in bench/work."""
    pool_dir = WORK / "pool"
    pool_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        f = pool_dir / f"{i:03d}.pcm"
        if not f.exists():
            a, b, v = SUBJECTS[i % len(SUBJECTS)], SUBJECTS[(i * 7 + 3) % len(SUBJECTS)], VERBS[i % len(VERBS)]
            f.write_bytes(speech.speak_pcm(f"Point {i + 1}: the {a} near the {b} was {v} by the team."))
        out.append(f.read_bytes())
    return out


def make_recording(minutes: int) -> tuple[Path, list[float]]:
    """A recording of `minutes`, and the start time of every sentence in it."""
    path, timeline = WORK / f"talk-{minutes}min.mp3", WORK / f"talk-{minutes}min.json"
    if path.exists() and timeline.exists():
        return path, json.loads(timeline.read_text())
    pool, rng = sentence_pool(), np.random.default_rng(minutes)
    enc = subprocess.Popen([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(RATE),
                            "-ac", "1", "-i", "pipe:0", "-ar", "44100", "-ac", "1", "-b:a", "96k", str(path)],
                           stdin=subprocess.PIPE)
    starts, written, total = [], 0, minutes * 60 * RATE * 2
    while written < total:
        pause = speech.silence(float(rng.uniform(0.4, 1.4)))
        clip = pool[int(rng.integers(len(pool)))]
        starts.append((written + len(pause)) / 2 / RATE)
        enc.stdin.write(pause + clip)
        written += len(pause) + len(clip)
    enc.stdin.close()
    enc.wait()
    timeline.write_text(json.dumps(starts))
    return path, starts


# ---------- the simulated service ----------

def decode_in_process(data: bytes) -> np.ndarray | None:
    """The simulated service's decoding with PyAV in its own process: starting an ffmpeg per
    request costs ~0.1 s of CPU, which hundreds of short requests would take from the 2 cores the
    pipeline runs on. The service's cost is its latency model, not this machine's CPU."""
    import io

    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=RATE)
    except Exception:
        return None
    return audio if len(audio) else None


def decode_niced(data: bytes) -> np.ndarray | None:
    """The simulated service's decoding (`fakeopenai.decode`) in standing decoder processes at the
    lowest CPU priority: a real service decodes on its own machines, and here its decoding would
    take from the 2 cores the pipelines run on. They stay up (PyAV, the libav ffmpeg is built on):
    an ffmpeg started per request spent more CPU starting than decoding a short upload (0.11 s
    against 0.06 s of PyAV for 27 s of Opus), about 3 s of the 2 cores in a 70-minute run."""
    return _decoders().submit(decode_in_process, data).result()


@functools.cache
def _decoders():
    """The service's decoder processes: as many as the cores, at nice 19, so a decoding never waits
    for another's turn, only for the cores the pipelines leave. Forked all at once and warmed on the
    first call, which `Service` makes before the server's threads start."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = os.cpu_count() or 2
    pool = ProcessPoolExecutor(max_workers=workers, initializer=os.nice, initargs=(19,),
                               mp_context=multiprocessing.get_context("fork"))
    atexit.register(pool.shutdown)  # before the interpreter tears its modules down
    for warming in [pool.submit(_warm_decoder) for _ in range(workers)]:
        warming.result()
    return pool


def _warm_decoder() -> None:
    """A decoder process ready before the first request: PyAV imported (held a moment, so each
    of the processes started together warms itself)."""
    import faster_whisper.audio  # noqa: F401

    time.sleep(0.5)


ACCOUNT_RPM = 500  # the simulated account's requests per minute (OpenAI's tier 1 for audio)


class Service:
    def __init__(self, rtf: float, fast_decode: bool = False):
        import fakeopenai

        fakeopenai.decode = decode_in_process if fast_decode else decode_niced
        if not fast_decode:
            _decoders()  # forked and warm before the server's threads start and any pipeline runs
        self.fake = FakeOpenAI(api_key=KEY, recognizer=energy_recognizer,
                               latency=lambda seconds: 0.5 + seconds / rtf, chat_delay=0.02)
        self.base_url = self.fake.start()

    def reset(self, outage: float = 0.0, uplink_mbps: float | None = None, rpm: int = ACCOUNT_RPM) -> None:
        """A fresh service: the account's limit of requests a minute, the user's uplink (None:
        unlimited), and `outage` seconds of 503 from the first request on."""
        self.fake.clear()
        self.fake.rate_limit(rpm, 60.0)
        self.fake.uplink = Uplink(uplink_mbps * 1e6) if uplink_mbps else None
        if outage:
            started: list[float] = []

            def down(info) -> bool:
                started or started.append(time.monotonic())
                return time.monotonic() - started[0] < outage

            self.fake.faults.insert(0, type(self.fake.faults[0])(path="transcriptions", status=503, times=None,
                                                                 when=down))

    def stats(self) -> dict:
        reqs = self.fake.requests()
        return {"requests": len(reqs), "uploaded_mb": sum(r.info.get("bytes", 0) for r in reqs) / 2**20,
                "refused_429": sum(r.status == 429 for r in reqs)}


# ---------- the two pipelines, each in its own process ----------

# sys.argv[5], when given: "before" runs the pipeline as it was before issue 14, in the same code:
# lossless FLAC uploads, every chunk CHUNK_SECONDS long, 16 requests in flight whatever the service
# says (each chunk backs off on its own, honouring Retry-After).
OURS = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from core.config import Settings
from core.transcribe import cutting
from core.transcribe.pipeline import transcribe_file
from core.transcribe.ratelimit import InFlight
from core.answer import chat
before = sys.argv[5:] == ["before"]
if before:
    cutting.FIRST_CHUNK_SECONDS = float("inf")
    InFlight.succeeded = lambda self, sent_in: None
    InFlight.throttled = lambda self, sent_in, retry_after: None
    InFlight.budget = lambda self, seen: None
# DIARIZATION=off: the parser finds no speakers, and they cost the same on any pipeline (about 195 s
# of one core an hour, bench/diarization_speed.py): like is compared with like.
s = Settings(api_key=sys.argv[3], base_url=sys.argv[2], cache_dir=Path(sys.argv[4]), backend="openai",
             diarization="off", **({"upload_format": "flac", "concurrency": 16} if before else {}))
first = []
def progress(p):
    if p.segments and not first:
        first.append(time.perf_counter() - t0)
t1 = time.perf_counter()
t = transcribe_file(Path(sys.argv[1]), s, progress)
call = time.perf_counter() - t1
reply = chat.ask(t, "What was said about the budget?", [], s)
t2 = time.perf_counter()
token = None
for piece in reply.stream:
    token = token or time.perf_counter() - t2
print(json.dumps({"starts": [x.start for x in t.segments], "first_text_s": first[0] if first else None,
                  "call_s": call, "first_token_s": token}))
"""

BASELINE = r"""
import json, os, sys, time
t0 = time.perf_counter()
from langchain_community.document_loaders.parsers.audio import OpenAIWhisperParser
from langchain_core.documents.base import Blob
parser = OpenAIWhisperParser(api_key=sys.argv[3], base_url=sys.argv[2])
docs, first = [], None
sys.stdout = sys.stderr  # the parser prints progress
for doc in parser.lazy_parse(Blob.from_path(sys.argv[1])):
    first = first or time.perf_counter() - t0
    docs.append(doc)
sys.stdout = sys.__stdout__
print(json.dumps({"texts": [d.page_content for d in docs], "chunks": [d.metadata["chunk"] for d in docs],
                  "first_text_s": first}))
"""


# A text-only model (gpt-4o-transcribe on the simulated service: json, no segments), cut into
# utterance pieces as the pipeline does now, or into ~3-minute chunks as it did before (one
# segment per chunk): the same code with the choice of cutting forced.
PIECES = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from core.config import Settings
from core.transcribe import keys, pipeline as transcribe
if sys.argv[5] == "chunks":  # as before: one segment per chunk, nothing cut again
    transcribe.by_utterance = keys.by_utterance = lambda backend: False
    transcribe._fixes_starts = lambda backend: False
    transcribe._one_text = lambda segments, chunk: False
s = Settings(api_key=sys.argv[3], base_url=sys.argv[2], cache_dir=Path(sys.argv[4]), backend="openai",
             transcribe_model="gpt-4o-transcribe")
first = []
def progress(p):
    if p.segments and not first:
        first.append(time.perf_counter() - t0)
t = transcribe.transcribe_file(Path(sys.argv[1]), s, progress)
print(json.dumps({"segments": [[x.start, x.end, x.text.count("spoken sentence")] for x in t.segments],
                  "first_text_s": first[0] if first else None, "duration": t.duration}))
"""
PIECES_HEADING = "## Text-only models: utterance pieces against 3-minute chunks"
CITE_WITHIN = 10.0  # s: the target, a segment starts at most this long before what it holds


def run_child(code: str, *args: str, root: Path = ROOT) -> tuple[dict, float, float]:
    """Run a pipeline (the code of the tree `root`); return its JSON, wall seconds and peak RSS (MB)
    of it and its children. The JSON gets `cpu_s`: the CPU time of the process and of the children
    it waited for (ffmpeg, encoders), which a busy machine changes far less than the wall time."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(root))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                total = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                peak[0] = max(peak[0], total)
            except psutil.Error:
                pass
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    done.set()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "cpu_s": usage.ru_utime + usage.ru_stime}, wall, peak[0] / 2**20
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result, wall, peak[0] / 2**20


@dataclass
class Row:
    size: int
    pipeline: str
    wall_s: float
    peak_mb: float
    uploaded_mb: float
    requests: int
    first_text_s: float | None
    complete: str
    extra: str = ""


def check_ours(result: dict, expected: list[float]) -> str:
    if "error" in result:
        return f"failed ({result['error']})"
    starts = result["starts"]
    if starts != sorted(starts):
        return "OUT OF ORDER"
    found = np.searchsorted(starts, np.array(expected) - 0.3)
    hits = sum(1 for e, i in zip(expected, found) if i < len(starts) and abs(starts[i] - e) < 0.3)
    extra = len(starts) - hits
    return f"{hits}/{len(expected)} sentences in order" + (f", {extra} extra" if extra else "")


def check_baseline(result: dict, expected: list[float], duration: float) -> str:
    if "error" in result:
        return f"failed ({result['error']})"
    said = sum(t.count("spoken sentence") for t in result["texts"])
    chunks_expected = -(-int(duration * 1000) // 1_200_000)  # its fixed 20-minute cuts, as pydub makes them
    lost = chunks_expected - len(result["chunks"])
    return f"{said}/{len(expected)} sentences (no timestamps)" + (f", {lost} chunk(s) LOST" if lost else "")


def cited_in_time(segments: list, expected: list[float]) -> int:
    """Sentences whose segment (the one their start falls in) starts at most CITE_WITHIN before them."""
    starts = np.array([s[0] for s in segments])
    ends = np.array([s[1] for s in segments])
    hits = 0
    for e in expected:
        holding = np.flatnonzero((starts <= e) & (e < ends))
        hits += bool(len(holding)) and e - starts[holding[0]] <= CITE_WITHIN
    return hits


def compare_pieces(minutes: int, rtf: float) -> None:
    """A text-only model on one recording: utterance pieces against the ~3-minute chunks of before."""
    service = Service(rtf, fast_decode=True)
    audio, expected = make_recording(minutes)
    print(f"{minutes} min, text-only model: {len(expected)} sentences", flush=True)
    rows = []
    for mode in ("chunks", "pieces"):
        service.reset()
        cache = WORK / f"cache-{mode}-{time.time_ns()}"
        result, wall, peak = run_child(PIECES, str(audio), service.base_url, KEY, str(cache), mode)
        stats = service.stats()
        if "error" in result:
            rows.append((mode, wall, peak, stats, None, result["error"]))
            print(f"  {mode}: failed ({result['error']})", flush=True)
            continue
        segments = result["segments"]
        longest = max(e - s for s, e, _ in segments)
        note = (f"{cited_in_time(segments, expected)}/{len(expected)} sentences cited within {CITE_WITHIN:g} s; "
                f"{sum(n for *_, n in segments)} heard; segments {len(segments)}, longest {longest:.1f} s")
        rows.append((mode, wall, peak, stats, result["first_text_s"], note))
        print(f"  {mode}: {wall:.1f} s, {stats['requests']} requests, first text {result['first_text_s']:.1f} s, "
              f"{note}", flush=True)
    lines = [PIECES_HEADING, "",
             f"`python bench/run.py --pieces --pieces-minutes {minutes} --rtf {rtf:g}` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}: gpt-4o-transcribe (text only) on the simulated service above, "
             "concurrency 16. \"chunks\" is the cutting of before (about 3 minutes, one segment each), forced "
             "in the same code; \"pieces\" the utterance pieces of now (at most 10 s, silences over 2 s left "
             "out). Requests include the 429s. The simulated service decodes uploads in-process here "
             "(`decode_in_process`), so its own CPU does not slow the pipeline on the same cores.", "",
             "| cutting | wall s | requests | requests per hour of audio | uploaded MB | peak RSS MB | first text s "
             "| timing |", "|---|---|---|---|---|---|---|---|"]
    for mode, wall, peak, stats, first, note in rows:
        per_hour = stats["requests"] * 60 / minutes
        first_s = f"{first:.1f}" if first is not None else "-"
        lines.append(f"| {mode} | {wall:.1f} | {stats['requests']} | {per_hour:.0f} | {stats['uploaded_mb']:.1f} "
                     f"| {peak:.0f} | {first_s} | {note} |")
    lines += ["", "\"timing\" counts the sentences whose segment (the one their start falls in) starts at most "
              f"{CITE_WITHIN:g} s before them: the target for every model. Pieces cost many more requests, each "
              "paying the service's fixed 0.5 s, and voice detection (Silero, about 11 s of one core per hour of "
              "audio) runs as the file is decoded; the first text comes sooner, as a piece is done long before "
              "a 3-minute chunk. Hundreds of requests a minute can meet a rate limit that twenty never did: "
              "the pipeline waits as Retry-After says."]
    write_section(PIECES_HEADING, lines)


def write_section(heading: str, lines: list[str]) -> None:
    """Put `lines` (starting with `heading`) in place of that section of RESULTS.md, or at its end."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    before, found, after = text.partition(heading)
    rest = after[after.find("\n## "):] if found and "\n## " in after else ""
    path.write_text(before.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + rest)


def kept_section(heading: str) -> list[str]:
    """That section of RESULTS.md as it is, to carry over when the rest is written anew."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    if heading not in text:
        return []
    section = text[text.index(heading):]
    end = section.find("\n## ", 1)
    return (section if end < 0 else section[:end]).rstrip("\n").splitlines() + [""]


# ---------- issue 14: a shared uplink, and a rate-limited account ----------

UPLINK_HEADING = "## What users live with: a shared uplink (issue 14)"
RATE_HEADING = "## A rate-limited account (issue 14)"
PIPELINES = (("langchain OpenAIWhisperParser", BASELINE, ()),
             ("talk-to-your-audio, before (FLAC, fixed 16 in flight)", OURS, ("before",)),
             ("talk-to-your-audio", OURS, ()))


@dataclass
class Run:
    scenario: str
    pipeline: str
    wall_s: float
    peak_mb: float
    sent_mb: float
    requests: int
    refused: int  # 429s
    first_text_s: float | None
    complete: str
    cpu_s: float = 0.0


def run_pipeline(service: Service, scenario: str, name: str, code: str, extra: tuple, audio: Path,
                 expected: list[float], root: Path = ROOT) -> Run:
    cache = WORK / f"cache-{time.time_ns()}"
    result, wall, peak = run_child(code, str(audio), service.base_url, KEY, str(cache), *extra, root=root)
    shutil.rmtree(cache, ignore_errors=True)
    stats = service.stats()
    complete = (check_baseline(result, expected, decode.probe(audio).duration) if code is BASELINE
                else check_ours(result, expected))
    run = Run(scenario, name, wall, peak, stats["uploaded_mb"], stats["requests"], stats["refused_429"],
              result.get("first_text_s"), complete, result.get("cpu_s", 0.0))
    first = f"{run.first_text_s:.1f}" if run.first_text_s is not None else "-"
    print(f"  {scenario}, {name}: {wall:.1f} s ({run.cpu_s:.1f} s CPU), {run.sent_mb:.1f} MB, first text {first} s, {peak:.0f} MB, "
          f"{run.requests} requests ({run.refused} refused), {complete}", flush=True)
    return run


def runs_table(runs: list[Run]) -> list[str]:
    out = ["| scenario | pipeline | wall s | vs parser | CPU s | MB sent | of parser's bytes "
           "| first text s | peak RSS MB | requests (429) | complete |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        base = next((b for b in runs if b.scenario == r.scenario and b.pipeline.startswith("langchain")), None)
        faster = f"{base.wall_s / r.wall_s:.1f}x" if base else "-"
        share = f"{r.sent_mb / base.sent_mb:.0%}" if base and base.sent_mb else "-"
        first = f"{r.first_text_s:.1f}" if r.first_text_s is not None else "-"
        out.append(f"| {r.scenario} | {r.pipeline} | {r.wall_s:.1f} | {faster} | {r.cpu_s:.1f} "
                   f"| {r.sent_mb:.1f} | {share} | {first} | {r.peak_mb:.0f} | {r.requests} ({r.refused}) "
                   f"| {r.complete} |")
    return out


def compare_uplinks(minutes: int, links: list[float | None], rtf: float) -> None:
    """Every pipeline on one recording, the uploads through one pipe of each bandwidth."""
    service = Service(rtf)
    audio, expected = make_recording(minutes)
    print(f"{minutes} min: {audio.stat().st_size / 2**20:.0f} MB, {len(expected)} sentences", flush=True)
    runs = []
    for mbps in links:
        scenario = f"{mbps:g} Mbit/s" if mbps else "unlimited"
        for name, code, extra in PIPELINES:
            service.reset(uplink_mbps=mbps)
            runs.append(run_pipeline(service, scenario, name, code, extra, audio, expected))
    write_section(UPLINK_HEADING, [
        UPLINK_HEADING, "",
        f"`python bench/run.py --uplink --uplink-minutes {minutes}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}: the {minutes}-minute recording (espeak-ng sentences with pauses, "
        f"{audio.stat().st_size / 2**20:.0f} MB MP3) on the simulated service above (0.5 s + audio/{rtf:g} per "
        f"request, {ACCOUNT_RPM} requests a minute), every upload read through one pipe of the given bandwidth "
        "(`fakeopenai.Uplink`: uploads at once share it); the service's own decoding of an upload is counted "
        "inside its time, not on top of it. \"before\" is this project as it was before issue 14, "
        "in the same code (`OURS` with `before`): FLAC, every chunk 180 s, 16 requests in flight whatever "
        "happens; now: Ogg Opus 24 kbit/s, short first and last chunks, up to 32 in flight. \"first text\" counts from the process's start; memory is the peak RSS of the process and "
        "its children.", "", *runs_table(runs), "", UPLINK_NOTES])


UPLINK_NOTES = (
    "Unlimited and at 100 Mbit/s, FLAC is about as fast: it costs almost no CPU to encode, where Opus takes "
    "about 6 s of CPU an hour of audio (in encoder processes of their own), on 2 cores that also run the "
    "simulated service. Through a home uplink the bytes decide: at 20 Mbit/s 55 MB of FLAC take 23 s of the "
    "pipe alone, 10 MB of Opus 4 s. Peak memory is mostly the native libraries the pipeline loads (Silero "
    "voice detection in onnxruntime, CTranslate2 through faster-whisper, libav) and the allocator's arenas; "
    "the chunks in flight hold only their uploads, and their PCM waits on disk where starts are checked "
    "(issue 22).")


def compare_rate_limit(minutes: int, rpm: int, rtf: float, mbps: float | None) -> None:
    """Every pipeline on one recording, on an account allowed `rpm` requests a minute."""
    service = Service(rtf)
    audio, expected = make_recording(minutes)
    scenario = f"{rpm} requests/min" + (f", {mbps:g} Mbit/s" if mbps else "")
    runs = []
    for name, code, extra in PIPELINES:
        service.reset(uplink_mbps=mbps, rpm=rpm)
        runs.append(run_pipeline(service, scenario, name, code, extra, audio, expected))
    ours = runs[-1]
    sent = ours.requests - ours.refused
    fixed = math.ceil(decode.probe(audio).duration / 180)  # requests with 3-minute chunks throughout
    write_section(RATE_HEADING, [
        RATE_HEADING, "",
        f"`python bench/run.py --rate-limit --rate-minutes {minutes} --rpm {rpm}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}: the {minutes}-minute recording on an account allowed "
        f"{rpm} transcription requests in any 60 s, refused ones included, as the service counts them "
        "(`fakeopenai.RateLimit`: 429 `rate_limit_exceeded` with Retry-After, the time until the window has "
        "room; every answer says what is left and when the limit is whole again, in the `x-ratelimit-*-requests` "
        f"headers). In 3-minute chunks the recording is {fixed} requests, and the limit's floor for them "
        f"{(math.ceil(fixed / rpm) - 1) * 60:.0f} s (a minute for every {rpm} after the first {rpm}) plus the last "
        f"request's own time. This project sent {sent}: once the service had said how much room it had, the rest "
        "of the recording went in as many longer chunks, so its time is the decoding, a window's wait where the room ran "
        "out, and its longest requests' own (0.5 s + audio/30 on this service).", "", *runs_table(runs)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,60,180", help="minutes, comma-separated")
    parser.add_argument("--rtf", type=float, default=30.0, help="simulated service speed, x real time")
    parser.add_argument("--outage", type=float, default=45.0, help="seconds of 503s in the outage scenario")
    parser.add_argument("--pieces", action="store_true",
                        help="only compare utterance pieces with 3-minute chunks for a text-only model")
    parser.add_argument("--pieces-minutes", type=int, default=60, help="length of the recording for --pieces")
    parser.add_argument("--uplink", action="store_true", help="only compare the pipelines through shared uplinks")
    parser.add_argument("--uplink-minutes", type=int, default=70, help="length of the recording for --uplink")
    parser.add_argument("--links", default="0,100,20", help="Mbit/s, comma-separated; 0 is unlimited")
    parser.add_argument("--rate-limit", action="store_true", help="only compare the pipelines on a rate-limited account")
    parser.add_argument("--rate-minutes", type=int, default=70, help="length of the recording for --rate-limit")
    parser.add_argument("--rpm", type=int, default=10, help="requests a minute the account may send, for --rate-limit")
    parser.add_argument("--rate-link", type=float, default=0, help="Mbit/s for --rate-limit; 0 is unlimited")
    parser.add_argument("--speed", action="store_true",
                        help="issue 22: the pipelines side by side, with the project at --before, and CPU by stage")
    parser.add_argument("--before", default="826985d", help="the commit --speed compares with")
    parser.add_argument("--speed-minutes", type=int, default=70, help="length of the recording for --speed")
    parser.add_argument("--speed-links", default="0,20", help="Mbit/s for --speed, comma-separated; 0 is unlimited")
    parser.add_argument("--speed-long", type=int, default=180, help="the long recording --speed measures memory on")
    args = parser.parse_args()
    if args.speed:
        import stages

        stages.compare_speed(args.speed_minutes, args.speed_long, [float(x) or None for x in args.speed_links.split(",")],
                      args.rtf, args.before)
        return
    if args.pieces:
        compare_pieces(args.pieces_minutes, args.rtf)
        return
    if args.uplink:
        compare_uplinks(args.uplink_minutes, [float(x) or None for x in args.links.split(",")], args.rtf)
        return
    if args.rate_limit:
        compare_rate_limit(args.rate_minutes, args.rpm, args.rtf, args.rate_link or None)
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    service = Service(args.rtf)
    rows: list[Row] = []
    for minutes in sizes:
        audio, expected = make_recording(minutes)
        print(f"{minutes} min: {audio.stat().st_size / 2**20:.0f} MB, {len(expected)} sentences", flush=True)
        cache = WORK / f"cache-{minutes}-{time.time_ns()}"
        for name, code in (("langchain OpenAIWhisperParser", BASELINE), ("talk-to-your-audio", OURS)):
            service.reset()
            result, wall, peak = run_child(code, str(audio), service.base_url, KEY, str(cache))
            stats = service.stats()
            complete = (check_baseline(result, expected, decode.probe(audio).duration) if code is BASELINE
                        else check_ours(result, expected))
            extra = ""
            if code is OURS and "error" not in result:
                extra = f"first answer token {result['first_token_s']:.2f} s"
            rows.append(Row(minutes, name, wall, peak, stats["uploaded_mb"], stats["requests"],
                            result.get("first_text_s"), complete, extra))
            print(f"  {name}: {wall:.1f} s, {peak:.0f} MB, {stats['requests']} requests, {complete}", flush=True)
        service.reset()
        result, wall, peak = run_child(OURS, str(audio), service.base_url, KEY, str(cache))
        rows.append(Row(minutes, "talk-to-your-audio, second run", wall, peak, service.stats()["uploaded_mb"],
                        service.stats()["requests"], result.get("first_text_s"), check_ours(result, expected),
                        f"transcribe call {result.get('call_s', 0):.2f} s"))
        print(f"  second run: {wall:.1f} s ({result.get('call_s', 0):.2f} s in the call), "
              f"{service.stats()['requests']} requests", flush=True)

    # Outage: the service answers 503 for the first `outage` seconds of the run.
    outage_rows = []
    minutes = sizes[0]
    audio, expected = make_recording(minutes)
    for name, code in (("langchain OpenAIWhisperParser", BASELINE), ("talk-to-your-audio", OURS)):
        service.reset(outage=args.outage)
        cache = WORK / f"cache-outage-{time.time_ns()}"
        result, wall, peak = run_child(code, str(audio), service.base_url, KEY, str(cache))
        complete = check_baseline(result, expected, decode.probe(audio).duration) if code is BASELINE else check_ours(result, expected)
        outage_rows.append(Row(minutes, name, wall, peak, service.stats()["uploaded_mb"], service.stats()["requests"],
                               result.get("first_text_s"), complete))
        print(f"  outage, {name}: {wall:.1f} s, {complete}", flush=True)

    write_results(rows, outage_rows, args)
    largest = max(sizes)
    base = next(r for r in rows if r.size == largest and r.pipeline.startswith("langchain"))
    ours = next(r for r in rows if r.size == largest and r.pipeline == "talk-to-your-audio")
    print(f"speedup_vs_langchain={base.wall_s / ours.wall_s:.1f} peak_rss_mb={ours.peak_mb:.0f}")


def write_results(rows: list[Row], outage_rows: list[Row], args) -> None:
    """The preamble and the two sections of the full run; the other sections stay as they are."""
    def table(rs: list[Row]) -> list[str]:
        out = ["| minutes | pipeline | wall s | speedup | peak RSS MB | uploaded MB | requests | first text s "
               "| complete | notes |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            base = next(b for b in rs if b.size == r.size and b.pipeline.startswith("langchain"))
            first = f"{r.first_text_s:.1f}" if r.first_text_s is not None else "-"
            out.append(f"| {r.size} | {r.pipeline} | {r.wall_s:.1f} | {base.wall_s / r.wall_s:.1f}x | "
                       f"{r.peak_mb:.0f} | {r.uploaded_mb:.1f} | {r.requests} | {first} | {r.complete} | {r.extra} |")
        return out

    preamble = ["# Benchmark results", "",
                f"Made by `python bench/run.py --sizes {args.sizes} --rtf {args.rtf:g}` on {os.cpu_count()} cores, "
                f"{time.strftime('%Y-%m-%d')}. Simulated service: 25 MB limit, 0.5 s + audio/{args.rtf:g} per "
                f"request, {ACCOUNT_RPM} requests a minute, unlimited uplink. See bench/run.py for the model."]
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    rest = text[text.find("\n## "):] if "\n## " in text else ""
    path.write_text("\n".join(preamble) + "\n" + rest)
    write_section(SAME_HEADING, [SAME_HEADING, "", *table(rows)])
    outage = f"## A {args.outage:g}-second outage (503) at the start"
    write_section(outage, [outage, "", *table(outage_rows)])


SAME_HEADING = "## Same files, same service"


if __name__ == "__main__":
    main()
