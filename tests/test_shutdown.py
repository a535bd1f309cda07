"""Warnings before a model in use is shut down: from the server's catalogue (`GET /v1/models/{id}`,
`shutdown_date`), asked once per process, never holding a job up; in `info`, on the CLI's stderr
and on the page. Today's date is pinned with TALK_TODAY (a testing aid read only by core/models.py):
2026-12-20 puts gpt-4o (2027-01-14 in the test server's catalogue) 25 days ahead, whisper-1
(2027-02-26) 68 days ahead, past the 60-day window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.service import models
from core.config import Settings

from conftest import TEST_KEY

ROOT = Path(__file__).parent.parent
SOON = "2026-12-20"  # gpt-4o shuts down 25 days later; whisper-1 68 days later
EARLY = "2026-10-01"  # nothing in the catalogue shuts down within 60 days
HANG_SECONDS = 60.0  # a catalogue that does not answer: far longer than LOOKUP_TIMEOUT and the job


@pytest.fixture(autouse=True)
def fresh_lookups():
    """Each test asks its own servers: nothing looked up by an earlier test is remembered."""
    models.forget()
    yield
    models.forget()


def run(*args: str, env_extra: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


class Catalogue:
    """A server in front of the test server, with a catalogue of its own: it answers
    `GET /v1/models/{id}` itself (with `dates`, or 404 like a Whisper server that lists no models
    when `dates` is None, after `delay` seconds), counts those lookups, and passes every POST on."""

    def __init__(self, upstream: str, dates: dict[str, str | None] | None = None, delay: float = 0.0):
        self.upstream = upstream.rsplit("/v1", 1)[0]
        self.dates, self.delay = dates, delay
        self.gets: list[str] = []
        handler = type("Handler", (_CatalogueHandler,), {"catalogue": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def lookups(self, model: str) -> int:
        return self.gets.count(f"/v1/models/{model}")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _CatalogueHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    catalogue: Catalogue

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        c = self.catalogue
        c.gets.append(self.path)
        time.sleep(c.delay)
        model = self.path.rsplit("/", 1)[1]
        try:
            if c.dates is None or model not in c.dates:
                self._send(404, b'{"detail":"Not Found"}')
            else:
                self._send(200, json.dumps({"id": model, "object": "model", "created": 0, "owned_by": "test",
                                            "shutdown_date": c.dates[model]}).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as it should

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: self.headers[k] for k in ("Content-Type", "Authorization") if self.headers.get(k)}
        request = urllib.request.Request(self.catalogue.upstream + self.path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                self._send(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as e:
            self._send(e.code, e.read(), e.headers.get("Content-Type", "application/json"))


@pytest.fixture
def catalogue(server):
    made: list[Catalogue] = []

    def make(dates=None, delay=0.0) -> Catalogue:
        made.append(Catalogue(server.base_url, dates, delay))
        return made[-1]

    yield make
    for c in made:
        c.stop()


@pytest.mark.slow
def owner_warnings(*args, **kwargs) -> list[str]:
    """`models.warnings` as the owner reads them (the CLI, the log)."""
    return [str(w) for w in models.warnings(*args, **kwargs)]


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_info_lists_the_models_with_the_servers_dates_and_successors(server_env, catalogue, short_talk):
    """The server's catalogue wins over the dates the SDK announced (whisper-1: 2027-02-26)."""
    c = catalogue({"whisper-1": "2027-06-30", "gpt-4o": "2027-01-14"})
    out = run("info", str(short_talk[0]), env_extra={"OPENAI_BASE_URL": c.base_url, "TALK_TODAY": SOON})
    assert out.returncode == 0, out.stderr
    assert "Model:      whisper-1, shuts down on 2027-06-30 (in 192 days); gpt-transcribe takes over then" in out.stdout
    assert "Chat model: gpt-4o, shuts down on 2027-01-14 (in 25 days); gpt-6-luna takes over then" in out.stdout
    assert "announced by OpenAI" not in out.stdout, "the dates are the server's"
    assert warning_lines(out.stderr) == [
        "warning: gpt-4o, the default chat model, shuts down on 2027-01-14 (in 25 days); gpt-6-luna takes over "
        "automatically then. Set CHAT_MODEL to choose another model."]
    assert c.lookups("whisper-1") == 1 and c.lookups("gpt-4o") == 1
    assert server_env.requests() == [] and server_env.requests("chat") == [], "info sends nothing else"


@pytest.mark.slow
def test_info_says_what_the_user_must_change(server_env, short_talk):
    """A chosen model is not replaced behind the user's back: info says what to set."""
    out = run("info", str(short_talk[0]), env_extra={"CHAT_MODEL": "gpt-4o", "TRANSCRIBE_MODEL": "gpt-transcribe",
                                                     "TALK_TODAY": SOON})
    assert out.returncode == 0, out.stderr
    assert "Model:      gpt-transcribe, no shutdown announced" in out.stdout
    assert "Chat model: gpt-4o, shuts down on 2027-01-14 (in 25 days); set CHAT_MODEL to gpt-6-luna" in out.stdout
    assert warning_lines(out.stderr) == ["warning: gpt-4o (CHAT_MODEL) shuts down on 2027-01-14 (in 25 days). "
                                         "Set CHAT_MODEL to gpt-6-luna, which replaces it, before then."]


@pytest.mark.slow
def test_a_model_shutting_down_within_60_days_gives_one_line(server_env, short_talk):
    path = str(short_talk[0])
    asked = run("ask", path, "Who will travel to Lisbon?", env_extra={"TALK_TODAY": SOON})
    assert asked.returncode == 0 and "Maria" in asked.stdout, asked.stderr
    (line,) = warning_lines(asked.stderr)
    assert "gpt-4o" in line and "2027-01-14 (in 25 days)" in line and "gpt-6-luna" in line
    # `transcribe` uses no chat model, and whisper-1 is 68 days away: nothing to say.
    transcribed = run("transcribe", path, env_extra={"TALK_TODAY": SOON})
    assert transcribed.returncode == 0 and "Lisbon" in transcribed.stdout
    assert warning_lines(transcribed.stderr) == []
    early = run("ask", path, "Who will travel to Lisbon?", env_extra={"TALK_TODAY": EARLY})
    assert early.returncode == 0 and warning_lines(early.stderr) == [], early.stderr


@pytest.mark.slow
def test_a_failed_command_still_prints_one_line(server_env, tmp_path):
    """The warning comes once the recording is read: an error stays the only line."""
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    r = run("ask", str(bad), "Who?", env_extra={"TALK_TODAY": SOON})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr


@pytest.mark.slow
def test_without_a_catalogue_the_job_completes_and_the_lookup_is_made_once(server_env, catalogue, short_talk):
    """A Whisper server lists no models (404): dates are unknown, nothing is blocked, and the
    catalogue is asked once per process however many questions follow."""
    c = catalogue(dates=None)
    env = {"OPENAI_BASE_URL": c.base_url, "TALK_TODAY": SOON}
    r = run("ask", str(short_talk[0]), stdin="Who will travel to Lisbon?\nWhen was the budget approved?\n",
            env_extra=env)
    assert r.returncode == 0 and r.stdout.count("According to the recording") == 2, r.stderr
    assert warning_lines(r.stderr) == [], "no date is known for another server's models"
    assert c.lookups("whisper-1") == 1 and c.lookups("gpt-4o") == 1, c.gets
    info = run("info", str(short_talk[0]), env_extra=env)
    assert "whisper-1, shutdown date not known (the server does not say)" in info.stdout


@pytest.mark.slow
def test_a_catalogue_that_does_not_answer_does_not_hold_the_job(server_env, catalogue, short_talk, tmp_path):
    c = catalogue({"whisper-1": "2027-01-01"}, delay=HANG_SECONDS)
    settings = Settings(api_key=TEST_KEY, base_url=c.base_url)
    started = time.monotonic()
    statuses = models.in_use(settings)
    assert time.monotonic() - started < 2 * models.LOOKUP_TIMEOUT + 2, "each lookup gives up after 3 s"
    assert [(s.model, s.shutdown) for s in statuses] == [("whisper-1", None), ("gpt-4o", None)]
    started = time.monotonic()
    r = run("transcribe", str(short_talk[0]), env_extra={"OPENAI_BASE_URL": c.base_url, "TALK_TODAY": SOON})
    assert r.returncode == 0 and "Lisbon" in r.stdout, r.stderr
    assert time.monotonic() - started < HANG_SECONDS / 2, "the job did not wait for the catalogue"
    assert warning_lines(r.stderr) == [] and c.lookups("whisper-1") == 2, "one lookup per process"


def test_an_unreachable_server_or_no_key_falls_back_for_openai_only(server):
    closed = Settings(api_key="x", base_url="http://127.0.0.1:9/v1")  # nothing listens on port 9
    assert models.status(closed, "whisper-1").shutdown is None, "another server's dates are not guessed"
    openai_service = Settings(backend="openai")  # no key: no request is made at all
    s = models.status(openai_service, "whisper-1")
    assert (s.shutdown, s.source, s.successor, s.automatic) == (date(2027, 2, 26), "announced", "gpt-transcribe", True)
    assert owner_warnings(openai_service, today=date(2027, 1, 1)) == [
        "whisper-1, the default transcription model, shuts down on 2027-02-26 (in 56 days); gpt-transcribe "
        "takes over automatically then. Set TRANSCRIBE_MODEL to choose another model."]


def test_the_lookup_is_made_once_per_process_and_model(server, catalogue):
    c = catalogue({"whisper-1": "2027-02-26", "gpt-4o": "2027-01-14"})
    settings = Settings(api_key=TEST_KEY, base_url=c.base_url)
    threads = [threading.Thread(target=models.warnings, args=(settings,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(3):
        models.in_use(settings)
        models.status(settings.replace(api_key="another-visitors-key"), "gpt-4o", chat=True)
    assert c.lookups("whisper-1") == 1 and c.lookups("gpt-4o") == 1, c.gets


def test_the_window_is_60_days_and_past_dates_say_what_happened(settings):
    chose = settings.replace(chat_model="gpt-4o")
    assert len(owner_warnings(settings, today=date(2026, 11, 15))) == 1, "gpt-4o: 60 days ahead"
    assert owner_warnings(settings, today=date(2026, 11, 14)) == [], "61 days ahead"
    assert owner_warnings(settings, today=date(2026, 11, 14), within_days=90) != []
    after = owner_warnings(settings, today=date(2027, 3, 1))  # past the dates, still served here
    assert after == [("whisper-1, the default transcription model, was due to shut down on 2027-02-26; "
                      "gpt-transcribe takes over as soon as it is refused. Set TRANSCRIBE_MODEL to choose another "
                      "model."),
                     ("gpt-4o, the default chat model, was due to shut down on 2027-01-14; gpt-6-luna takes over "
                      "as soon as it is refused. Set CHAT_MODEL to choose another model.")]
    assert owner_warnings(chose, today=date(2027, 1, 15))[-1] == (
        "gpt-4o (CHAT_MODEL) was due to shut down on 2027-01-14: requests with it will fail. "
        "Set CHAT_MODEL to gpt-6-luna, which replaces it.")
    assert owner_warnings(settings.replace(chat_model="none"), today=date(2026, 12, 1)) == [], "no chat model"


def test_a_model_the_server_no_longer_serves_is_reported(settings, server):
    server.retired.add("gpt-4o")
    try:
        (line,) = owner_warnings(settings, today=date(2026, 10, 1))
        (chosen,) = owner_warnings(settings.replace(chat_model="gpt-4o"), today=date(2026, 10, 1))
    finally:
        server.retired.discard("gpt-4o")
    assert line.startswith("gpt-4o, the default chat model, is not served by the server at 127.0.0.1:")
    assert line.endswith("; gpt-6-luna has taken over. Set CHAT_MODEL to choose another model.")
    assert chosen.endswith(": requests with it fail. Set CHAT_MODEL to gpt-6-luna, which replaces it.")


@pytest.mark.slow
def test_a_refused_default_is_announced_once_not_warned_again(server_env, short_talk):
    """On the command line the successor's announcement says it all: no warning repeats it."""
    server_env.retired.add("gpt-4o")
    try:
        r = run("ask", str(short_talk[0]), "Who will travel to Lisbon?", env_extra={"TALK_TODAY": SOON})
        info = run("info", str(short_talk[0]), env_extra={"TALK_TODAY": SOON})
    finally:
        server_env.retired.discard("gpt-4o")
    assert r.returncode == 0 and "Maria" in r.stdout, r.stderr
    assert r.stderr.count("gpt-6-luna answers instead") == 1 and warning_lines(r.stderr) == [], r.stderr
    assert "Chat model: gpt-4o, is not served by the server at 127.0.0.1:" in info.stdout
    assert "; gpt-6-luna has taken over" in info.stdout


@pytest.mark.app
@pytest.mark.browser
def test_the_page_shows_a_notice_when_a_model_shuts_down_soon(fake_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from support import CHROMIUM, CHROMIUM_ARGS, start_app

    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "TALK_TODAY": SOON}, tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            notice = page.locator("#models-notice")
            notice.get_by_text("gpt-6-luna takes over automatically").wait_for()
            text = notice.inner_text()
            assert "gpt-4o, the default chat model, shuts down on 2027-01-14 (in 25 days)" in text
            assert "whisper-1" not in text, "68 days away: not yet"
            assert "CHAT_MODEL" not in text and "127.0.0.1" not in text, "a visitor is told no setting, no server"
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
