"""Models that go away: gpt-transcribe's dialect, successors for retired default models, a chosen
model that is gone, parameters newer models refuse, and errors of servers that are not OpenAI's.

The test server is shared by the session: each test here puts back the models it retired, and
the process forgets what it learned about them (`forget_models`), so that the tests
after these still talk to whisper-1 and gpt-4o.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.transcribe.backends import openai_api as backends
from core.answer import chat
from core.service import catalogue
from core.service.client import service_name
from core.service.retirement import forget_models
from core.config import Settings
from core.errors import ServiceError
from core.transcribe.pipeline import transcribe_file
from core.transcribe.progress import Progress
from core.transcript import Segment, Transcript

ROOT = Path(__file__).parent.parent
DEFAULTS_GONE = {"whisper-1", "gpt-4o"}


@pytest.fixture(autouse=True)
def fresh_knowledge():
    """Each test starts and ends with a process that knows nothing about retired models."""
    forget_models()
    yield
    forget_models()


@pytest.fixture
def retired(server):
    """Our default models shut down on the test server, served again afterwards."""
    server.retired = set(DEFAULTS_GONE)
    try:
        yield server
    finally:
        server.retired = set()


@pytest.fixture
def meeting() -> Transcript:
    said = ["The budget for the new library was approved on Tuesday.",
            "Maria will travel to Lisbon to meet the design team."]
    return Transcript([Segment(10.0 * i, 10.0 * i + 8, text) for i, text in enumerate(said)], 20.0, "en")


def answer(reply: chat.Reply) -> str:
    return "".join(reply.stream)


def messages(events: list[Progress], word: str) -> list[str]:
    return [e.message for e in events if e.message and word in e.message]


# gpt-transcribe


@pytest.mark.slow
def test_gpt_transcribe_gets_keywords_and_candidate_languages(settings, server, short_talk):
    path, _ = short_talk
    s = settings.replace(transcribe_model="gpt-transcribe", language="en",
                         prompt="Lisbon, Maria\n<design team>, lisbon,  , Tuesday")
    t = transcribe_file(path, s)
    [req] = server.requests()
    assert req.status == 200 and req.info["response_format"] == "json"
    assert req.info["keywords"] == ["Lisbon", "Maria", "design team", "Tuesday"]
    assert req.info["languages"] == ["en"]
    assert not {"prompt", "language", "timestamp_granularities[]"} & set(req.info["fields"])
    assert t.model == "gpt-transcribe" and t.language == "en", "the language it heard, from `languages`"
    assert "Lisbon" in t.text and len(t.segments) == 1, "text only: one segment for the piece"


@pytest.mark.slow
def test_gpt_transcribe_detects_the_language_without_hints(settings, server, short_talk):
    t = transcribe_file(short_talk[0], settings.replace(transcribe_model="gpt-transcribe"))
    [req] = server.requests()
    assert req.info["fields"] == ["model", "response_format"] and t.language == "en"


def test_keywords_are_what_the_service_accepts():
    assert backends.keywords(None) == [] and backends.keywords(" ,\n, ") == []
    assert backends.keywords("Kubernetes, CNCF\r\nIstio，Envoy、 kubernetes") == ["Kubernetes", "CNCF", "Istio", "Envoy"]
    assert backends.keywords("<b>Acme</b>  Corp, a<>b") == ["bAcme/b Corp", "ab"]
    many = backends.keywords(", ".join(f"term{i}" for i in range(500)))
    assert len(many) == backends.MAX_KEYWORDS and many[0] == "term0"
    [long] = backends.keywords("word " * 100)
    assert len(long) <= backends.MAX_KEYWORD_CHARS and long.endswith("word"), "cut at a space"


def test_gpt_transcribe_limits_and_defaults():
    assert catalogue.model_duration_cap("gpt-transcribe") == 1400
    assert not catalogue.model_has_timestamps("gpt-transcribe") and catalogue.model_has_timestamps("whisper-1")
    assert catalogue.model_has_timestamps("Systran/faster-whisper-small"), "other Whisper servers give timestamps"
    s = Settings()
    assert s.transcribe_model == "whisper-1" and s.chat_model == "gpt-4o"
    assert not s.chose("transcribe_model") and not s.replace(language="en").chose("chat_model")
    assert s.replace(transcribe_model="whisper-1").chose("transcribe_model"), "set again: chosen"
    assert Settings.from_env({"CHAT_MODEL": "gpt-4o"}).chose("chat_model")
    assert Settings(transcribe_model="whisper-1").chose("transcribe_model")


@pytest.mark.slow
def test_the_test_server_refuses_what_gpt_transcribe_does_not_take(settings, server, short_talk):
    """The request shapes our backend must never send, refused as the service does."""
    import openai

    client = openai.OpenAI(api_key=settings.api_key, base_url=settings.base_url, max_retries=0)
    audio = short_talk[0].read_bytes()
    refused = [{"response_format": "verbose_json"}, {"response_format": "srt"},
               {"timestamp_granularities": ["segment"]}, {"language": "en", "languages": ["en"]},
               {"keywords": ["a<b"]}, {"extra_body": {"diarize": "true"}}]
    for extra in refused:
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(model="gpt-transcribe", file=("a.mp3", audio), **extra)
    with pytest.raises(openai.BadRequestError, match="keywords"):
        client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio), keywords=["Lisbon"])
    ok = client.audio.transcriptions.create(model="gpt-transcribe", file=("a.mp3", audio),
                                            keywords=["Lisbon", "Maria"], languages=["en", "pt"])
    assert [x.code for x in ok.languages] == ["en"]
    assert server.requests(status=200)[-1].info["keywords"] == ["Lisbon", "Maria"]


# Retired default models


@pytest.mark.slow
def test_retired_defaults_hand_over_to_their_successors(settings, retired, long_talk, short_talk, meeting):
    events: list[Progress] = []
    t = transcribe_file(long_talk[0], settings.replace(chunk_seconds=10, silence_window=5, concurrency=2),
                        events.append)
    assert t.model == "gpt-transcribe"
    assert all(key in t.text.lower() for key in ("budget", "museum"))
    [said] = messages(events, "gpt-transcribe")
    assert "whisper-1 has been shut down" in said and "TRANSCRIBE_MODEL" in said
    assert said in t.meta.notes, "the transcript keeps the note"
    refused = [r for r in retired.requests() if r.info["model"] == "whisper-1"]
    assert refused and len(refused) <= 2 and {r.status for r in refused} == {404}, "only those already in flight"
    assert {r.status for r in retired.requests() if r.info["model"] == "gpt-transcribe"} == {200}

    retired.clear()
    events.clear()
    transcribe_file(short_talk[0], settings, events.append)  # later jobs go to the successor directly
    assert {r.info["model"] for r in retired.requests()} == {"gpt-transcribe"}
    assert messages(events, "gpt-transcribe") == [], "said once"

    reply = chat.ask(meeting, "Who will travel to Lisbon?", [], settings)
    assert reply.notice and "gpt-4o has been shut down" in reply.notice and "gpt-6-luna answers" in reply.notice
    assert "Maria" in answer(reply)
    again = chat.ask(meeting, "When was the budget approved?", [], settings)
    assert "Tuesday" in answer(again) and again.notice is None
    asked = [(r.info["model"], r.status) for r in retired.requests("chat")]
    assert asked == [("gpt-4o", 404), ("gpt-6-luna", 400), ("gpt-6-luna", 200), ("gpt-6-luna", 200)]


def test_a_chosen_model_that_is_gone_says_what_to_set(settings, retired, short_talk, meeting):
    with pytest.raises(ServiceError) as err:
        transcribe_file(short_talk[0], settings.replace(transcribe_model="whisper-1"))
    assert str(err.value) == (f"whisper-1 has been shut down on {service_name(settings)}; "
                              "set TRANSCRIBE_MODEL=gpt-transcribe (the model that replaces it).")
    assert [r.status for r in retired.requests()] == [404], "not retried, not replaced"

    chosen = Settings.from_env({"OPENAI_API_KEY": settings.api_key, "OPENAI_BASE_URL": settings.base_url,
                                "CHAT_MODEL": "gpt-4o"})
    with pytest.raises(ServiceError, match=r"gpt-4o has been shut down .*; set CHAT_MODEL=gpt-6-luna "
                                           r"\(the model that replaces it\)\.$"):
        answer(chat.ask(meeting, "Who will travel to Lisbon?", [], chosen))
    assert [r.status for r in retired.requests("chat")] == [404]


def test_a_successor_that_is_gone_too_is_named(settings, retired, meeting):
    retired.retired.add("gpt-6-luna")
    with pytest.raises(ServiceError, match="serves neither gpt-4o nor gpt-6-luna.*set CHAT_MODEL"):
        answer(chat.ask(meeting, "Who will travel to Lisbon?", [], settings))
    assert [r.info["model"] for r in retired.requests("chat")] == ["gpt-4o", "gpt-6-luna"]


# Parameters newer models refuse


def test_a_refused_temperature_is_dropped_for_the_model(settings, server, meeting):
    luna = settings.replace(chat_model="gpt-6-luna")
    assert "Maria" in answer(chat.ask(meeting, "Who will travel to Lisbon?", [], luna))
    assert "Tuesday" in answer(chat.ask(meeting, "When was the budget approved?", [], luna))
    sent = [(r.status, r.info["temperature"], "temperature" in r.info["params"]) for r in server.requests("chat")]
    assert sent == [(400, 0.2, True), (200, None, False), (200, None, False)], "refused once, then never sent"
    assert "Maria" in answer(chat.ask(meeting, "Who will travel to Lisbon?", [], settings))
    assert server.requests("chat")[-1].info["temperature"] == 0.2, "gpt-4o still gets it"


# Errors of other servers


# The same refusal as other servers word it.
OTHER_SHAPES = [
    {"detail": {"error": {"message": "Audio language xx is not supported."}}},  # faster-whisper-server
    {"detail": "Audio language xx is not supported."},  # FastAPI's HTTPException
    {"detail": [{"loc": ["body", "language"], "msg": "Audio language xx is not supported.", "type": "value_error"}]},
    {"object": "error", "message": "Audio language xx is not supported.", "type": "BadRequestError", "code": 400},
]


def test_other_servers_errors_show_their_message(settings, server, meeting):
    for body in OTHER_SHAPES:
        server.add_fault("chat", status=400, body=body)
        with pytest.raises(ServiceError, match=r"refused the request \(400\): Audio language xx is not supported\.$"):
            answer(chat.ask(meeting, "Who will travel to Lisbon?", [], settings))


def test_transcription_errors_of_other_servers_show_their_message(settings, server, short_talk):
    server.add_fault(status=400, body={"detail": {"error": {"message": "Model is still loading"}}})
    with pytest.raises(ServiceError, match=r"refused the request \(400\): Model is still loading\."):
        transcribe_file(short_talk[0], settings)


def test_a_server_without_a_chat_endpoint(settings, server, meeting):
    """A transcription-only server (faster-whisper-server) asked for an answer: FastAPI's 404."""
    server.add_fault("chat", status=404, body={"detail": "Not Found"})
    with pytest.raises(ServiceError) as err:
        answer(chat.ask(meeting, "Who will travel to Lisbon?", [], settings))
    message = str(err.value)
    assert "has no chat endpoint" in message and "CHAT_BASE_URL" in message and "CHAT_MODEL=none" in message
    assert "does not know the model" not in message


# The command line


@pytest.mark.slow
def test_cli_ask_with_retired_defaults(server_env, short_talk):
    server_env.retired = set(DEFAULTS_GONE)
    try:
        r = subprocess.run([sys.executable, "-m", "core", "ask", str(short_talk[0]), "Who will travel to Lisbon?"],
                           cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False)
    finally:
        server_env.retired = set()
    assert r.returncode == 0, r.stderr
    assert "Maria" in r.stdout and "According to the recording" in r.stdout
    assert r.stderr.count("gpt-transcribe transcribes instead") == 1, r.stderr
    assert r.stderr.count("gpt-6-luna answers instead") == 1, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_full_run_with_default_settings_after_both_retirements(settings, retired, long_talk):
    """Every retired model refused, default settings: the whole recording, each sentence cited
    within 10 s of being said, nothing sent whole to a successor without times (nothing paid
    twice), a streamed answer from the transcript, and both switches announced."""
    from support import LONGEST_REQUEST, assert_cited_in_time, spoken_as_said

    path, spoken = long_talk
    events: list[Progress] = []
    t = transcribe_file(path, settings, events.append)
    assert t.model == "gpt-transcribe"
    assert_cited_in_time(t, spoken_as_said(spoken))
    sent = [r for r in retired.requests() if r.info["model"] == "gpt-transcribe"]
    assert sent and all(r.info["seconds"] <= LONGEST_REQUEST for r in sent), \
        f"cut into pieces before sending: {[(r.info['filename'], r.info['seconds']) for r in sent]}"
    assert len(messages(events, "gpt-transcribe")) == 1
    reply = chat.ask(t, "Who will travel to Lisbon?", [], settings)
    pieces = list(reply.stream)
    assert len(pieces) > 3 and "Maria" in "".join(pieces) and "gpt-6-luna" in reply.notice
