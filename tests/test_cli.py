"""`python -m core` as a user runs it: a real process, real files, the local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow  # each test runs the CLI in a new process, seconds each


def run(*args: str, env_extra: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_transcribe_formats_and_cache(server_env, short_talk, tmp_path):
    path, spoken = short_talk
    txt = run("transcribe", str(path))
    assert txt.returncode == 0, txt.stderr
    lines = txt.stdout.splitlines()
    assert lines[0].startswith("[00:00:00] The budget") and lines[1].startswith("[00:00:05] Maria")

    as_json = json.loads(run("transcribe", str(path), "--format", "json").stdout)
    assert set(as_json) >= {"text", "segments", "duration"}
    assert "budget" in as_json["text"] and as_json["duration"] > 8
    assert all({"start", "end", "text"} <= set(s) for s in as_json["segments"])

    subs = list(srt.parse(run("transcribe", str(path), "-f", "srt").stdout))
    assert len(subs) == len(as_json["segments"]) and "budget" in subs[0].content

    out = tmp_path / "talk.vtt"
    assert run("transcribe", str(path), "-f", "vtt", "-o", str(out)).returncode == 0
    captions = webvtt.read(str(out)).captions
    assert captions[1].start_in_seconds == int(as_json["segments"][1]["start"])
    assert len(server_env.requests()) == 1, "the later runs came from the cache"


def test_ask_streams_an_answer_and_keeps_the_conversation(server_env, short_talk):
    path, _ = short_talk
    one = run("ask", str(path), "Who will travel to Lisbon?")
    assert one.returncode == 0, one.stderr
    assert "Maria" in one.stdout and "[00:0" in one.stdout
    several = run("ask", str(path), stdin="Who will travel to Lisbon?\nWhen?\n")
    assert several.returncode == 0 and several.stdout.count("According to the recording") == 2
    last = server_env.requests("chat")[-1].info["messages"]
    assert [m["role"] for m in last][-3:] == ["user", "assistant", "user"]


def test_info_before_paying(server_env, long_talk):
    path, _ = long_talk
    out = run("info", str(path), "--chunk-seconds", "10")
    assert out.returncode == 0, out.stderr
    assert "Duration:   0:00:45" in out.stdout and "Estimated cost: $0.005" in out.stdout
    assert "Chunks:     5" in out.stdout and "cut in a pause" in out.stdout
    assert server_env.requests() == [], "info sends nothing"


def test_errors_are_one_clear_line(short_talk, tmp_path):
    path, _ = short_talk
    missing_key = run("transcribe", str(path), env_extra={"TRANSCRIBE_BACKEND": "openai"})
    assert missing_key.returncode == 1
    assert missing_key.stderr.strip() == ("error: No OpenAI API key: set the OPENAI_API_KEY environment "
                                          "variable (export OPENAI_API_KEY=sk-...) and try again.")
    bad = tmp_path / "slides.mp4"
    bad.write_text("not a video")
    for args in [("transcribe", str(bad)), ("info", str(tmp_path / "nope.mp3")),
                 ("ask", str(bad), "  ")]:
        r = run(*args, env_extra={"OPENAI_API_KEY": "x-test"})
        assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    r = run("transcribe", str(path), env_extra={"CHUNK_SECONDS": "ten"})
    assert r.returncode == 1 and "CHUNK_SECONDS must be a number" in r.stderr


def test_wrong_key_is_not_echoed(server_env, short_talk):
    path, _ = short_talk
    r = run("transcribe", str(path), env_extra={"OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz"})
    assert r.returncode == 1 and "refused the API key" in r.stderr
    assert "abcdefghijklmnop" not in r.stderr + r.stdout


def test_an_unexpected_error_is_one_line(short_talk, tmp_path):
    """Not an error we foresaw (CTranslate2 cannot read a damaged model): still one line, exit 1."""
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"\x07" * 4096)
    r = run("transcribe", str(short_talk[0]), env_extra={"LOCAL_WHISPER_MODEL": str(broken)})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "internal error" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_cut_transcript_says_so_and_does_not_exit_0(server_env, long_talk, tmp_path):
    """45 s of speech in an MP3 whose header says 10 s, with a 30 s limit: the transcript is cut at
    the limit, each command says so on stderr (one line) and exits 3, not 0."""
    import speech

    path = speech.lying_mp3(long_talk[0], tmp_path / "meeting.mp3", claimed=10)
    limit = {"MAX_DURATION_MINUTES": "0.5", "CHAT_MODEL": "none"}
    for args in [("transcribe", str(path)), ("ask", str(path), "Who travels?"), ("summary", str(path))]:
        r = run(*args, env_extra=limit)
        assert r.returncode == 3, (args, r.returncode, r.stderr)
        notes = [line for line in r.stderr.splitlines() if "past the 0.5 min limit" in line]
        assert len(notes) == 1 and notes[0].startswith("warning: meeting.mp3 goes on"), r.stderr
        assert r.stdout.strip(), "the output is there all the same"
    whole = run("transcribe", str(path))
    assert whole.returncode == 0 and "limit" not in whole.stderr, whole.stderr


def test_a_password_in_the_server_address_is_masked(short_talk):
    """The owner still learns where the server is and which setting names it; never its password."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = run("-v", "transcribe", str(short_talk[0]), env_extra={
        "OPENAI_API_KEY": "x-test", "OPENAI_BASE_URL": f"http://admin:hunter2@127.0.0.1:{port}/v1",
        "MAX_RETRIES": "1", "DIARIZATION": "off"})
    assert r.returncode == 1, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"could not connect to the server at ***@127.0.0.1:{port}" in error
    assert "OPENAI_BASE_URL" in error and "hunter2" not in r.stderr + r.stdout, r.stderr
