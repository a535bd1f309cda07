"""Stop means stop, and nothing paid for is thrown away; a slow server is not flooded; the same
recording sent by several people at once is transcribed once; our own bugs are not retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.errors import AppError, Cancelled, TranscriptionFailed
from core.transcribe.jobs import CONSUMER_TIMEOUT, Job, running
from core.transcribe.backends.openai_api import OpenAIBackend
from core.transcribe.pipeline import transcribe_file
from core.transcribe.plan import plan
from core.transcribe.progress import Progress
from fakeopenai import energy_recognizer

ROOT = Path(__file__).parent.parent


@pytest.fixture
def chunked(settings):
    """About five 10 s chunks for the 45 s talk, two requests at a time."""
    return settings.replace(chunk_seconds=10, silence_window=5, concurrency=2)


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sent_chunks(server) -> list[str]:
    return [r.info["filename"] for r in server.requests(status=200)]


@pytest.mark.slow
def test_closing_a_job_stops_sending_and_keeps_what_finished(chunked, server, long_talk):
    path, spoken = long_talk
    total = len(plan(path, chunked).chunks)
    server.latency = lambda seconds: 1.0
    try:
        job = Job(path, chunked)
        events = iter(job)
        for item in events:  # until the first chunk is back
            if isinstance(item, Progress) and item.stage == "transcribing":
                break
        events.close()  # the consumer goes away, like a closed tab
        closed = time.monotonic()
        assert running() == 1, "a job counts against the limit until its requests in flight are back"
        assert job.finished.wait(30), "the work stops"
    finally:
        server.latency = None
    assert not [t for t in server.arrivals if t > closed + 0.5], "nothing was sent after the close"
    done = sent_chunks(server)
    assert 1 <= len(done) < total
    assert running() == 0

    server.clear()
    t = transcribe_file(path, chunked)
    again = sent_chunks(server)
    assert not set(again) & set(done), "what finished before was cached, not sent again"
    assert len(done) + len(again) == total
    assert all(s.key in t.text.lower() for s in spoken)


@pytest.mark.slow
def test_a_consumer_that_stops_asking_stops_the_job(chunked, server, long_talk):
    """No close, no error: the consumer just never comes back (a gone client, a dropped generator)."""
    path, _ = long_talk
    server.latency = lambda seconds: 0.7
    try:
        job = Job(path, chunked.replace(concurrency=1))
        events = iter(job)
        next(events)  # one event, then silence
        last_seen = time.monotonic()
        assert job.finished.wait(30)
    finally:
        server.latency = None
    late = [t for t in server.arrivals if t > last_seen + CONSUMER_TIMEOUT + 0.5]
    assert not late, f"{len(late)} request(s) sent after the consumer left"
    with pytest.raises(Cancelled, match="running again sends only what is missing"):
        list(events)


@pytest.mark.slow
def test_ctrl_c_stops_the_cli_and_a_rerun_sends_only_what_is_missing(server_env, long_talk, tmp_path):
    path, spoken = long_talk
    env = {**os.environ, "CHUNK_SECONDS": "10", "TRANSCRIBE_CONCURRENCY": "2"}
    total = len(plan(path, __import__("core.config").config.Settings.from_env(env)).chunks)
    server_env.latency = lambda seconds: 1.0
    try:
        proc = subprocess.Popen([sys.executable, "-m", "core", "transcribe", str(path)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: server_env.requests(status=200))
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=60)
    finally:
        server_env.latency = None
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("error: Stopped."), err
    assert "Traceback" not in err and out == ""
    assert not [t for t in server_env.arrivals if t > interrupted + 0.5], "nothing was sent after Ctrl-C"
    done = sent_chunks(server_env)
    assert len(done) < total

    server_env.clear()
    rerun = subprocess.run([sys.executable, "-m", "core", "transcribe", str(path)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    again = sent_chunks(server_env)
    assert not set(again) & set(done) and len(done) + len(again) == total
    assert all(s.key in rerun.stdout.lower() for s in spoken)


@pytest.mark.slow
def test_a_slow_server_is_not_flooded_by_retries(settings, server, short_talk):
    """Every request outlives REQUEST_TIMEOUT. A retry waits until the server is likely done with
    the request it abandoned: the server never has more than the job's share at once. The server
    hears with the cheap recognizer, so each request takes its 1.6 s however loaded the machine
    is (Whisper on a busy CI machine would stretch a request well past the 1.5 s it lingers)."""
    s = settings.replace(concurrency=1, request_timeout=1.5, max_retries=2)
    server.latency, hearing = (lambda seconds: 1.6), server.recognizer
    server.recognizer = energy_recognizer
    try:
        with pytest.raises(TranscriptionFailed, match=r"did not answer within 1.5 s"):
            transcribe_file(short_talk[0], s)
        time.sleep(2.5)  # the abandoned requests finish on the server
    finally:
        server.latency, server.recognizer = None, hearing
    assert len(server.arrivals) == 3, "timed-out requests are retried"
    assert server.peak_transcribing == 1, f"{server.peak_transcribing} requests at once on a slow server"


@pytest.mark.slow
def test_the_same_recording_at_once_is_transcribed_once(chunked, server, long_talk):
    path, spoken = long_talk
    total = len(plan(path, chunked).chunks)
    server.latency = lambda seconds: 0.5
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: transcribe_file(path, chunked), range(4)))
    finally:
        server.latency = None
    assert len(server.arrivals) == total, f"{len(server.arrivals)} requests for {total} chunks"
    assert len({r.text for r in results}) == 1 and all(s.key in results[0].text.lower() for s in spoken)


class BuggyBackend(OpenAIBackend):
    """The real backend with a bug of ours after the request: a TypeError reading its result."""

    def transcribe_chunk(self, chunk, on_segment=None):
        super().transcribe_chunk(chunk, on_segment)
        raise TypeError("'NoneType' object is not subscriptable")


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_our_own_bugs_are_not_retried(settings, server, short_talk):
    with pytest.raises(AppError, match=r"internal error \(TypeError\)") as err:
        transcribe_file(short_talk[0], settings, backend=BuggyBackend(settings))
    assert len(server.requests()) == 1, "one paid request, not nine"
    assert "Traceback" not in str(err.value)


def test_auto_language_overrides_the_servers_language(settings):
    server_default = settings.replace(language="es", prompt="Acme")
    visitor = server_default.replace(language=None)
    assert visitor.language is None and visitor.prompt == "Acme"
