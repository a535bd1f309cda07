"""Memory and disk within bounds: data URLs decoded to disk as they stream in, request bodies
limited, and the work folder's sessions, uploads and links removed (time to live, size cap,
leftovers of an ended run). The app-level attacks (a 400 MB data URL, 100 API sessions) are in
tests/test_bounds_app.py."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.audio import dataurl
from core.errors import AppError, TooLarge
from core.job import Source
from core.service.housekeeping import WorkFolders, folder_bytes
from ui.bodies import DataUrls, LimitedBodies


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def folders(tmp_path):
    return WorkFolders(tmp_path / "work", ttl_seconds=60, max_bytes=10 * 2**20, clock=Clock())


def read_in_pieces(body: bytes, folders, max_file_bytes=2**30) -> bytes:
    """The body as the app gets it, fed to the filter in pieces of random sizes (1 byte to 64 KB)."""
    reader, rng, i = DataUrls(folders, max_file_bytes), random.Random(7), 0
    while i < len(body):
        n = rng.choice([1, 2, 3, 5, 64, 4096, 65536])
        reader.feed(body[i:i + n])
        i += n
    return reader.close()


def tool_call(media: str, **more) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "transcribe_recording", "arguments": {"media": media, **more}}}).encode()


def test_a_large_data_url_becomes_a_file_with_the_same_bytes(folders):
    """Decoded as it streams in, with JSON's escaped slashes; the app gets a short reference,
    which gives back exactly the bytes sent, once."""
    raw = os.urandom(300_001)
    body = tool_call("data:audio/mpeg;base64," + base64.b64encode(raw).decode(), language="en")
    seen = json.loads(read_in_pieces(body.replace(b"/", b"\\/"), folders))
    args = seen["params"]["arguments"]
    assert args["media"].startswith(dataurl.REFERENCE) and len(args["media"]) < 100
    assert args["language"] == "en" and seen["method"] == "tools/call"
    source = Source.from_tool(args["media"], folders.new("tool-"), max_file_mb=1)
    assert source.path.read_bytes() == raw
    with pytest.raises(AppError, match="no longer here"):
        Source.from_tool(args["media"], folders.new("tool-"), max_file_mb=1)
    with pytest.raises(AppError, match="no longer here"):
        Source.from_tool(dataurl.REFERENCE + "made-up", folders.new("tool-"), max_file_mb=1)


def test_a_small_data_url_is_left_as_it_is_and_decoded_in_pieces(folders):
    raw = os.urandom(3 * dataurl.PIECE + 2)
    media = "data:audio/wav;base64," + base64.b64encode(raw).decode()
    body = tool_call(media) if len(media) < 65536 else tool_call(media[:10])
    assert json.loads(read_in_pieces(body, folders)) == json.loads(body)
    source = Source.from_tool(media, folders.new("tool-"), max_file_mb=1)
    assert source.path.read_bytes() == raw


@pytest.mark.parametrize("payload, error", [
    (base64.b64encode(os.urandom(200_000)).decode()[:-3] + "*", "base64"),  # a stray character
    ("QQ==" + base64.b64encode(os.urandom(200_000)).decode(), "base64"),  # padding in the middle
    (base64.b64encode(os.urandom(200_000)).decode()[:-1], "base64"),  # cut short
    (base64.b64encode(os.urandom(2 * 2**20)).decode(), "over the 1 MB"),
])
def test_a_bad_data_url_is_refused_by_the_tool_with_a_sentence(folders, payload, error):
    seen = json.loads(read_in_pieces(tool_call("data:audio/mpeg;base64," + payload), folders))
    with pytest.raises(AppError, match=error):
        Source.from_tool(seen["params"]["arguments"]["media"], folders.new("tool-"), max_file_mb=1)
    with pytest.raises(AppError, match=error):
        Source.from_tool("data:audio/mpeg;base64," + payload, folders.new("tool-"), max_file_mb=1)
    assert not list(folders.run.glob("spool-*/data")), "nothing half-decoded is kept"


def test_a_body_that_ends_inside_a_data_url_is_handed_on_unfinished(folders):
    """Not JSON: the app gets it unfinished, to refuse as it refuses any malformed body; the
    file begun for it goes."""
    body = b'{"data": ["data:audio/mpeg;base64,' + b"QUJD" * 50_000
    seen = read_in_pieces(body, folders)
    assert seen.startswith(b'{"data": ["data:audio/mpeg;base64,') and not list(folders.run.glob("spool-*"))
    with pytest.raises(ValueError):
        json.loads(seen)
    short = b'{"data": ["data:audio/mp'
    assert read_in_pieces(short, folders) == short


@pytest.mark.slow
def test_the_reference_is_only_good_in_this_process(folders, tmp_path):
    raw = os.urandom(100_000)
    seen = json.loads(read_in_pieces(tool_call("data:a/b;base64," + base64.b64encode(raw).decode()), folders))
    reference = seen["params"]["arguments"]["media"]
    code = ("import sys; from pathlib import Path; from core.job import Source\n"
            "try: Source.from_tool(sys.argv[1], Path(sys.argv[2]), 1)\n"
            "except Exception as e: print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code, reference, str(tmp_path)], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
    assert "AppError" in out.stdout and "no longer here" in out.stdout, out


def asgi_client(folders, limit):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def echo(request):
        body = await request.body()
        return JSONResponse({"length": len(body), "json": json.loads(body) if body else None})

    app = Starlette(routes=[Route("/gradio_api/call/x", echo, methods=["POST"])])
    return TestClient(LimitedBodies(app, limit=limit, max_file_bytes=2**20, folders=folders))


def test_an_over_limit_body_is_refused_with_a_sentence(folders):
    client = asgi_client(folders, limit=2**20)
    said = client.post("/gradio_api/call/x", content=b"x" * (2**20 + 1), headers={"content-type": "text/plain"})
    assert said.status_code == 413 and said.json() == {"error": "This request is over the server's limit of 1 MB."}
    streamed = client.post("/gradio_api/call/x", content=iter([b'{"data": ["', b"A" * 2**20, b'"]}']),
                           headers={"content-type": "application/json", "accept-language": "es"})
    assert streamed.status_code == 413 and "supera el límite del servidor de 1 MB" in streamed.json()["error"]
    assert not list(folders.run.glob("spool-*/*")), "the refused body's file is gone"
    small = client.post("/gradio_api/call/x", json={"data": ["data:a/b;base64," + "QUJD" * 50_000]})
    assert small.status_code == 200 and small.json()["json"]["data"][0].startswith("data:"), "left to the tool"
    big = asgi_client(folders, limit=4 * 2**20).post("/gradio_api/call/x",
                                                     json={"data": ["data:a/b;base64," + "QUJD" * 400_000]})
    assert big.status_code == 200 and big.json()["json"]["data"][0].startswith(dataurl.REFERENCE)


def test_folders_unused_for_the_time_to_live_go(folders):
    session, tool = folders.new("session-", owner="abc"), folders.new("tool-", held=True)
    folders.clock.now += 30
    folders.used(session)
    folders.clock.now += 45  # 75 s since the tool's folder was made, 45 since the session's use
    assert folders.sweep() == [] and session.exists() and tool.exists(), "a held folder stays"
    folders.release(tool)
    folders.clock.now += 61
    assert set(folders.sweep()) == {session, tool}
    assert not session.exists() and not tool.exists()


def test_a_session_that_ends_takes_its_folders(folders):
    mine, theirs = folders.new("session-", owner="mine"), folders.new("session-", owner="theirs")
    folders.end("mine")
    assert not mine.exists() and theirs.exists()


def test_the_cap_removes_the_least_recently_used_first(folders):
    made = []
    for i in range(6):
        folder = folders.new("session-")
        (folder / "export.txt").write_bytes(b"x" * (3 * 2**20))
        made.append(folder)
        folders.clock.now += 1
    folders.used(made[0])  # used again: now the most recent
    busy = folders.new("fetch-", held=True)
    (busy / "link.mp3").write_bytes(b"y" * (2 * 2**20))
    gone = folders.sweep()
    assert gone == made[1:5], "oldest first, until the rest fit in 10 MB"
    assert made[0].exists() and made[5].exists() and busy.exists()
    assert folder_bytes(folders.run) <= 10 * 2**20


def test_a_new_run_removes_what_ended_runs_left(tmp_path):
    """A run killed with files in its folder: the next one removes them at start; a run still
    going beside it keeps its own."""
    root = tmp_path / "work"
    code = ("import os, sys; from pathlib import Path; from core.service.housekeeping import WorkFolders\n"
            "f = WorkFolders(Path(sys.argv[1]), 60, 2**30); d = f.new('session-')\n"
            "(d / 'export.txt').write_text('x'); print(d, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    left = Path(out.stdout.strip())
    assert (left / "export.txt").exists()
    (root / "session-oldlayout").mkdir()  # an earlier version's folders, straight in the root
    (root / "tool-inuse").mkdir()
    os.utime(root / "session-oldlayout", (time.time() - 61, time.time() - 61))
    mine = WorkFolders(root, 60, 2**30)
    mine.start()
    assert not left.parent.exists() and not (root / "session-oldlayout").exists()
    assert (root / "tool-inuse").exists(), "an earlier version running beside it may be using it"
    beside = WorkFolders(root, 60, 2**30)
    beside.start()
    assert mine.new("session-").exists() and beside.run != mine.run, "a running app's folder stays"


@pytest.mark.slow
def test_a_running_job_keeps_its_upload_when_the_upload_cache_removes_it(settings, server, short_talk, tmp_path):
    """Gradio's clean-up of its upload cache removes the upload while the job reads it: the job
    reads its own link to the file, finishes, and its folder goes after it."""
    import asyncio
    import shutil

    from core.job import Done, Jobs, Progressed

    upload = tmp_path / "gradio" / "abc" / "meeting.mp3"
    upload.parent.mkdir(parents=True)
    shutil.copy(short_talk[0], upload)
    jobs = Jobs(settings.replace(chunk_seconds=10, concurrency=1))
    server.latency = lambda seconds: 0.5

    async def run():
        async for event in jobs.transcribe(Source(path=upload), jobs.base):
            if isinstance(event, Progressed) and upload.exists():
                shutil.rmtree(upload.parent)  # as Gradio's delete_cache would
            if isinstance(event, Done):
                return event.transcript

    try:
        transcript = asyncio.run(run())
    finally:
        server.latency = None
    assert not upload.exists() and "Lisbon" in transcript.text and transcript.source == "meeting.mp3"
    deadline = time.monotonic() + 10
    while list(jobs.folders.run.glob("job-*")):
        assert time.monotonic() < deadline, "the job's folder is removed once it is done"
        time.sleep(0.05)
