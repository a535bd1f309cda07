"""The page's handlers called as plain functions, with a built page and no browser: each calls
the job path and maps its events to the components they change."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest

from core.job import Done, Failed, Jobs, Progressed, Source, Stage, Ticket, visitor_settings
from ui.handlers import PageHandlers
from ui.layout import lay_out
from ui.state import Recent, Session, recent_entries, sealed


@pytest.fixture
def handlers(settings) -> PageHandlers:
    with gr.Blocks():
        page = lay_out(settings)
    return PageHandlers(Jobs(settings), page)


async def _collect(agen) -> list:
    return [item async for item in agen]


def _run(h: PageHandlers, ticket, remembered=None) -> list[dict]:
    return asyncio.run(_collect(h.run(ticket, None, remembered or [], None)))


def test_nothing_chosen_is_said_in_the_status_line(handlers):
    out = handlers.begin(None, None, "", "upload", "", "auto", "", "", None, [], None)
    assert "Choose a file or record something first." in out[handlers.page.status]
    assert handlers.page.ticket not in out, "no job is queued"


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_a_new_recording_gets_a_ticket_then_its_events_fill_the_page(handlers, server, short_talk):
    h, page = handlers, handlers.page
    out = h.begin(str(short_talk[0]), None, "", "upload", "", "auto", "", "", None, [], None)
    ticket = out[page.ticket]
    assert isinstance(ticket, Ticket) and "Waiting for a free slot" in out[page.status]
    updates = _run(h, ticket)
    final = updates[-1]
    session = final[page.state]
    assert isinstance(session, Session) and "Lisbon" in session.transcript.text
    assert "Transcribed" in final[page.status] and final[page.results]["visible"] is True
    assert any(page.transcript_view in u and page.state not in u for u in updates), "text shown while it grows"
    shown = [final[b] for b in page.downloads if final[b]["visible"]]
    assert len(shown) == 4 and all(Path(d["value"]).is_file() for d in shown), "rttm: only with speakers"
    [entry] = recent_entries(h.jobs, final[page.recent])
    assert entry.id == h.jobs.public_id(session.transcript) != session.transcript.meta.id and entry.media

    again = h.begin(str(short_talk[0]), None, "", "upload", "", "auto", "", "", session, final[page.recent], None)
    assert page.ticket not in again and "Loaded from the cache." in again[page.status]
    assert not session.folder.exists(), "the exports of the recording shown before are gone"


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_a_reload_brings_the_last_recording_and_its_conversation_back(handlers, server, short_talk):
    h, page = handlers, handlers.page
    final = _run(h, h.begin(str(short_talk[0]), None, "", "upload", "", "auto", "", "", None, [], None)[page.ticket])[-1]
    [entry] = recent_entries(h.jobs, final[page.recent])
    remembered = sealed(h.jobs, [replace(entry, chat=({"role": "user", "content": "Where?"},
                                                      {"role": "assistant", "content": "To Lisbon [00:05]."}))])
    back = h.restore(remembered, None)
    assert "Your last recording is back" in back[page.status]
    assert back[page.state].transcript.text == final[page.state].transcript.text
    assert "#t=" in back[page.chatbot][1]["content"], "the citation is a link again"
    gone = h.restore(sealed(h.jobs, [Recent("0" * 32)]), None)
    assert recent_entries(h.jobs, gone[page.recent]) == [] and "Choose a recording" in gone[page.status]


def test_a_browser_value_that_the_server_did_not_seal_brings_nothing_back(handlers, server, short_talk, tmp_path):
    """Forged (the plain list earlier versions kept, which anyone can now write: Gradio's key is
    public), edited, sealed by another server, or naming the recording by its cache key: the page
    starts empty, with no error, and the browser's value is replaced. The genuine value works."""
    from core.seal import ServerKey

    from core.cache import Cache, file_digest
    from core.transcribe.backends import get_backend
    from core.transcribe.keys import transcript_key
    from core.transcript import Segment, Transcript

    h, page = handlers, handlers.page
    key = transcript_key(file_digest(short_talk[0]), get_backend(h.base), h.base)
    Cache(h.base.cache_dir).put_transcript(key, Transcript([Segment(0.0, 4.0, "Maria travels to Lisbon.")], 9.0))
    transcript = h.jobs.prepare(Source(path=short_talk[0]), h.base, player_copy=False).transcript
    good = h.on_event(Done(transcript, None), None, [], "en")[page.recent]
    [entry] = recent_entries(h.jobs, good)
    plain = [{**entry.to_json(), "chat": [{"role": "user", "content": "Forged?"}]}]
    middle = len(good) // 2
    edited = good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1:]
    foreign = ServerKey.kept(tmp_path / "elsewhere").seal(plain, "recent")
    internal = transcript.meta.id
    for value in (plain, [{**entry.to_json(), "id": internal}], edited, foreign, "", None, 42, "x" * 5000,
                  sealed(h.jobs, [replace(entry, id=internal[:32])])):
        out = h.restore(value, None)
        assert page.state not in out and "Choose a recording" in out[page.status], value
        assert recent_entries(h.jobs, out[page.recent]) == []
    assert page.state in h.restore(good, None), "the value the server sealed still brings it back"


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_a_question_streams_its_answer_into_the_conversation(handlers, server, short_talk):
    h, page = handlers, handlers.page
    final = _run(h, h.begin(str(short_talk[0]), None, "", "upload", "", "auto", "", "", None, [], None)[page.ticket])[-1]
    updates = list(h.ask("Where will Maria travel?", [], final[page.state], "", final[page.recent], None))
    history, box, status, recent = updates[-1]
    assert box == "" and history[0]["content"] == "Where will Maria travel?"
    assert history[1]["role"] == "assistant" and history[1]["content"]
    assert recent_entries(h.jobs, recent)[-1].chat[0]["content"] == "Where will Maria travel?"
    _, kept, error, _ = list(h.ask("Anything?", [], None, "", [], None))[-1]
    assert kept == "Anything?" and "Process a recording first" in error


def test_the_job_path_events_end_with_failed_for_a_bad_file(settings, tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio at all")
    jobs = Jobs(settings)
    events = asyncio.run(_collect(jobs.transcribe(Source(path=bad), settings)))
    assert isinstance(events[-1], Failed) and "notes.mp3" in str(events[-1].error)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_the_job_path_reports_stages_progress_and_done(settings, server, short_talk):
    jobs = Jobs(settings)
    events = asyncio.run(_collect(jobs.run(jobs.prepare(Source(path=short_talk[0]), settings))))
    assert isinstance(events[-1], Done) and not events[-1].cached and events[-1].media is not None
    assert any(isinstance(e, Progressed) and e.live is not None for e in events)
    assert all(isinstance(e, (Stage, Progressed)) for e in events[:-1])
    cached = jobs.prepare(Source(path=short_talk[0]), settings)
    assert isinstance(cached, Done) and cached.cached


def test_a_visitors_key_is_used_in_place_of_the_servers(settings):
    """Their own key is their own budget (tests/test_budget.py): it replaces the server's for their requests."""
    assert visitor_settings(settings, "sk-visitor").api_key == "sk-visitor"
    assert visitor_settings(settings, "  ").api_key == settings.api_key
    assert visitor_settings(settings.replace(api_key=None), " sk-visitor ").api_key == "sk-visitor"


def test_a_tool_data_url_is_checked_before_it_is_written(tmp_path):
    with pytest.raises(Exception, match="base64"):
        Source.from_tool("data:audio/wav,plain", tmp_path, 1)
    with pytest.raises(Exception, match="limit"):
        Source.from_tool("data:audio/wav;base64," + "A" * (2 * 2**20), tmp_path, 1)
    assert Source.from_tool(" https://example.org/a.mp3 ", tmp_path, 1).url == "https://example.org/a.mp3"
    assert json.dumps(str(Source.from_tool("data:audio/wav;base64,AAAA", tmp_path, 1).path)).endswith('recording"')


@pytest.mark.parametrize("url", ["http://0177.0.0.1/", "http://[::1"])
def test_a_malformed_link_says_so_in_the_status_line(handlers, url, caplog):
    """The page's path for a link: the ordinary sentence, the button usable, no traceback logged."""
    h, page = handlers, handlers.page
    out = h.begin(None, None, url, "link", "", "auto", "", "", None, [], None)
    with caplog.at_level(logging.DEBUG):
        final = _run(h, out[page.ticket])[-1]
    assert "That link is not a valid web address" in final[page.status], final[page.status]
    assert final[page.process]["interactive"] is True
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
