"""The app's tools for AI agents, through a real MCP client (the `mcp` SDK over streamable HTTP):
list the tools, transcribe a file from the tests' media server, ask about it by its id."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")

from conftest import TEST_KEY
from support import start_app


@pytest.fixture(scope="module")
def mcp_app(fake_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp")
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "ALLOW_PRIVATE_URLS": "true"}, tmp, args=("--mcp",))  # the media server is local
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


def call(url: str, steps):
    """Run `steps(session)` in one MCP session with the app."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await steps(session)

    return asyncio.run(run())


def text_of(result) -> str:
    assert not result.isError, result.content
    return "".join(c.text for c in result.content if c.type == "text")


def test_an_agent_transcribes_a_link_and_asks_about_it(mcp_app, fake_server, short_talk, tmp_path):
    """The id an agent is given works for every tool; the recording's cache key, which anyone with
    the file can compute offline, and a guess are refused with the ordinary sentence."""
    from core.config import Settings
    from core.transcribe.pipeline import lookup
    from mediaserver import MediaServer

    url, app_tmp = mcp_app

    shutil.copy(short_talk[0], tmp_path / "meeting.mp3")
    media = MediaServer(tmp_path)
    try:
        async def steps(session):
            tools = {t.name: t for t in (await session.list_tools()).tools}
            transcribed = json.loads(text_of(await session.call_tool(
                "transcribe_recording", {"media": media.url("/files/meeting.mp3")})))
            answer = text_of(await session.call_tool(
                "ask_about_recording", {"recording_id": transcribed["id"], "question": "Who will travel to Lisbon?"}))
            internal = lookup(tmp_path / "meeting.mp3", Settings(api_key=TEST_KEY, base_url=fake_server.base_url,
                                                                 cache_dir=app_tmp / "cache")).meta.id
            refused = [await session.call_tool(tool, {"recording_id": guess, **extra})
                       for guess in ("0" * 64, "0" * 32, internal, internal[:32])
                       for tool, extra in (("ask_about_recording", {"question": "Hi?"}),
                                           ("summary_of_recording", {}))]
            summary = text_of(await session.call_tool("summary_of_recording", {"recording_id": transcribed["id"]}))
            return tools, transcribed, answer, refused, summary, internal

        tools, transcribed, answer, refused, summary, internal = call(url, steps)
    finally:
        media.stop()
    assert {"transcribe_recording", "ask_about_recording", "summary_of_recording"} <= set(tools)
    assert not {"transcribe", "ask"} & set(tools), "the session endpoints are not offered to agents"
    described = tools["transcribe_recording"]
    assert "id" in described.description and "media" in described.inputSchema["properties"]
    assert len(transcribed["id"]) == 32 and transcribed["id"] not in internal and transcribed["duration_seconds"] > 5
    assert transcribed["transcript"].splitlines()[0].startswith("[00:00] The budget")
    assert "Maria" in answer and "[00:05]" in answer
    for unknown in refused:
        assert unknown.isError and "No recording has that id here: transcribe it first." in "".join(
            c.text for c in unknown.content)
    assert "Chapters" in summary and "[00:00]" in summary, summary
