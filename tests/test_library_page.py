"""The Library tab in a real browser, and the tools that search and ask across recordings: a
shared server keeps each visitor's library apart (two browsers and an API client), a local
app's library is this machine's, and a sentence found or a citation opens its recording at
its moment, playing."""

from __future__ import annotations

import base64
import json
import re

import pytest

import speech
from conftest import TEST_KEY
from support import process, start_app, wait_transcript

pytestmark = pytest.mark.slow

PLAYER = "document.querySelector('#player audio, #player video')"
ALPHA, BETA = speech.SENTENCES[:5], speech.SENTENCES[5:]  # budget..doctor / concert..museum


@pytest.fixture(scope="module")
def talks(media_dir):
    """Two recordings that share no word: (path, where each sentence is said)."""
    alpha, beta = media_dir / "alpha talk.wav", media_dir / "beta talk.wav"
    return (alpha, speech.recording(alpha, ALPHA)), (beta, speech.recording(beta, BETA))


def _app(fake_server, tmp, args=(), **env):
    return start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url, "UPLOAD_FORMAT": "flac",
                      "SUMMARY": "off", **env}, tmp, args=args)


@pytest.fixture(scope="module")
def shared_app(fake_server, tmp_path_factory):
    """A server people share (a Space: SPACE_ID set): each visitor has a library of their own."""
    tmp = tmp_path_factory.mktemp("shared-library")
    proc, url = _app(fake_server, tmp, ("--mcp",), SPACE_ID="someone/talk-to-your-audio")
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def local_app(fake_server, tmp_path_factory):
    """The single-user app, on 127.0.0.1: the library is everything this machine transcribed."""
    tmp = tmp_path_factory.mktemp("local-library")
    proc, url = _app(fake_server, tmp)
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


def visitor(chromium, url):
    ctx = chromium.new_context(locale="en-US", viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    return page


def transcribe(page, path, word) -> None:
    page.get_by_role("tab", name="Transcribe").click()
    process(page, path)
    wait_transcript(page, word)


def library(page) -> list[str]:
    """The titles the Library tab lists."""
    page.get_by_role("tab", name="Library").click()
    page.locator("#library-list table.lib-list, #library-list .lib-empty").first.wait_for()
    return page.locator("#library-list tbody tr td:first-child").all_inner_texts()


def search(page, words: str) -> list[str]:
    page.get_by_role("tab", name="Library").click()
    box = page.locator("#library-search textarea, #library-search input").first
    box.fill(words)
    box.press("Enter")
    page.wait_for_function("q => [...document.querySelectorAll('#library-hits [data-query]')].some(e => "
                           "e.getAttribute('data-query') === q)", arg=words)
    return page.locator("#library-hits li").all_inner_texts()


def ask(page, question: str) -> str:
    page.get_by_role("tab", name="Library").click()
    before = page.locator("#library-answer").inner_text()
    box = page.locator("#library-ask textarea, #library-ask input").first
    box.fill(question)
    box.press("Enter")
    page.wait_for_function("b => { const a = document.querySelector('#library-answer .lib-answer[data-done]'); "
                           "return a && a.innerText !== b }", arg=before)
    return page.locator("#library-answer").inner_text()


def playing_at(page, src_part: str, seconds: float) -> None:
    """The Transcribe tab shows the recording `src_part` names, and its player plays from `seconds`."""
    page.locator("#loaded").filter(has_text=src_part).wait_for(timeout=15_000)
    page.wait_for_function(f"t => {{ const p = {PLAYER}; return p && !p.paused && Math.abs(p.currentTime - t) < 1.5 }}",
                           arg=seconds, timeout=15_000)


def sent_to_model(fake_server) -> str:
    return fake_server.requests("chat")[-1].info["messages"][1]["content"]


def data_url(path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_a_shared_server_keeps_each_visitors_library_apart(chromium, shared_app, talks, fake_server, artifacts):
    from gradio_client import Client

    url, tmp = shared_app
    (alpha, _), (beta, _) = talks
    ana, bob = visitor(chromium, url), visitor(chromium, url)
    transcribe(ana, alpha, "budget")
    transcribe(bob, beta, "concert")
    assert library(ana) == ["alpha talk.wav"] and library(bob) == ["beta talk.wav"]
    assert search(ana, "concert") == [] and search(bob, "revenue") == []
    assert re.match(r"alpha talk\.wav · \[00:\d\d\] · Our quarterly revenue", search(ana, "revenue")[0])

    answer = ask(ana, "When does the concert in the park start?")
    assert "don't know" in answer
    assert "Recording: alpha talk.wav" in sent_to_model(fake_server) and "concert" not in sent_to_model(fake_server)
    ana.screenshot(path=str(artifacts / "library-shared-ana.png"), full_page=True)

    ana.reload()  # the owner id is kept, sealed, in the visitor's own browser
    ana.locator("#status .status").wait_for()
    assert library(ana) == ["alpha talk.wav"]
    carol = visitor(chromium, url)  # a new visitor has nothing
    carol.locator("#status .status").wait_for()
    assert library(carol) == []

    client = Client(url, verbose=False)  # an API caller reaches what it holds ids for, nothing else
    with pytest.raises(Exception, match="Give the ids"):
        client.predict("revenue", [], api_name="/search_recordings")
    with pytest.raises(Exception, match="No recording has that id here"):
        client.predict("revenue", ["0" * 32], api_name="/search_recordings")
    made = json.loads(client.predict(data_url(beta), "", "", api_name="/transcribe_recording"))
    assert json.loads(client.predict("revenue", [made["id"]], api_name="/search_recordings")) == []
    found = json.loads(client.predict("concert park", [made["id"]], api_name="/search_recordings"))
    assert found[0]["recording_id"] == made["id"] and "concert" in found[0]["text"].lower()
    reply = json.loads(client.predict("What was the revenue growth?", [made["id"]], api_name="/ask_across_recordings"))
    assert "don't know" in reply["answer"] and "revenue" not in sent_to_model(fake_server).lower()
    assert library(ana) == ["alpha talk.wav"] and library(bob) == ["beta talk.wav"]  # the tool changed neither


def test_the_library_tab_opens_recordings_at_the_moment_found_or_cited(chromium, local_app, talks, fake_server,
                                                                        artifacts):
    url, tmp = local_app
    (alpha, said_alpha), (beta, said_beta) = talks
    page = visitor(chromium, url)
    transcribe(page, alpha, "budget")
    transcribe(page, beta, "concert")
    assert library(page) == ["beta talk.wav", "alpha talk.wav"]
    page.locator("#library-sort input").first.click()
    page.get_by_role("option", name="Title").click()
    page.wait_for_function("() => document.querySelector('#library-list td')?.innerText === 'alpha talk.wav'")
    page.locator("#library-filter textarea, #library-filter input").first.fill("beta")
    page.wait_for_function("() => document.querySelectorAll('#library-list tbody tr').length === 1")
    page.screenshot(path=str(artifacts / "library-list.png"), full_page=True)

    revenue = next(s for s in said_alpha if s.key == "revenue")
    hit = search(page, "quarterly revenue")
    assert hit[0].startswith("alpha talk.wav · ") and "revenue" in hit[0]
    page.locator("#library-hits li button").first.click()  # beta is shown: the click opens alpha there
    playing_at(page, "alpha talk.wav", revenue.start)
    assert "#library" not in page.url
    page.screenshot(path=str(artifacts / "library-opened-at-hit.png"), full_page=True)

    mountain = next(s for s in said_beta if s.key == "mountain")
    answer = ask(page, "Why was the mountain trail closed?")
    cited = re.search(r"\[beta talk\.wav · 00:(\d\d)\]", answer)
    assert cited and abs(int(cited.group(1)) - mountain.start) < 1.5, answer
    data = sent_to_model(fake_server)
    assert "Recording: alpha talk.wav" in data and "Recording: beta talk.wav" in data  # passages of both
    page.screenshot(path=str(artifacts / "library-answer.png"), full_page=True)
    page.locator("#library-answer button.lib-open").first.click()
    playing_at(page, "beta talk.wav", mountain.start)

    other = visitor(chromium, url)  # another tab of this machine: the same library
    assert sorted(library(other)) == ["alpha talk.wav", "beta talk.wav"]


def choose(page, box: str, option: str) -> None:
    """Choose an option of one of the tab's menus (`box`: its elem_id), by the start of its label."""
    page.locator(f"#{box} input").first.click()
    page.get_by_role("option", name=re.compile("^" + re.escape(option))).click()
    page.keyboard.press("Escape")


def hits_only_from(page, title: str) -> None:
    """Wait until the sentences found are all of the recording `title`."""
    page.wait_for_function("t => { const h = [...document.querySelectorAll('#library-hits li')]; "
                           "return h.length && h.every(li => li.innerText.startsWith(t + ' · ')) }", arg=title)


def test_search_and_ask_cover_only_the_recordings_chosen(chromium, local_app, talks, fake_server, artifacts):
    """One recording chosen: the words searched are searched again in it alone, and a question
    sends the model passages of it alone; the choice outlives the listing being refreshed."""
    url, tmp = local_app
    (alpha, _), (beta, _) = talks
    page = visitor(chromium, url)
    transcribe(page, alpha, "budget")  # from the cache when an earlier test made them
    transcribe(page, beta, "concert")
    assert sorted(library(page)) == ["alpha talk.wav", "beta talk.wav"]
    both = search(page, "revenue concert")  # no sentence has both words: those with either
    assert {h.split(" · ")[0] for h in both} == {"alpha talk.wav", "beta talk.wav"}

    choose(page, "library-scope", "alpha talk.wav")
    hits_only_from(page, "alpha talk.wav")  # the new scope searched again
    assert all(h.startswith("alpha talk.wav · ") for h in search(page, "concert revenue museum"))
    assert search(page, "concert museum") == []
    assert page.locator("#library-hits").inner_text() == "Nothing in the recordings chosen matches."
    choose(page, "library-span", "Last 7 days")
    answer = ask(page, "Why was the mountain trail closed?")
    data = sent_to_model(fake_server)
    assert "Recording: alpha talk.wav" in data and "beta talk.wav" not in data and "mountain" not in data.lower()
    assert "don't know" in answer
    page.screenshot(path=str(artifacts / "library-scope.png"), full_page=True)

    assert sorted(library(page)) == ["alpha talk.wav", "beta talk.wav"]  # the tab selected again: listed anew
    assert page.locator("#library-scope .token").all_inner_texts()[0].startswith("alpha talk.wav")
    page.locator("#library-scope .token-remove").first.click()  # none chosen: all of them again
    page.wait_for_function("() => [...document.querySelectorAll('#library-hits li')].some(li => "
                           "li.innerText.startsWith('beta talk.wav · '))")


def test_rename_and_remove_from_the_library(chromium, local_app, talks):
    url, tmp = local_app
    (alpha, _), (beta, _) = talks
    page = visitor(chromium, url)
    page.locator("#status .status").wait_for()
    assert sorted(library(page)) == ["alpha talk.wav", "beta talk.wav"]
    page.locator("#library-pick input").first.click()
    page.get_by_role("option", name=re.compile("^alpha talk.wav")).click()
    title = page.locator("#library-title textarea, #library-title input").first
    page.wait_for_function("() => document.querySelector('#library-title input, #library-title textarea').value")
    title.fill("Weekly sync")
    page.locator("#library-rename").click()
    page.wait_for_function("() => [...document.querySelectorAll('#library-list td')].some(t => t.innerText === 'Weekly sync')")
    assert search(page, "revenue")[0].startswith("Weekly sync · ")

    cached = sorted(p.name for p in (tmp / "cache").glob("[tk]*/*.json"))
    page.locator("#library-pick input").first.click()
    page.get_by_role("option", name=re.compile("^beta talk.wav")).click()
    page.locator("#library-remove").click()
    page.locator("#library-status .status-done").wait_for()
    assert library(page) == ["Weekly sync"]
    assert search(page, "concert") == []
    left = sorted(p.name for p in (tmp / "cache").glob("[tk]*/*.json"))
    assert len(left) == len(cached) - 1  # no one else held it: its transcript is gone too
    page.reload()  # and the page does not bring it back from the browser's recent recordings
    page.locator("#status .status").wait_for()
    assert library(page) == ["Weekly sync"]


def test_the_tools_search_and_ask_the_local_library(local_app, fake_server):
    from gradio_client import Client

    client = Client(local_app[0], verbose=False)
    found = json.loads(client.predict("revenue", [], api_name="/search_recordings"))
    assert found and found[0]["title"] == "Weekly sync" and found[0]["time"].startswith("00:")
    reply = json.loads(client.predict("What happened to the quarterly revenue?", [], api_name="/ask_across_recordings"))
    assert "[Weekly sync · 00:" in reply["answer"] and reply["sources"] == {"Weekly sync": found[0]["recording_id"]}
    with pytest.raises(Exception, match="No recording has that id here"):
        client.predict("revenue", ["f" * 32], api_name="/ask_across_recordings")


def test_what_a_tool_transcribes_on_a_local_app_joins_its_library(local_app, media_dir):
    """Everything this machine transcribed is its library: a recording sent by an agent too."""
    from gradio_client import Client

    gamma = media_dir / "gamma talk.wav"
    speech.recording(gamma, [speech.SENTENCES[7], speech.SENTENCES[8]])
    client = Client(local_app[0], verbose=False)
    made = json.loads(client.predict(data_url(gamma), "", "", api_name="/transcribe_recording"))
    found = json.loads(client.predict("mountain trail", [], api_name="/search_recordings"))
    assert made["id"] in [f["recording_id"] for f in found]
    assert (local_app[1] / "cache" / "kept").is_dir(), "the local library's transcripts are out of the cache's cap"


@pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")
def test_mcp_tools_search_and_ask_across_the_recordings_given(shared_app, talks, fake_server):
    """Through a real MCP client: the ids transcribe_recording returned scope both tools; an id
    this server did not give is refused with the ordinary sentence."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    (alpha, _), (beta, _) = talks

    async def steps(session):
        def text(result):
            assert not result.isError, result.content
            return "".join(c.text for c in result.content if c.type == "text")
        tools = {t.name: t for t in (await session.list_tools()).tools}
        ids = [json.loads(text(await session.call_tool("transcribe_recording", {"media": data_url(path)})))["id"]
               for path in (alpha, beta)]
        both = json.loads(text(await session.call_tool("search_recordings", {"query": "engineers server museum",
                                                                             "recording_ids": ids})))
        one = json.loads(text(await session.call_tool("search_recordings", {"query": "museum",
                                                                            "recording_ids": ids[:1]})))
        asked = json.loads(text(await session.call_tool("ask_across_recordings", {
            "question": "When will the museum open its dinosaur exhibition?", "recording_ids": ids})))
        refused = await session.call_tool("ask_across_recordings", {"question": "Hi?", "recording_ids": ["0" * 32]})
        return tools, ids, both, one, asked, refused

    async def run():
        async with streamablehttp_client(shared_app[0] + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await steps(session)

    with ThreadPoolExecutor(1) as thread:  # this thread has Playwright's event loop
        tools, ids, both, one, asked, refused = thread.submit(asyncio.run, run()).result()
    assert "recording_ids" in tools["search_recordings"].inputSchema["properties"]
    assert "recording_ids" in tools["ask_across_recordings"].inputSchema["properties"]
    assert {f["recording_id"] for f in both} == set(ids) and one == []
    assert "museum" in asked["answer"] and asked["sources"] == {i: i for i in ids}  # titled by their ids
    assert f"[{ids[1]} · 00:" in asked["answer"]
    assert refused.isError and "No recording has that id here" in "".join(c.text for c in refused.content)
