from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

import speech  # noqa: E402
from fakeopenai import FakeOpenAI  # noqa: E402

from core.config import ENV, Settings  # noqa: E402

# Not shaped like a real key on purpose: it only opens the tests' own server.
TEST_KEY = "test-key-for-the-local-server"


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
