"""assets/player.js and player.css in a real browser, in a real Gradio page: citations in the chat
and sentences of the transcript play the recording from their moment, and the playing paragraph
is marked."""

from __future__ import annotations

import os
import socket
import subprocess
import wave
from pathlib import Path
from urllib.parse import quote

import pytest

from core.render import link_citations, transcript_html
from core.transcript import Segment, Transcript

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CHROMIUM = "/usr/bin/chromium"
ANSWER = "It was said at [00:12] and [00:20–00:25], not [09:00]."

pytestmark = [pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"), pytest.mark.browser]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def thirty_seconds_of_speech(path: Path) -> Path:
    """espeak-ng saying a few words, then silence up to 30 s."""
    spoken = path.with_name("spoken.wav")
    subprocess.run(["espeak-ng", "-w", str(spoken), "The budget was approved on Tuesday."], check=True)
    with wave.open(str(spoken)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    total = 30 * params.framerate * params.sampwidth * params.nchannels
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames + b"\0" * max(0, total - len(frames)))
    return path


TRANSCRIPT = Transcript([
    Segment(2.0, 5.0, "The budget was approved on Tuesday."),
    Segment(5.2, 8.0, "Everyone agreed."),
    Segment(12.0, 16.0, "Then Maria spoke about the <trip> & the team."),
    Segment(16.2, 20.0, "She leaves next week."),
    Segment(24.0, 27.0, "Any other business?"),
    Segment(27.1, 29.5, "None, the meeting ended."),
    # Past the recording's end (the player stops at 30 s): a transcript long enough to scroll.
    *(Segment(40.0 + 6 * i, 43.0 + 6 * i, f"Later remark number {i}, said after a pause.") for i in range(150)),
], duration=30.0, language="en")

# The player says it is at `at` seconds, and tells the page so (the audio is 30 s long).
PRETEND = """at => { const a = document.querySelector('#player audio');
  Object.defineProperty(a, 'currentTime', {get: () => at, configurable: true});
  a.dispatchEvent(new Event('timeupdate')); }"""
SHOWN = """() => { const p = document.querySelector('#transcript-doc p.para.playing').getBoundingClientRect();
  const box = document.querySelector('#transcript-panel').getBoundingClientRect();
  return p.top >= box.top && p.bottom <= box.bottom; }"""


@pytest.fixture
def demo_url(tmp_path):
    import gradio as gr

    audio = thirty_seconds_of_speech(tmp_path / "talk.wav")
    js = (ASSETS / "player.js").read_text(encoding="utf-8")
    css = (ASSETS / "player.css").read_text(encoding="utf-8")
    with gr.Blocks() as demo:
        gr.HTML(f'<audio src="/gradio_api/file={quote(str(audio))}" preload="auto" controls></audio>',
                elem_id="player")
        with gr.Row():
            gr.HTML(transcript_html(TRANSCRIPT), elem_id="transcript-panel")
            gr.Chatbot([{"role": "assistant", "content": link_citations(ANSWER, duration=30)}], elem_id="chat")
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, head=f"<script>{js}</script>",
                css=css, allowed_paths=[str(tmp_path)], quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


CURRENT = "document.querySelector('#player audio').currentTime"


def test_citations_and_sentences_play_from_their_moment(demo_url, tmp_path):
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--autoplay-policy=no-user-gesture-required"])
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 800})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo_url, wait_until="load")
            page.wait_for_selector("#transcript-doc p.para")
            cite = page.wait_for_selector('#chat a[href="#t=12"]')
            page.wait_for_function("document.querySelector('#player audio').readyState >= 1")
            assert page.evaluate("typeof window.talkSeek") == "function"

            # The chat's citations read as before, brackets included; the one past the end is text.
            assert cite.inner_text() == "[00:12]"
            assert page.inner_text('#chat a[href="#t=20"]') == "[00:20–00:25]"
            assert "not [09:00]." in page.inner_text("#chat")
            assert page.locator("#chat a", has_text="09:00").count() == 0

            cite.click()
            page.wait_for_function(f"Math.abs({CURRENT} - 12) < 1", timeout=3000)
            page.wait_for_timeout(300)  # a new tab would open about now
            assert len(context.pages) == 1 and "#t=" not in page.url
            assert page.evaluate("!document.querySelector('#player audio').paused")

            # Selecting text in a sentence is not a click to play it.
            page.evaluate("""() => { const s = document.querySelector('#transcript-doc .seg[data-t="5.2"]');
              getSelection().selectAllChildren(s); s.dispatchEvent(new MouseEvent('click', {bubbles: true})); }""")
            page.wait_for_timeout(200)
            assert page.evaluate(CURRENT) > 10  # still playing on from 00:12, not back at 00:05
            page.evaluate("getSelection().removeAllRanges()")

            seg = page.locator('#transcript-doc .seg[data-t="24"]')
            seg.click()
            page.wait_for_function(f"Math.abs({CURRENT} - 24) < 1", timeout=3000)

            # The player moves (not through talkSeek): paragraph 2 is the playing one, only it.
            page.evaluate("(() => { const a = document.querySelector('#player audio'); a.pause();"
                          " a.currentTime = 14.5; })()")
            page.wait_for_function("(() => { const p = document.querySelectorAll('#transcript-doc p.para');"
                                   " return p[1].classList.contains('playing'); })()", timeout=3000)
            playing = page.eval_on_selector_all("#transcript-doc p.para", "ps => ps.map(p => p.className)")
            assert playing[:3] == ["para", "para playing", "para"] and playing.count("para playing") == 1
            assert page.evaluate("getComputedStyle(document.querySelector('p.para.playing')).borderLeftStyle") \
                == "solid"
            page.locator("#transcript-doc .seg").nth(2).hover()
            page.screenshot(path=str(artifacts / "player.png"), full_page=True)

            # Far on: the transcript (not the window) scrolls to show the playing paragraph...
            window_at = page.evaluate("window.scrollY")
            page.evaluate(PRETEND, 702)
            page.wait_for_function(SHOWN, timeout=3000)
            assert page.evaluate("document.querySelector('p.para.playing').dataset.start") == "700"
            assert page.evaluate("window.scrollY") == window_at
            # ...unless the visitor has just scrolled it to read elsewhere.
            page.hover("#transcript-panel")
            page.mouse.wheel(0, -400)
            page.wait_for_timeout(200)
            top = page.evaluate("document.querySelector('#transcript-panel').scrollTop")
            page.evaluate(PRETEND, 853)
            page.wait_for_timeout(400)
            assert page.evaluate("document.querySelector('p.para.playing').dataset.start") == "850"
            assert page.evaluate("document.querySelector('#transcript-panel').scrollTop") == top
            assert not errors, errors
        finally:
            browser.close()
