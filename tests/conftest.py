from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

import speech  # noqa: E402
from fakeopenai import FakeOpenAI  # noqa: E402
from support import CHROMIUM, CHROMIUM_ARGS, serve_whisper, start_app, whisper_config  # noqa: E402

from core.config import ENV, Settings  # noqa: E402

# Not shaped like a real key on purpose: it only opens the tests' own server.
TEST_KEY = "test-key-for-the-local-server"

# Tiers (markers registered in pytest.ini), applied here from the fixtures a test uses (all it
# needs, directly or through other fixtures); a test that is slow for another reason, or that starts
# the app or a browser itself, is marked in its file. `pytest -m "not slow"` is the fast tier.
SERVER_FIXTURES = {"fake_server", "server", "settings", "server_env"}  # the OpenAI-compatible test server
MODEL_FIXTURES = {"whisper_server"}  # a real Whisper server with tiny.en
APP_FIXTURES = {"app", "shared_app", "player_app", "mcp_app"}  # app.py as a subprocess
BROWSER_FIXTURES = {"playwright"}  # Playwright's chromium (browser, page and chromium use it)


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(item.fixturenames)
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        for fixtures, mark in ((MODEL_FIXTURES, pytest.mark.model), (APP_FIXTURES, pytest.mark.app),
                               (BROWSER_FIXTURES, pytest.mark.browser)):
            if used & fixtures:
                item.add_marker(mark)
        if any(item.get_closest_marker(name) for name in ("model", "app", "browser")):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's key, server or cache."""
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def fake_server():
    server = FakeOpenAI(api_key=TEST_KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(fake_server):
    fake_server.clear()
    yield fake_server
    fake_server.clear()


@pytest.fixture
def settings(server, tmp_path) -> Settings:
    return Settings(api_key=TEST_KEY, base_url=server.base_url, cache_dir=tmp_path / "cache",
                    retry_base_delay=0.05, request_timeout=30)


@pytest.fixture
def server_env(server, monkeypatch):
    """The environment a user would set to reach the test server (for CLI and app tests)."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return server


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def short_talk(media_dir):
    """Two sentences, about 9 s, as mp3."""
    path = media_dir / "short talk.mp3"
    return path, speech.recording(path, speech.SENTENCES[:2])


@pytest.fixture(scope="session")
def long_talk(media_dir):
    """Ten sentences with pauses, about 45 s: several chunks at CHUNK_SECONDS=10."""
    path = media_dir / "long_talk.mp3"
    return path, speech.recording(path)


@pytest.fixture(scope="session")
def continuous_talk(media_dir):
    """Sentences with no pause between them: chunks must be cut hard."""
    path = media_dir / "continuous.wav"
    return path, speech.recording(path, speech.SENTENCES[:6], pause=0.0)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep what a person should look at after a run (screenshots): TEST_ARTIFACTS,
    or `test-artifacts/` in the repository (ignored by git)."""
    import os

    folder = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).parent.parent / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# The app as a subprocess and a browser to drive it. Module scope: one app and one browser for each
# test file that uses them.

@pytest.fixture(scope="module")
def app(fake_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    # Lossless uploads: these tests check each session's key words, and tiny.en, the test server's
    # recognizer, reads a few espeak sentences differently after any change of the audio ("Students
    # must submit their essays" as "2 minutes must submit their message" through Opus 24k); which
    # format hears best overall is measured in bench/upload_format.py.
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "UPLOAD_FORMAT": "flac",
                           "ALLOW_PRIVATE_URLS": "true"}, tmp)  # the test media server is on 127.0.0.1
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def chromium(playwright):
    """A browser that plays media without a click: the tests that check the player hear it move."""
    b = playwright.chromium.launch(executable_path=CHROMIUM,
                                   args=CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"])
    yield b
    b.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(locale="en-US", viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app[0])
    yield page
    context.close()


# A real Whisper server (faster-whisper-server), one for each test file that uses it.

@pytest.fixture(scope="module")
def whisper_server(tmp_path_factory):
    """Serving tiny.en under the name every request gets ("whisper-1", its `model_name` default)."""
    tmp = tmp_path_factory.mktemp("fws")
    proc, url = serve_whisper(whisper_config(tmp / "config.yaml", "whisper-1"), tmp / "server.log")
    yield url, tmp / "server.log"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def on_server(whisper_server, tmp_path) -> Settings:
    """A user's settings for a keyless Whisper server: OPENAI_BASE_URL and TRANSCRIBE_BACKEND=openai."""
    return Settings(backend="openai", base_url=whisper_server[0], cache_dir=tmp_path / "cache",
                    concurrency=2, retry_base_delay=0.05, request_timeout=60)
