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
    yield url
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


def test_an_agent_transcribes_a_link_and_asks_about_it(mcp_app, short_talk, tmp_path):
    from mediaserver import MediaServer

    shutil.copy(short_talk[0], tmp_path / "meeting.mp3")
    media = MediaServer(tmp_path)
    try:
        async def steps(session):
            tools = {t.name: t for t in (await session.list_tools()).tools}
            transcribed = json.loads(text_of(await session.call_tool(
                "transcribe_recording", {"media": media.url("/files/meeting.mp3")})))
            answer = text_of(await session.call_tool(
                "ask_about_recording", {"recording_id": transcribed["id"], "question": "Who will travel to Lisbon?"}))
            unknown = await session.call_tool("ask_about_recording", {"recording_id": "0" * 64, "question": "Hi?"})
            summary = text_of(await session.call_tool("summary_of_recording", {"recording_id": transcribed["id"]}))
            return tools, transcribed, answer, unknown, summary

        tools, transcribed, answer, unknown, summary = call(mcp_app, steps)
    finally:
        media.stop()
    assert {"transcribe_recording", "ask_about_recording", "summary_of_recording"} <= set(tools)
    assert not {"transcribe", "ask"} & set(tools), "the session endpoints are not offered to agents"
    described = tools["transcribe_recording"]
    assert "id" in described.description and "media" in described.inputSchema["properties"]
    assert len(transcribed["id"]) == 64 and transcribed["duration_seconds"] > 5
    assert transcribed["transcript"].splitlines()[0].startswith("[00:00] The budget")
    assert "Maria" in answer and "[00:05]" in answer
    assert unknown.isError and "transcribe it first" in "".join(c.text for c in unknown.content)
    assert "Chapters" in summary and "[00:00]" in summary, summary
