"""The browser player for long recordings: which compressed copy to make, and native `<audio>`
against Gradio's waveform player (`gr.Audio`), on a 3-hour recording.

    python bench/player.py                  # both parts, about 20 minutes on 2 cores
    python bench/player.py --skip-encode    # the browser part only (reuses the files made before)

1. Encoding: a 3-hour recording is built cheaply (about 60 s of espeak-ng speech, encoded once as
   a 128 kbit/s stereo MP3, then joined 180 times by ffmpeg's concat demuxer with `-c copy`; and a
   16 kHz mono WAV with `-stream_loop`), and each candidate copy format is encoded from it with the
   guarded ffmpeg input of core/audio/decode.py. The slow candidates are timed on the first 30 minutes and
   scaled (marked so); the finalists on the whole 3 hours.
2. Browser: Debian's Chromium, headless, through Playwright. (a) a plain
   `<audio preload="metadata" controls>` fed by a local HTTP server that answers Range requests:
   time to `loadedmetadata` with the right duration, time for a seek to 2:00:00 to reach
   `canplay`, bytes served, and whether the page answers a script (`1+1`) within 100 ms meanwhile;
   (b) a minimal `gr.Blocks` with `gr.Audio(value=file)` (WaveSurfer): time until the waveform is
   decoded (its duration label is filled) or 60 s, and how long the page went without answering.
   Memory is the summed RSS (and PSS, which counts shared pages once) of the Chromium process tree,
   from /proc, peak over the run.

Results go to stdout as Markdown; bench/RESULTS.md has the section "Browser player (issue 12)".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import speech

from core.audio import decode
from core.audio import playback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
SEEK_TO = 7200.0  # 2:00:00
SHORT_MINUTES = 30  # a shorter recording for gr.Audio, to see where it still copes
ANSWER_MS = 100.0  # a page that answers a script within this is responsive

# name -> (ffmpeg output options, suffix, scaled from a slice unless a finalist)
CANDIDATES = {
    "MP3 mono 48 kbit/s CBR, 24 kHz, LAME q7 (chosen)": (playback.COPY_ARGS, ".mp3"),
    "MP3 mono 64 kbit/s CBR, 32 kHz, LAME q7": (("-c:a", "libmp3lame", "-b:a", "64k", "-ar", "32000", "-ac", "1",
                                                  "-compression_level", "7", "-f", "mp3"), ".mp3"),
    "Opus mono 24 kbit/s in WebM (libopus defaults)": (("-c:a", "libopus", "-b:a", "24k", "-ac", "1", "-f", "webm"),
                                                       ".webm"),
    "Opus mono 24 kbit/s in WebM, complexity 5, voip": (("-c:a", "libopus", "-b:a", "24k", "-ac", "1",
                                                          "-compression_level", "5", "-application", "voip",
                                                          "-f", "webm"), ".webm"),
    "Opus mono 32 kbit/s in Ogg (libopus defaults)": (("-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-f", "ogg"),
                                                      ".ogg"),
    "AAC mono 48 kbit/s in M4A (ffmpeg aac)": (("-c:a", "aac", "-b:a", "48k", "-ac", "1", "-movflags", "+faststart",
                                                "-f", "mp4"), ".m4a"),
}
FINALISTS = ("MP3 mono 48 kbit/s CBR, 24 kHz, LAME q7 (chosen)", "Opus mono 24 kbit/s in WebM (libopus defaults)")


def run(*args: str) -> None:
    subprocess.run([decode.ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def seconds_of(path: Path) -> float:
    return playback.inspect(path).duration or 0.0


# Inputs


def build_inputs(work: Path, hours: float) -> dict[str, Path]:
    """A 3-hour 128 kbit/s stereo MP3 and a 3-hour 16 kHz mono WAV, from one minute of speech."""
    work.mkdir(parents=True, exist_ok=True)
    minute_mp3, minute_wav = work / "minute.mp3", work / "minute.wav"
    if not minute_mp3.exists():
        text = " ".join(t for t, _ in speech.SENTENCES) * 2
        pcm = speech.speak_pcm(text)[: speech.RATE * 2 * 60]
        pcm += speech.silence(60 - len(pcm) / 2 / speech.RATE)
        speech.write(pcm, minute_wav)
        run("-i", str(minute_wav), "-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", str(minute_mp3))
    n = round(hours * 60)
    long_mp3, long_wav = work / f"talk-{hours:g}h.mp3", work / f"talk-{hours:g}h.wav"
    if not long_mp3.exists():
        listing = work / "minutes.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + f"file '{minute_mp3.name}'\n" * n)
        run("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(long_mp3))
    if not long_wav.exists():
        run("-stream_loop", str(n - 1), "-i", str(minute_wav), "-c", "copy", str(long_wav))
    return {"mp3": long_mp3, "wav": long_wav}


# 1. Encoding


@dataclass
class Encoded:
    candidate: str
    source: str
    seconds: float  # for the whole recording (scaled when `sliced`)
    mb_per_hour: float
    cpu: float  # user+sys seconds of ffmpeg, scaled likewise
    sliced: float | None  # seconds of audio actually encoded, when not the whole


def copy_path(work: Path, source_name: str, candidate: str) -> Path:
    """Where the copy of the input `source_name` in the format `candidate` is written."""
    return work / f"copy-{source_name}-{re.sub(r'[^a-z0-9]+', '-', candidate.lower())[:40]}{CANDIDATES[candidate][1]}"


def encode(source: Path, out: Path, args: tuple[str, ...], limit: float | None) -> tuple[float, float]:
    """Wall and CPU seconds to encode `source` (or its first `limit` seconds) the way core/playback does."""
    cmd = [decode.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *decode.input_args(source),
           "-map", "0:a:0", "-vn", "-map_metadata", "-1", *(["-t", f"{limit:g}"] if limit else []), *args,
           "file:" + str(out)]
    before = os.times()
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def bench_encoding(inputs: dict[str, Path], work: Path, slice_seconds: float, only: set[str] | None) -> list[Encoded]:
    results = []
    for source_name, source in inputs.items():
        total = seconds_of(source)
        for name, (args, _) in CANDIDATES.items():
            if only and not any(o.lower() in name.lower() for o in only):
                continue
            whole = name in FINALISTS and (source_name == "mp3" or name == FINALISTS[0])
            limit = None if whole else min(slice_seconds, total)
            out = copy_path(work, source_name, name)
            wall, cpu = encode(source, out, args, limit)
            done = seconds_of(out) or (limit or total)
            scale = total / done
            r = Encoded(name, source_name, wall * scale, out.stat().st_size / 1e6 / (done / 3600), cpu * scale,
                        None if whole else done)
            scaled = "" if whole else f" (scaled from {done:.0f} s)"
            print(f"  {source_name} {name}: {r.seconds:.0f} s, {r.mb_per_hour:.1f} MB/h{scaled}", file=sys.stderr,
                  flush=True)
            results.append(r)
    return results


# 2. Browser


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range requests, as a real web server answers a media element."""

    served = 0  # bytes of file sent, all requests
    requests = 0
    lock = threading.Lock()
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, ".mp3": "audio/mpeg", ".wav": "audio/wav",
                      ".webm": "audio/webm", ".ogg": "audio/ogg", ".m4a": "audio/mp4", ".html": "text/html"}

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = 0, size - 1
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if m and (m[1] or m[2]):
            if m[1]:
                start, end = int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1
            else:
                start = max(0, size - int(m[2]))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        f = open(path, "rb")  # noqa: SIM115 (closed by the caller, as SimpleHTTPRequestHandler does)
        f.seek(start)
        self._left = end - start + 1
        with RangeHandler.lock:
            RangeHandler.requests += 1
        return f

    def copyfile(self, source, outputfile):
        try:
            while self._left > 0 and (block := source.read(min(1 << 16, self._left))):
                outputfile.write(block)
                self._left -= len(block)
                with RangeHandler.lock:
                    RangeHandler.served += len(block)
        except (BrokenPipeError, ConnectionResetError):  # the browser has what it wanted
            pass

    def log_message(self, *args):
        pass


NATIVE_PAGE = """<!doctype html><meta charset="utf-8"><title>native</title><body><script>
window.ev = {};
const a = document.createElement('audio');
a.preload = 'metadata'; a.controls = true;
a.addEventListener('loadedmetadata', () => { ev.meta = performance.now(); ev.duration = a.duration; });
a.addEventListener('error', () => { ev.error = a.error ? a.error.code + ' ' + a.error.message : 'error'; });
a.src = new URLSearchParams(location.search).get('src');
document.body.appendChild(a);
window.seekTo = (t) => { ev.seekStart = performance.now(); ev.seekDone = null;
  const done = () => { if (ev.seekDone === null) { ev.seekDone = performance.now(); ev.position = a.currentTime; } };
  a.addEventListener('seeked', () => { if (a.readyState >= 3) done(); else a.addEventListener('canplay', done, {once: true}); },
                     {once: true});
  a.currentTime = t; };
</script>"""


def chromium_memory() -> tuple[float, float]:
    """(RSS, PSS) in MB summed over the Chromium processes under this one."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
    mine, grew = {os.getpid()}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in mine} - mine
        grew = bool(more)
        mine |= more
    rss = pss = 0
    for pid in mine:
        try:
            if "chrom" not in Path(f"/proc/{pid}/comm").read_text():
                continue
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


class Peak:
    """Peak Chromium memory, sampled in a thread."""

    def __init__(self):
        self.rss = self.pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss, pss = chromium_memory()
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self._stop.wait(0.25)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Answers:
    """How fast the page answers `1+1`, asked every 50 ms while something else is awaited."""

    def __init__(self):
        self.times: list[float] = []  # ms per answer
        self.stuck = 0.0  # seconds without an answer within a second

    @property
    def worst(self) -> float:
        return max(self.times, default=0.0)

    @property
    def prompt(self) -> str:
        """How many answers came within ANSWER_MS."""
        return f"{sum(t <= ANSWER_MS for t in self.times)}/{len(self.times)}"

    async def ask(self, page, timeout: float = 1.0) -> bool:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(page.evaluate("1+1"), timeout)
            ok = True
        except TimeoutError:
            ok = False
            self.stuck += timeout
        self.times.append((time.perf_counter() - started) * 1000)
        return ok


async def wait_for(page, answers: Answers, check: str, timeout: float):
    """Poll `check` (a script) until it returns something truthy; None after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        await answers.ask(page)
        try:
            got = await asyncio.wait_for(page.evaluate(check), 1.0)
        except TimeoutError:
            got = None
        if got:
            return got
        await asyncio.sleep(0.05)
    return None


async def native(pw, base: str, path: Path) -> dict:
    expected = seconds_of(path)  # what the file's own header says
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        page = await browser.new_page()
        answers = Answers()
        RangeHandler.served = RangeHandler.requests = 0
        with Peak() as peak:
            await page.goto(f"{base}/native.html?src={path.name}")
            meta = await wait_for(page, answers, "ev.meta ? [ev.meta, ev.duration] : (ev.error ? [-1, ev.error] : null)", 60)
            row = {"file": path.name, "MB": path.stat().st_size / 1e6}
            if not meta or meta[0] < 0:
                return {**row, "error": meta[1] if meta else "no metadata in 60 s"}
            await page.evaluate(f"seekTo({min(SEEK_TO, expected * 2 / 3)})")
            seek = await wait_for(page, answers, "ev.seekDone ? [ev.seekDone - ev.seekStart, ev.position] : null", 60)
            await asyncio.sleep(1.0)  # what the element buffers after the seek, counted in bytes served
            for _ in range(10):
                await answers.ask(page)
                await asyncio.sleep(0.05)
        return {**row, "metadata_s": meta[0] / 1000, "duration": meta[1], "duration_ok": abs(meta[1] - expected) < 1.0,
                "seek_s": seek[0] / 1000 if seek else None, "position": seek[1] if seek else None,
                "served_MB": RangeHandler.served / 1e6, "requests": RangeHandler.requests,
                "worst_answer_ms": answers.worst, "prompt": answers.prompt, "rss_MB": peak.rss, "pss_MB": peak.pss}
    finally:
        await browser.close()


async def blank(pw) -> dict:
    """Chromium with an empty page: what every row's memory includes."""
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        page = await browser.new_page()
        await page.goto("about:blank")
        await asyncio.sleep(2.0)
        rss, pss = chromium_memory()
        return {"file": "(empty page)", "rss_MB": rss, "pss_MB": pss}
    finally:
        await browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_gradio(path: str, port: int) -> None:
    """The minimal app of part (b): one gr.Audio showing the file."""
    import gradio as gr

    with gr.Blocks() as demo:
        gr.Audio(value=path, label="recording")
    demo.launch(server_name="127.0.0.1", server_port=port, allowed_paths=[str(Path(path).parent)], show_error=True)


GRADIO_READY = """(() => {
  const d = document.querySelector('#duration');
  const wave = document.querySelector('#waveform canvas, #waveform div');
  return d && d.textContent.trim() !== '0:00' && d.textContent.trim() !== '' ? d.textContent.trim() : null;
})()"""


def start_gradio(path: Path) -> tuple[subprocess.Popen, str, float | None]:
    """The app of `serve_gradio` in a process of its own; its URL and how long it took to answer."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-gradio", str(path), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url, time.perf_counter() - started
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > 180:
                return proc, url, None
            time.sleep(0.25)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def gradio_audio(pw, path: Path, timeout: float) -> dict:
    proc, url, server_s = await asyncio.to_thread(start_gradio, path)
    try:
        if server_s is None:
            return {"file": path.name, "error": "the Gradio app did not start"}
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            answers = Answers()
            with Peak() as peak:
                t0 = time.perf_counter()
                await page.goto(url)
                shown = await wait_for(page, answers, GRADIO_READY, timeout)
                ready_s = time.perf_counter() - t0 if shown else None
                player = await asyncio.wait_for(page.evaluate(
                    "[!!document.querySelector('#waveform'), document.querySelectorAll('audio').length]"), 30) \
                    if shown else None
        finally:
            await browser.close()
        return {"file": path.name, "MB": path.stat().st_size / 1e6, "server_start_s": server_s, "ready_s": ready_s,
                "shown_duration": shown, "waveform": player, "timed_out": shown is None, "timeout_s": timeout,
                "worst_answer_ms": answers.worst, "prompt": answers.prompt, "unanswered_s": answers.stuck,
                "rss_MB": peak.rss,
                "pss_MB": peak.pss}
    finally:
        await asyncio.to_thread(stop, proc)


async def bench_browser(files: list[Path], gradio_files: list[Path], work: Path, timeout: float) -> tuple[list[dict], list[dict]]:
    from playwright.async_api import async_playwright

    (work / "native.html").write_text(NATIVE_PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(work)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    native_rows, gradio_rows = [], []
    try:
        async with async_playwright() as pw:
            native_rows.append(await blank(pw))
            for f in files:
                native_rows.append(await native(pw, base, f))
                print("  native", json.dumps(native_rows[-1]), file=sys.stderr, flush=True)
            for f in gradio_files:
                gradio_rows.append(await gradio_audio(pw, f, timeout))
                print("  gr.Audio", json.dumps(gradio_rows[-1]), file=sys.stderr, flush=True)
    finally:
        server.shutdown()
    return native_rows, gradio_rows


# Report


def report(encoded: list[Encoded], native_rows: list[dict], gradio_rows: list[dict], hours: float, cores: int) -> str:
    out = []
    if encoded:
        out += [(f"Encoding a {hours:g}-hour recording ({cores} cores, one ffmpeg at a time; * = timed on the "
                 "first 30 minutes and scaled):"), "",
                "| copy format | from | encode s (wall) | CPU s | MB per hour | MB for the whole |",
                "|---|---|---|---|---|---|"]
        for r in encoded:
            star = " *" if r.sliced else ""
            out.append(f"| {r.candidate} | {r.source} | {r.seconds:.0f}{star} | {r.cpu:.0f}{star} | "
                       f"{r.mb_per_hour:.1f} | {r.mb_per_hour * hours:.0f} |")
        out.append("")
    if native_rows:
        out += ["Native `<audio preload=\"metadata\" controls>`, Range-capable server:", "",
                ("| file | MB | loadedmetadata s | duration right | seek to 2:00:00 → canplay s | MB served | "
                 "requests | `1+1` within 100 ms (worst ms) | Chromium peak RSS MB (PSS) |"),
                "|---|---|---|---|---|---|---|---|---|"]
        for r in native_rows:
            if "MB" not in r:
                out.append(f"| {r['file']} | | | | | | | | {r['rss_MB']:.0f} ({r['pss_MB']:.0f}) |")
                continue
            if "error" in r:
                out.append(f"| {r['file']} | {r['MB']:.0f} | {r['error']} | | | | | | |")
                continue
            seek = f"{r['seek_s']:.2f}" if r["seek_s"] is not None else "never"
            out.append(f"| {r['file']} | {r['MB']:.0f} | {r['metadata_s']:.2f} | {'yes' if r['duration_ok'] else 'no'} "
                       f"({r['duration']:.0f} s) | {seek} | {r['served_MB']:.1f} | {r['requests']} | "
                       f"{r['prompt']} ({r['worst_answer_ms']:.0f}) | {r['rss_MB']:.0f} ({r['pss_MB']:.0f}) |")
        out.append("")
    if gradio_rows:
        out += ["`gr.Audio(value=file)` (Gradio's WaveSurfer waveform) in a minimal `gr.Blocks`:", "",
                ("| file | MB | app start s | waveform ready s | `1+1` within 100 ms (worst ms) | "
                 "s without an answer | Chromium peak RSS MB (PSS) |"), "|---|---|---|---|---|---|---|"]
        for r in gradio_rows:
            if "error" in r:
                out.append(f"| {r['file']} | | {r['error']} | | | | |")
                continue
            ready = f"{r['ready_s']:.1f} ({r['shown_duration']})" if r["ready_s"] else f"not in {r['timeout_s']:g} s"
            out.append(f"| {r['file']} | {r['MB']:.0f} | {r['server_start_s']:.1f} | {ready} | "
                       f"{r['prompt']} ({r['worst_answer_ms']:.0f}) | {r['unanswered_s']:.0f} | "
                       f"{r['rss_MB']:.0f} ({r['pss_MB']:.0f}) |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "player")
    parser.add_argument("--slice-minutes", type=float, default=30.0, help="for the candidates that are not finalists")
    parser.add_argument("--only", default="", help="comma-separated words: encode only candidates that name one")
    parser.add_argument("--skip-encode", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--gradio-timeout", type=float, default=60.0)
    parser.add_argument("--serve-gradio", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gradio:
        serve_gradio(args.serve_gradio, args.port)
        return
    inputs = build_inputs(args.work, args.hours)
    expected = seconds_of(inputs["mp3"])
    encoded = [] if args.skip_encode else bench_encoding(
        inputs, args.work, args.slice_minutes * 60, {o.strip() for o in args.only.split(",") if o.strip()} or None)
    native_rows, gradio_rows = [], []
    if not args.skip_browser:
        copy, opus = (copy_path(args.work, "mp3", name) for name in FINALISTS)
        if not copy.exists():
            encode(inputs["mp3"], copy, playback.COPY_ARGS, None)
        # Where gr.Audio still copes: the first 30 minutes, in the same format.
        short = args.work / f"copy-first-{SHORT_MINUTES}min.mp3"
        if not short.exists():
            encode(inputs["mp3"], short, playback.COPY_ARGS, SHORT_MINUTES * 60)
        files = [copy, *([opus] if opus.exists() and abs(seconds_of(opus) - expected) < 1 else []), *inputs.values()]
        native_rows, gradio_rows = asyncio.run(bench_browser(files, [short, copy, inputs["mp3"]], args.work,
                                                             args.gradio_timeout))
    print(report(encoded, native_rows, gradio_rows, args.hours, os.cpu_count() or 1))


if __name__ == "__main__":
    main()
