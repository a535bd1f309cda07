"""Summary and chapters: one streamed request, or parts read in parallel and combined; chapter
times that are the transcript's own; cached; keywords without a model; the CLI verb; the cost."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest

from core.answer import keywords, mapreduce, retrieval
from core import cli
from core import render
from core.service.retirement import forget_models
from core.answer import summary
from core.config import Settings
from core.exports import to_json
from core.transcript import Segment, Transcript

from support import TOPIC_SECONDS, TOPICS, line, sent_lines, speech_transcript


def with_system(server, rules: str) -> list:
    return [r for r in server.requests("chat") if r.info["messages"][0]["content"] == rules]


def assert_true_to(s: summary.Summary, t: Transcript) -> None:
    """Every chapter on a segment start inside the recording, in order; every citation inside it."""
    starts = {seg.start for seg in t.segments}
    assert s.chapters and all(c.start in starts and 0 <= c.start <= t.duration for c in s.chapters)
    assert [c.start for c in s.chapters] == sorted({c.start for c in s.chapters})
    for bullet in s.bullets:
        cited = render.citation_seconds(bullet)
        assert cited and all(0 <= x <= t.duration for x in cited), bullet


def test_a_recording_that_fits_is_summarized_in_one_streamed_request_and_cached(settings, server):
    t = speech_transcript(25)
    pieces: list[str] = []
    s = summary.summarize(t, settings, on_text=pieces.append)
    [request] = server.requests("chat")
    assert request.status == 200 and request.info["stream"] and request.info["model"] == "gpt-4o"
    assert request.info["messages"][0]["content"] == summary.SUMMARY_RULES
    assert sent_lines(request) == [line(t, seg) for seg in t.segments], "the whole transcript, once"
    assert len(pieces) > 10 and "".join(pieces).startswith("Summary:\n- "), "streamed as written"
    assert s.kind == summary.SUMMARY and len(s.bullets) == 3 and not s.cached and s.parts == 1
    assert [c.start for c in s.chapters] == [0.0, 600.0, 1200.0]
    assert_true_to(s, t)
    assert s.notice_in("en") is None, "nothing to say about a summary made in one go"

    again = summary.summarize(speech_transcript(25), settings, on_text=pieces.append)
    assert len(server.requests("chat")) == 1, "the second call costs nothing"
    assert again.cached and (again.bullets, again.chapters) == (s.bullets, s.chapters)
    summary.summarize(t, settings.replace(chat_model="gpt-4o-mini"))
    assert len(server.requests("chat")) == 2, "another model makes another summary"

    exported = json.loads(to_json(t))
    assert exported["summary"]["kind"] == "summary" and exported["summary"]["bullets"] == list(s.bullets)
    assert exported["chapters"][0] == {"start": 0.0, "title": s.chapters[0].title}
    assert "summary" not in exported["meta"] and exported["segments"][0]["text"] == t.segments[0].text
    assert "Summary:" in summary.as_text(s) and f"[00:00] {s.chapters[0].title}" in summary.as_text(s)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_three_hours_are_read_in_parts_in_parallel_and_combined(settings, server, monkeypatch):
    t = speech_transcript(180)
    s = settings.replace(context_tokens=2_000, summary_concurrency=3)
    parts = mapreduce.split_parts(t, s.context_tokens)
    cost = summary.estimate(t, s)
    assert cost.parts == len(parts) > 10

    busy, peak, lock, real = [0], [0], threading.Lock(), mapreduce.complete

    def counted(*args, **kwargs):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(mapreduce, "complete", counted)
    server.chat_delay = 0.002
    try:
        pieces, progress = [], []
        result = summary.summarize(t, s, on_text=pieces.append, on_progress=lambda *p: progress.append(p))
    finally:
        server.chat_delay = 0.0
    assert 1 < peak[0] <= 3, "in parallel, SUMMARY_CONCURRENCY at a time"
    assert progress[-1] == (len(parts), len(parts)) and len(progress) == len(parts)

    mapped = with_system(server, summary.PART_RULES)
    assert len(mapped) == len(parts)
    seen = Counter(x for r in mapped for x in sent_lines(r))
    assert seen == Counter(line(t, seg) for seg in t.segments), "every segment in exactly one part"
    assert all(retrieval.estimate_tokens(str(r.info["messages"][1]["content"])) <= s.context_tokens + 100 for r in mapped)
    combined = with_system(server, summary.COMBINE_RULES)
    assert len(combined) > 1, "the parts' summaries were too long for one request: combined in rounds"
    # The estimate is a ceiling: it expects a real model's longer notes, so more rounds of combining.
    assert len(parts) + len(combined) == len(server.requests("chat")) <= cost.requests
    assert {r.status for r in server.requests("chat")} == {200}

    assert result.kind == summary.SUMMARY and result.parts == len(parts)
    assert_true_to(result, t)
    assert result.chapters[-1].start > 2 * 3600, "chapters cover the whole recording"
    assert render.citation_seconds("\n".join(result.bullets))[-1] > 2 * 3600
    assert len(pieces) > 10 and summary.parse("".join(pieces), t).chapters == result.chapters, "the last one streamed"
    assert result.notice_in("en") == f"The recording is long: it was summarized in {len(parts)} parts, then combined."
    assert result.notice_in("es").startswith("La grabación es larga: se resumió en")
    assert "[2:" in summary.as_markdown(result), "past an hour, h:mm:ss like the citations"


def test_chapter_times_are_the_transcripts_own():
    t = Transcript([Segment(0.0, 9.0, "Hello."), Segment(10.4, 19.0, "Budget."), Segment(20.0, 29.0, "Travel."),
                    Segment(200.0, 209.0, "Late.")], 210.0)
    text = ("Summary:\n- The budget [00:10], then travel [00:20] [5:00:00].\n- Invented [9:59:59]\n\n"
            "**Chapters:**\n[00:00] Opening\n- [00:11] Budget talk [00:10]\n[00:10] The same start again\n"
            "[01:40] Where nothing was said\n[9:59:59] After the end\n[03:19] Late part\n[00:20]   \n")
    s = summary.parse(text, t, model="gpt-4o")
    assert s.bullets == ("The budget [00:10], then travel [00:20].", "Invented")
    assert [(c.start, c.title) for c in s.chapters] == [(0.0, "Opening"), (10.4, "Budget talk"), (200.0, "Late part")]
    # In Spanish, without the headings in English, and chapters without a heading.
    s = summary.parse("Resumen:\n- Se aprobó el presupuesto [00:10]\nCapítulos:\n1. [00:00] Inicio\n", t)
    assert s.bullets == ("Se aprobó el presupuesto [00:10]",) and s.chapters == (summary.Chapter(0.0, "Inicio"),)
    assert summary.parse("- Point [00:20]\n[00:20] Travel plans", t).chapters == (summary.Chapter(20.0, "Travel plans"),)


def test_a_model_that_invents_times_is_not_believed(settings, server):
    t = speech_transcript(3)
    server.chat_suffix = "\n[9:59:59] A chapter after the end\n[00:13] Nearly on a start\n[-1:00] Nonsense"
    try:
        s = summary.summarize(t, settings)
    finally:
        server.chat_suffix = ""
    assert_true_to(s, t)
    assert [(c.start, c.title) for c in s.chapters] == [(0.0, s.chapters[0].title), (12.0, "Nearly on a start")]


def test_without_a_model_chapters_by_time_titled_with_keywords(tmp_path):
    t = speech_transcript(61)
    s = summary.summarize(t, Settings(cache_dir=tmp_path))  # no key, no server: nothing to send
    assert s.kind == summary.KEYWORDS and s.bullets == () and s.why == summary.NO_MODEL
    starts = [c.start for c in s.chapters]
    assert starts == [300.0 * i for i in range(12)], "every 5 minutes on a segment start; the last 2 min join"
    for chapter in s.chapters:
        topic = TOPICS[int(chapter.start // TOPIC_SECONDS)]
        assert chapter.title.split(", ")[0] == topic, chapter
        assert len(chapter.title.split(", ")) == keywords.KEYWORDS_PER_TITLE
    text = summary.as_text(s)
    assert text.startswith("Chapters by time, titled with keywords (not a summary):\n[0:00:00] budget, ")
    assert "keywords, not a summary (no language model is configured)" in s.notice_in("en")
    assert "palabras clave" in summary.as_markdown(s, "es") and "no hay ningún modelo" in s.notice_in("es")
    assert json.loads(to_json(t))["summary"]["kind"] == "keywords"
    # Spanish, accents and all; a short recording is one chapter.
    es = Transcript([Segment(0.0, 5.0, "Hablamos del presupuesto de la biblioteca."),
                     Segment(6.0, 9.0, "El presupuesto se aprobó el martes, y la biblioteca abre en marzo.")], 10.0)
    assert keywords.keyword_chapters(es) == ((0.0, "presupuesto, biblioteca, hablamos, aprobó"),)


def test_summaries_turned_off_send_nothing(settings, server):
    s = summary.summarize(speech_transcript(20), settings.replace(summary="off"))
    assert s.kind == summary.KEYWORDS and s.why == summary.TURNED_OFF and len(s.chapters) == 4
    assert "SUMMARY=off" in s.notice, "the owner is told the setting"
    assert "SUMMARY" not in s.notice_in("en") + s.notice_in("es") and "desactivados" in s.notice_in("es")
    assert server.requests("chat") == []
    assert Settings.from_env({"SUMMARY": "off", "SUMMARY_CONCURRENCY": "2"}).summary_concurrency == 2
    with pytest.raises(Exception, match="SUMMARY must be one of auto, off"):
        Settings.from_env({"SUMMARY": "maybe"})


def test_a_retired_default_gives_way_in_every_part(settings, server):
    forget_models()
    server.retired.add("gpt-4o")
    try:
        t = speech_transcript(60)
        s = summary.summarize(t, settings.replace(context_tokens=6_000))
        assert s.model == "gpt-6-luna" and "gpt-6-luna answers instead" in s.notice_in("en")
        assert {r.info["model"] for r in server.requests("chat", status=200)} == {"gpt-6-luna"}
        asked = len(server.requests("chat"))
        assert summary.summarize(t, settings.replace(context_tokens=6_000)).cached
        assert len(server.requests("chat")) == asked
    finally:
        server.retired.discard("gpt-4o")
        forget_models()


def test_cost_of_a_summary():
    """The cost table in the README: requests and tokens (estimated) with the default budget."""
    default = Settings(api_key="x")
    costs = {minutes: summary.estimate(speech_transcript(minutes), default) for minutes in (10, 60, 180)}
    assert [c.requests for c in costs.values()] == [1, 1, 1], "three hours of speech just fit CONTEXT_TOKEN_BUDGET"
    assert costs[10].input_tokens < 5_000 < costs[60].input_tokens < 25_000 < costs[180].input_tokens < 60_000
    over = summary.estimate(speech_transcript(180), default.replace(context_tokens=20_000))
    assert (over.parts, over.requests) == (3, 4) and over.input_tokens < 1.1 * costs[180].input_tokens
    assert summary.estimate(speech_transcript(10), Settings()).requests == 0, "no model: free"


@pytest.mark.slow
def test_cli_summary(server_env, short_talk, capsys, monkeypatch):
    path, _ = short_talk
    assert cli.main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Summary:\n- The budget") and "\nChapters:\n[00:00] " in out
    monkeypatch.setenv("CHAT_MODEL", "none")
    assert cli.main(["summary", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Chapters by time, titled with keywords (not a summary):\n[00:00] ")
    assert "no language model is configured" in err
    assert cli.main(["summary", str(path.with_name("nope.mp3"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
