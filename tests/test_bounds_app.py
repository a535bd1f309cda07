"""The attacks on memory and disk, against the app as a subprocess: a 400 MB data URL through the
real MCP route (the server's peak memory measured), bodies over the limit, 100 API sessions
that never say goodbye, and a restart after a crash."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import TEST_KEY
from support import start_app

pytestmark = [pytest.mark.app, pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")]

MB = 2**20


class PeakRss:
    """The resident memory of a process, sampled every 20 ms in a thread: its peak over the
    baseline taken at the start."""

    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def call_tool(url: str, name: str, arguments: dict):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        streams = streamablehttp_client(url + "gradio_api/mcp/", timeout=600, sse_read_timeout=600)
        async with streams as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool(name, arguments)

    return asyncio.run(run())


def app_log(tmp: Path) -> str:
    return (tmp / "app.log").read_text(errors="replace")


def work_bytes(tmp: Path) -> int:
    """What the app keeps on disk besides its cache: its work folder and Gradio's copies."""
    return sum(f.stat().st_size for folder in (tmp / "tmp" / "talk-to-your-audio", tmp / "gradio")
               for f in folder.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def mcp_app(fake_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bounds-mcp")
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url}, tmp,
                          args=("--mcp",))
    yield proc, url, tmp
    proc.terminate()
    proc.wait(timeout=20)


def call_route(url: str, name: str, media: str) -> str:
    """The tool through Gradio's REST route (`/gradio_api/call/<name>`): the body streamed from
    memory, then the result read from the event stream ("error" or "complete" and its data)."""
    import httpx

    body = json.dumps({"data": [media, "", ""]}).encode()
    with httpx.Client(timeout=600) as client:
        event = client.post(f"{url}gradio_api/call/{name}", content=iter(
            [body[i:i + MB] for i in range(0, len(body), MB)]), headers={"content-type": "application/json"})
        del body
        event.raise_for_status()
        return client.get(f"{url}gradio_api/call/{name}/{event.json()['event_id']}").text


@pytest.mark.parametrize("route", ["mcp", "call"])
def test_a_400_mb_data_url_costs_the_server_little_memory(mcp_app, route, record_property):
    """The attack as reported (400 MB of base64 raised the server's peak by 3.0 GB), through the
    MCP route and through Gradio's REST route of the same tool: the data URL is decoded to disk as
    the request streams in, so the server's peak grows by far less than the file; the tool gets
    the file whole (it is not audio: that is the answer)."""
    proc, url, tmp = mcp_app
    refused = app_log(tmp).count("recording is not an audio or video file")
    raw = os.urandom(300 * MB)  # 400 MB of base64
    media = "data:audio/mpeg;base64," + base64.b64encode(raw).decode()
    del raw
    with PeakRss(proc.pid) as rss:
        if route == "mcp":
            result = call_tool(url, "transcribe_recording", {"media": media})
            assert result.isError
            text = "".join(c.text for c in result.content if c.type == "text")
        else:
            text = call_route(url, "transcribe_recording", media)  # the event says "error" without words
            assert text.startswith("event: error"), text
            text = app_log(tmp)[-2000:]
    del media
    print(f"server peak RSS growth for a 400 MB data URL through the {route} route: {rss.growth / MB:.0f} MB")
    record_property("peak_rss_growth_mb", round(rss.growth / MB))
    assert "not an audio or video file" in text, text
    assert app_log(tmp).count("recording is not an audio or video file") == refused + 1, "the tool saw the file"
    assert rss.growth < 300 * MB, f"the server's peak grew by {rss.growth / MB:.0f} MB"
    assert not list((tmp / "tmp" / "talk-to-your-audio").rglob("data")), "the decoded file is gone"


def send_headers(url: str, length: int | None, chunked: bool = False) -> http.client.HTTPConnection:
    address = urlparse(url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    conn.putrequest("POST", "/gradio_api/call/transcribe_recording")
    conn.putheader("Content-Type", "application/json")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(length))
    conn.endheaders()
    return conn


def test_a_body_over_the_limit_is_refused_at_once(fake_server, tmp_path):
    """MAX_FILE_MB=1 allows a body of about 2.3 MB: a Content-Length over it is refused before
    any of the body is read; a chunked body is refused once it passes it; the client reads one
    sentence, and the log has no traceback."""
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "MAX_FILE_MB": "1"}, tmp_path)
    try:
        said = send_headers(url, 3 * 10**9).getresponse()
        assert said.status == 413
        assert json.loads(said.read()) == {"error": "This request is over the server's limit of 2.3 MB."}
        conn = send_headers(url, None, chunked=True)
        piece = b'{"data": ["data:audio/mpeg;base64,' + b"A" * (256 * 1024 - 36)
        sent = 0
        try:
            while sent < 20 * MB:
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
                piece = b"A" * (256 * 1024)
        except OSError:  # the server stopped reading
            pass
        streamed = conn.getresponse()
        assert streamed.status == 413 and "2.3 MB" in json.loads(streamed.read())["error"]
        assert sent < 10 * MB, f"{sent / MB:.0f} MB were taken before the refusal"
        time.sleep(1)
        assert "Traceback" not in app_log(tmp_path) and "Exception" not in app_log(tmp_path), app_log(tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


_clients = threading.local()


def api_transcribe(url: str, path: Path) -> str:
    """One API session that never says goodbye: a client of this thread's (one per thread: making
    one asks the server for the whole API), under a new session id each time."""
    import uuid

    from gradio_client import Client, handle_file

    if getattr(_clients, "url", None) != url:
        _clients.client, _clients.url = Client(url, verbose=False), url
    _clients.client.session_hash = uuid.uuid4().hex
    _, text, _ = _clients.client.predict(handle_file(str(path)), "", "", "", "", api_name="/transcribe")
    return text


def session_folders(tmp: Path) -> list[Path]:
    return list((tmp / "tmp" / "talk-to-your-audio").glob("run-*/session-*"))


def test_a_hundred_api_sessions_leave_bounded_disk(fake_server, tmp_path, short_talk):
    """100 `/transcribe` calls on a cached recording, each from a client that never comes back:
    the work folder stays under MAX_SESSION_MB while they come, and once SESSION_TTL_MINUTES
    has passed their folders and Gradio's copies of their uploads and downloads are gone."""
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    ttl = 12.0
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "SESSION_TTL_MINUTES": str(ttl / 60), "MAX_SESSION_MB": "0.02"}, tmp_path)
    try:
        assert "Lisbon" in api_transcribe(url, short_talk[0])  # cached from now on
        exports = sum(f.stat().st_size for f in session_folders(tmp_path)[0].iterdir())
        before = psutil.Process(proc.pid).memory_info().rss
        with ThreadPoolExecutor(6) as pool:
            texts = list(pool.map(lambda _: api_transcribe(url, short_talk[0]), range(100)))
        assert all("Lisbon" in t for t in texts)
        grown = psutil.Process(proc.pid).memory_info().rss - before
        time.sleep(4)  # a sweep (every 3 s here) applies the cap
        kept = session_folders(tmp_path)
        assert len(kept) * exports <= 0.02 * MB + exports, f"{len(kept)} session folders kept"
        time.sleep(ttl + 4)
        assert not session_folders(tmp_path), "every session's folder went after the time to live"
        assert work_bytes(tmp_path) < 2 * exports, f"{work_bytes(tmp_path)} bytes left"
        print(f"100 API sessions: {exports} bytes of exports each; server memory +{grown / 100 / 1024:.0f} kB "
              f"a session; {len(kept)} folders under the cap")
        assert "forgot" in app_log(tmp_path), "the expired API sessions were dropped from Gradio's state holder"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_restart_after_a_crash_removes_what_the_last_run_left(fake_server, tmp_path, short_talk):
    """API sessions' folders, then the server killed (no clean-up runs): the next start removes
    them at once, before any time to live."""
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url}
    proc, url = start_app(env, tmp_path)
    try:
        for _ in range(3):
            assert "Lisbon" in api_transcribe(url, short_talk[0])
        left = session_folders(tmp_path)
        assert len(left) == 3
    finally:
        proc.kill()
        proc.wait(timeout=20)
    proc, url = start_app(env, tmp_path)
    try:
        assert not [f for f in left if f.exists()], "the crashed run's sessions are gone"
        assert len(list((tmp_path / "tmp" / "talk-to-your-audio").glob("run-*"))) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
