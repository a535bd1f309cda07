"""A visitor's budget on a shared server, attacked as an anonymous visitor would: a WAV whose
header says 1 Hz (583 minutes in 70 KB), a header that says less than the audio, 60 questions at
once, one client with four jobs; and what is never charged: the cache, a visitor's own key.
Against the tests' OpenAI-compatible server (hearing sound by its energy: quick and exact)."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import numpy as np
import pytest

import speech
from conftest import TEST_KEY
from fakeopenai import FakeOpenAI, energy_recognizer
from support import speech_transcript

from core.cache import Cache
from core.config import Settings
from core.i18n import ES
from core.job import Done, Failed, Jobs, Source, Ticket, visitor_settings
from core.service import budget
from core.service.budget import Budget, Busy, OverBudget, Visitor
from core.transcribe.pipeline import by_id
from ui.api import Tools
from ui.status import failure

ALICE, BOB = Visitor(None, "203.0.113.7"), Visitor(None, "198.51.100.9")


@pytest.fixture(scope="module")
def quick_server():
    server = FakeOpenAI(api_key=TEST_KEY, recognizer=energy_recognizer)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def shared(quick_server, tmp_path) -> Settings:
    """A shared server's settings: the budget on, 2 minutes of audio an hour, 10 questions."""
    quick_server.clear()
    return Settings(api_key=TEST_KEY, base_url=quick_server.base_url, cache_dir=tmp_path / "cache", budget="on",
                    budget_minutes_hour=2, budget_questions_hour=10, chunk_seconds=30, upload_format="flac",
                    retry_base_delay=0.05, request_timeout=30, diarization="off")


def one_hertz_wav(path, seconds: int = 35_000):
    """The attack: 70 KB of 16-bit samples whose header says 1 sample a second (583 minutes)."""
    pcm = (np.random.default_rng(0).standard_normal(seconds) * 8000).astype("<i2").tobytes()
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 1, 2, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + b"fmt " + fmt + b"data"
                     + struct.pack("<I", len(pcm)) + pcm)
    return path


def events(jobs: Jobs, path, settings, visitor=ALICE) -> list:
    async def collect():
        return [e async for e in jobs.transcribe(Source(path=path), settings, visitor=visitor)]

    return asyncio.run(collect())


def test_the_one_hertz_wav_is_refused_before_anything_is_sent(shared, quick_server, tmp_path):
    path = one_hertz_wav(tmp_path / "tiny.wav")
    assert path.stat().st_size < 71_000
    [failed] = events(Jobs(shared), path, shared)
    assert isinstance(failed, Failed) and isinstance(failed.error, OverBudget)
    assert quick_server.requests() == [], "nothing was sent"
    said = failure(failed.error, "en")
    assert said.startswith("This recording is 583 min long and 2 min of audio is left")
    assert "paste your own OpenAI API key" in said and "BUDGET" not in said and "\n" not in said
    assert "quedan 2 min" in failure(failed.error, "es")


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_a_header_that_says_less_is_charged_by_the_decoded_audio(shared, quick_server, long_talk, tmp_path):
    """45 s of speech whose header says 10 s, with 30 s left: sending stops at the budget, the
    transcript says why, and the next job is refused before it waits for a slot."""
    path = speech.lying_mp3(long_talk[0], tmp_path / "meeting.mp3", claimed=10)
    s = shared.replace(budget_minutes_hour=0.5, chunk_seconds=10)
    jobs = Jobs(s)
    done = events(jobs, path, s)[-1]
    assert isinstance(done, Done), done
    sent = [r.info["seconds"] for r in quick_server.requests(status=200)]
    assert sent and sum(sent) <= 30.0 + 1.0, sent  # cut in pauses here: no overlaps
    t = done.transcript
    assert t.meta.cut_at_limit and 20 < t.duration <= 31.0
    assert any("goes on past what is left of the audio this server transcribes for you" in n for n in t.meta.notes)
    left, _ = jobs.budget.audio_left(ALICE)
    assert abs((30 - left) - t.duration) < 1.0, "charged what was sent"
    quick_server.clear()
    [refused] = events(jobs, long_talk[0], s)  # its header tells the truth: refused before sending
    assert isinstance(refused.error, OverBudget) and "This recording is 1 min long" in str(refused.error)
    assert quick_server.requests() == []
    assert isinstance(jobs.prepare(Source(path=long_talk[0]), s, visitor=BOB), Ticket), "another visitor may"


def test_sixty_questions_at_once_get_the_budgeted_ten(shared, quick_server):
    """60 parallel `ask_about_recording` calls from one address: ten are answered, each of the
    others is told in one sentence, and only ten requests reach the service."""
    Cache(shared.cache_dir).put_transcript("ab" * 32, speech_transcript(20))
    jobs = Jobs(shared)
    recording = jobs.public_id(by_id("ab" * 32, shared))  # the id an agent is given
    tools = Tools(jobs)
    for _ in range(5):  # not a question: refused, and not charged
        with pytest.raises(gr.Error, match="Type a question first"):
            tools.ask_about_recording(recording, "  ")

    def ask(i: int):
        try:
            return tools.ask_about_recording(recording, f"What was said about the budget ({i})?")
        except gr.Error as e:
            return e

    with ThreadPoolExecutor(60) as pool:
        results = list(pool.map(ask, range(60)))
    answered = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, gr.Error)]
    assert len(answered) == 10 and len(refused) == 50
    assert len(quick_server.requests("chat")) == 10
    assert all(str(r.message).startswith("You have used the questions this server answers for you") for r in refused)
    summary = tools.summary_of_recording  # a summary not cached yet counts as a question too
    with pytest.raises(gr.Error, match="questions"):
        summary(recording)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_one_visitor_with_four_jobs_holds_one_slot(shared, quick_server, long_talk, short_talk):
    """Alice's second, third and fourth jobs are refused at once, so Bob's short one runs beside
    her first instead of waiting behind all four."""
    s = shared.replace(max_jobs=4, budget_minutes_hour=10)
    jobs = Jobs(s)
    quick_server.latency = lambda seconds: 1.0 if seconds > 20 else 0.1  # Alice's 30 s chunk is slow

    async def run_all():
        alice = [asyncio.create_task(collect(long_talk[0], ALICE)) for _ in range(4)]
        bob = asyncio.create_task(collect(short_talk[0], BOB))
        bob_done = await bob
        alice_running = sum(not a.done() for a in alice)
        return [await a for a in alice], bob_done, alice_running

    async def collect(path, who):
        return [e async for e in jobs.transcribe(Source(path=path), s, visitor=who)]

    try:
        alice, bob, alice_running = asyncio.run(run_all())
    finally:
        quick_server.latency = None
    busy = [a[-1] for a in alice if isinstance(a[-1], Failed)]
    assert len(busy) == 3 and all(isinstance(b.error, Busy) for b in busy)
    assert "already have a transcription running" in failure(busy[0].error, "en")
    assert isinstance(bob[-1], Done) and alice_running == 1, "Bob finished while Alice's one job ran"
    assert sum(isinstance(a[-1], Done) for a in alice) == 1


def test_a_cached_recording_is_never_refused(shared, quick_server, short_talk):
    jobs = Jobs(shared)
    assert isinstance(events(jobs, short_talk[0], shared)[-1], Done)
    while jobs.budget.spend(ALICE, 10):  # Alice has nothing left
        pass
    quick_server.clear()
    cached = jobs.prepare(Source(path=short_talk[0]), shared, visitor=ALICE)
    assert isinstance(cached, Done) and cached.cached
    assert quick_server.requests() == []


def test_a_visitors_own_key_is_their_own_budget(shared, quick_server, short_talk):
    server_key = shared.replace(api_key="the-servers-own-key")
    jobs = Jobs(server_key)
    while jobs.budget.spend(ALICE, 10):
        pass
    own = visitor_settings(server_key, TEST_KEY)  # pasted by the visitor: in place of the server's
    assert own.api_key == TEST_KEY and not jobs.budget.charged(own) and jobs.budget.charged(server_key)
    assert isinstance(events(jobs, short_talk[0], own)[-1], Done)
    assert jobs.budget.audio_left(ALICE)[0] < 10, "still nothing left of the server's"
    for _ in range(20):
        jobs.asking(ALICE, own)  # never charged, never refused
    assert jobs.budget.audio_left(BOB)[0] == 120, "and nothing charged to anyone"


def test_budgets_renew_by_the_clock_and_an_address_is_capped():
    now = [7 * 86400 + 3000.0]  # 10 minutes before the hour
    b = Budget(Settings(api_key="k", budget="on", budget_minutes_hour=1, budget_minutes_day=2, budget_per_address=2,
                        budget_questions_hour=1, budget_total_questions_day=3), clock=lambda: now[0])
    page = [Visitor(f"session{i}", "192.0.2.1") for i in range(3)]
    assert b.spend(page[0], 60) and not b.spend(page[0], 5)
    with pytest.raises(OverBudget) as e:
        b.ready(page[0], b.settings)
    assert "(0 min left); more in 10 min" in str(e.value)
    assert b.spend(page[1], 60) and not b.spend(page[2], 5), "the address has two visitors' worth"
    now[0] += 600  # a new hour: a minute again for each, within their day's two and the address's four
    assert b.spend(page[0], 60) and not b.spend(page[0], 5), "her day's two minutes are spent"
    assert b.spend(page[2], 60) and not b.spend(page[1], 5), "and the address's four"
    b.question(page[0], b.settings)
    b.question(page[1], b.settings)
    b.question(page[2], b.settings.replace(chat_model="none"))  # passages: nothing is sent, nothing charged
    with pytest.raises(OverBudget, match="more in 1 h 00 min"):
        b.question(page[1], b.settings)
    b.question(Visitor(None, "192.0.2.2"), b.settings)
    with pytest.raises(OverBudget):  # the server's three of the day are gone
        b.question(Visitor(None, "192.0.2.3"), b.settings)


def test_jobs_at_once_per_visitor_and_address():
    b = Budget(Settings(budget="on", max_jobs=4, budget_per_address=2))
    alice, tab = Visitor("one", "192.0.2.1"), Visitor("two", "192.0.2.1")
    with b.running(alice):
        with pytest.raises(Busy):
            with b.running(alice):
                pass
        with b.running(tab), pytest.raises(Busy):  # the address holds two, never all four
            with b.running(Visitor("three", "192.0.2.1")):
                pass
        with b.running(BOB):
            pass
    with b.running(alice):
        pass
    off = Budget(Settings())  # BUDGET auto, unresolved (the CLI, a test): no limits at all
    with off.running(alice), off.running(alice):
        assert off.allowance(alice, off.settings) is None


@pytest.mark.parametrize("mode,host,env,on", [
    ("auto", None, {}, False), ("auto", "127.0.0.1", {}, False), ("auto", "localhost", {}, False),
    ("auto", "::1", {}, False), ("auto", "0.0.0.0", {}, True), ("auto", "192.168.1.20", {}, True),
    ("auto", "my-host.example", {}, True), ("auto", None, {"SPACE_ID": "someone/app"}, True),
    ("on", None, {}, True), ("off", "0.0.0.0", {"SPACE_ID": "someone/app"}, False)])
def test_the_budget_is_on_where_others_can_reach_the_app(mode, host, env, on):
    s = budget.resolved(Settings.from_env({"BUDGET": mode}), host, env)
    assert (s.budget == "on") is on
    assert s.trusted_proxies == (1 if env else 0)


def test_settings_are_read_and_checked():
    s = Settings.from_env({"BUDGET_MINUTES_PER_HOUR": "15", "JOBS_PER_VISITOR": "2", "MAX_CONCURRENT_ASKS": "3",
                           "QUEUE_SIZE": "20", "TRUSTED_PROXIES": "2", "BUDGET_TOTAL_MINUTES_PER_DAY": "0"})
    assert (s.budget_minutes_hour, s.jobs_per_visitor, s.max_asks, s.queue_size, s.trusted_proxies) == (15, 2, 3, 20, 2)
    for var, raw in (("BUDGET", "maybe"), ("JOBS_PER_VISITOR", "0"), ("MAX_CONCURRENT_ASKS", "0"),
                     ("BUDGET_QUESTIONS_PER_HOUR", "0"), ("TRUSTED_PROXIES", "-1")):
        with pytest.raises(Exception, match=var):
            Settings.from_env({var: raw})


def test_the_address_is_the_connection_or_what_trusted_proxies_saw():
    assert budget.client_address("10.0.0.5", "1.2.3.4", 0) == "10.0.0.5", "no proxy: the header is the client's word"
    assert budget.client_address("10.0.0.5", "6.6.6.6, 1.2.3.4", 1) == "1.2.3.4", "what the proxy saw, not the client"
    assert budget.client_address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2) == "1.2.3.4"
    assert budget.client_address("10.0.0.5", None, 1) == "10.0.0.5"


@pytest.mark.parametrize("written,proxies,caller", [
    (None, 0, "198.51.100.4"), (b"6.6.6.6", 0, "198.51.100.4"), (b"6.6.6.6, 203.0.113.5", 1, "203.0.113.5")])
def test_an_mcp_callers_address_is_kept_for_its_tool_calls(written, proxies, caller):
    """Gradio runs a tool as a request from this machine that copies the MCP request's headers,
    and uvicorn believes X-Forwarded-For from this machine: the MCP request's header is made the
    caller's address alone, so an agent can neither pose as another nor be taken for 127.0.0.1."""
    from ui.visitor import McpCaller

    seen = []

    async def app(scope, receive, send):
        seen.append([v for k, v in scope["headers"] if k == b"x-forwarded-for"])

    headers = [(b"host", b"x")] + ([(b"x-forwarded-for", written)] if written else [])
    for path in ("/gradio_api/mcp/", "/gradio_api/queue/join"):
        scope = {"type": "http", "path": path, "headers": headers, "client": ("198.51.100.4", 5000)}
        asyncio.run(McpCaller(app, trusted_proxies=proxies)(scope, None, None))
    assert seen[0] == [caller.encode()]
    assert seen[1] == ([written] if written else []), "other requests are left as they came"


def test_every_sentence_has_its_spanish():
    for template in (budget.AUDIO_REFUSED, budget.AUDIO_USED_UP, budget.AUDIO_CUT, budget.QUESTIONS_USED_UP,
                     budget.BUSY):
        assert template in ES


def test_the_app_limits_asking_and_its_queue(shared):
    from ui.page import build_app

    demo = build_app(shared.replace(max_asks=3, queue_size=7))
    limits = {f.name: (f.concurrency_limit, f.concurrency_id) for f in demo.fns.values()}
    for name in ("ask", "ask_about_recording", "summary_of_recording", "summarize"):
        assert limits[name] == (3, "ask"), name
    assert demo._queue.max_size == 7


# The same attacks on the app itself, through gradio_client, from addresses of their own (uvicorn
# takes X-Forwarded-For from a client on 127.0.0.1, as from a proxy on this machine).

@pytest.fixture(scope="module")
def budget_app(quick_server, tmp_path_factory):
    """A shared server (BUDGET=on though on 127.0.0.1): two job slots, 2 minutes and 5 questions an hour."""
    from support import start_app

    tmp = tmp_path_factory.mktemp("budget")
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": quick_server.base_url, "BUDGET": "on",
                           "MAX_CONCURRENT_JOBS": "2", "BUDGET_MINUTES_PER_HOUR": "2", "BUDGET_QUESTIONS_PER_HOUR": "5",
                           "MAX_CONCURRENT_ASKS": "2", "CHUNK_SECONDS": "30", "UPLOAD_FORMAT": "flac",
                           "DIARIZATION": "off"}, tmp, args=("--mcp",))
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


def client_from(url: str, address: str):
    from gradio_client import Client

    return Client(url, verbose=False, headers={"X-Forwarded-For": address})


def as_data_url(path) -> str:
    import base64

    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.app
def test_the_app_refuses_the_wav_and_keeps_a_slot_for_others(budget_app, quick_server, long_talk, short_talk,
                                                            tmp_path):
    from gradio_client import handle_file

    url, tmp = budget_app
    quick_server.clear()
    with pytest.raises(Exception, match="This recording is 583 min long") as refused:
        client_from(url, "192.0.2.66").predict(as_data_url(one_hertz_wav(tmp_path / "tiny.wav")), "", "",
                                               api_name="/transcribe_recording")
    assert "Traceback" not in str(refused.value) and quick_server.requests() == []
    alice, bob_client = client_from(url, "203.0.113.7"), client_from(url, "198.51.100.9")
    quick_server.latency = lambda seconds: 8.0 if seconds > 20 else 0.1  # Alice's 30 s chunk takes its time
    try:
        jobs = [alice.submit(handle_file(str(long_talk[0])), "", "", "", "", api_name="/transcribe") for _ in range(4)]
        deadline = time.monotonic() + 60
        while not quick_server.requests():  # Alice's first job is sending
            assert time.monotonic() < deadline
            time.sleep(0.05)
        bob = bob_client.predict(handle_file(str(short_talk[0])), "", "", "", "", api_name="/transcribe")
        alice_still_running = sum(not j.done() for j in jobs)
        outcomes = []
        for j in jobs:
            try:
                outcomes.append(j.result(timeout=120))
            except Exception as e:  # noqa: BLE001 - gradio_client's AppError, with the page's sentence
                outcomes.append(e)
    finally:
        quick_server.latency = None
    assert "Transcribed" in bob[0]
    busy = [o for o in outcomes if isinstance(o, Exception)]
    assert len(busy) == 3 and all("already have a transcription running" in str(b) for b in busy), outcomes
    assert alice_still_running >= 1, "Bob was served while Alice's job still ran"
    log = (tmp / "app.log").read_text()
    assert "budget: api 203.0.113.7" in log and TEST_KEY not in log


@pytest.mark.app
def test_the_app_answers_the_budgeted_questions_of_sixty(budget_app, quick_server, short_talk):
    url, _ = budget_app
    mallory = client_from(url, "192.0.2.99")
    made = json.loads(mallory.predict(as_data_url(short_talk[0]), "", "", api_name="/transcribe_recording"))
    quick_server.clear()
    calls = [mallory.submit(made["id"], f"Who will travel to Lisbon? ({i})", api_name="/ask_about_recording")
             for i in range(60)]
    answered, refused = 0, []
    for call in calls:
        try:
            call.result(timeout=120)
            answered += 1
        except Exception as e:  # noqa: BLE001
            refused.append(str(e))
    assert answered == 5 and len(refused) == 55
    assert all("You have used the questions this server answers for you" in r for r in refused), refused[:2]
    assert len(quick_server.requests("chat")) == 5


@pytest.mark.app
@pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")
def test_an_agent_over_mcp_gets_its_budget_and_then_the_sentence(budget_app, quick_server, short_talk):
    """Through a real MCP client: the tool calls are charged to the agent's address (not lost
    in Gradio's request from this machine), five answers, then the sentence as the tool's error."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def steps():
        async with streamablehttp_client(budget_app[0] + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                made = await session.call_tool("transcribe_recording", {"media": as_data_url(short_talk[0])})
                recording = json.loads(made.content[0].text)["id"]
                return [await session.call_tool("ask_about_recording", {"recording_id": recording,
                                                                         "question": f"Who travels? ({i})"})
                        for i in range(7)]

    results = asyncio.run(steps())
    assert [r.isError for r in results] == [False] * 5 + [True] * 2
    assert "You have used the questions this server answers for you" in results[-1].content[0].text
    log = (budget_app[1] / "app.log").read_text()
    assert "budget: api 127.0.0.1 (address 127.0.0.1) asked a question" in log


def test_the_ledger_keeps_only_who_spent_and_forgets_yesterday(monkeypatch):
    monkeypatch.setattr(budget, "PRUNE_AT", 50)
    now = [86400 * 3.5]
    b = Budget(Settings(budget="on"), clock=lambda: now[0])
    for i in range(200):
        b.audio_left(Visitor(f"looker{i}", "192.0.2.1"))  # a look costs no memory
    assert len(b._accounts) == 0
    for i in range(40):
        b.spend(Visitor(f"yesterday{i}", f"192.0.2.{i}"), 5)
    now[0] += 86400
    for i in range(40):
        b.spend(Visitor(f"today{i}", "198.51.100.1"), 5)
    assert len(b._accounts) <= 2 + 41 + 40 and not any(k.startswith("page yesterd") for k in b._accounts)


@pytest.mark.app
def test_the_page_says_it_in_the_visitors_language(budget_app, browser, quick_server, artifacts, tmp_path):
    """The WAV on the page, in Spanish: one sentence in the status line, nothing sent, the key
    field offered though the server has a key, and the button usable again."""
    from support import new_page, process

    quick_server.clear()
    page = new_page(browser, budget_app[0], locale="es-ES")
    page.locator("#status .status").wait_for()  # the page has loaded
    assert page.locator("#user-key").is_visible(), "their own key is their own budget"
    process(page, one_hertz_wav(tmp_path / "diminuto.wav"))
    status = page.locator("#status .status-error")
    status.wait_for()
    page.wait_for_function("() => !document.querySelector('#process').disabled")
    page.screenshot(path=str(artifacts / "budget-over-es.png"), full_page=True)
    text = status.inner_text()
    assert "Esta grabación dura 583 min y quedan 2 min de audio" in text and "clave de API" in text
    assert "BUDGET" not in text and "Traceback" not in page.content()
    assert quick_server.requests() == []
    page.context.close()
