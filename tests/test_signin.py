"""Sign-in, piece by piece: a signed-in name is an owner id apart from every other (and a
hostile name is no one's), the accounts file (APP_USERS) is read strictly without ever showing a
password, the login check, the settings that turn sign-in on, and the name read from a request:
Gradio's login, or the Hugging Face profile the LoginButton keeps in the session."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import pytest
from starlette.requests import Request

from core.config import Settings
from core.errors import AppError
from core.job import Jobs
from core.library import LOCAL
from core.library.owners import MAX_NAME, TOOLS, USER, Shelf, user_owner
from core.signin import checker, huggingface_ready, read_users
from core.transcript import Meta, Segment, Transcript
from ui.visitor import signed_in, user_of

ROOT = Path(__file__).parent.parent
SECRET = "s3cret-Pa55word-that-must-never-show"


@pytest.mark.parametrize("name, owner", [
    ("ana", "user:ana"), ("  ana  ", "user:ana"), ("Ana María", "user:Ana María"),
    ("local", "user:local"), ("tools", "user:tools"), ("visitor:" + "a" * 32, "user:visitor:" + "a" * 32),
    ("e\u0301", "user:\u00e9"),  # one name however its accents are encoded
    ("", None), ("   ", None), (None, None), (7, None), (["ana"], None), ("a\nb", None), ("a\x00b", None),
    ("x" * MAX_NAME, USER + "x" * MAX_NAME), ("x" * (MAX_NAME + 1), None)])
def test_a_signed_in_name_is_an_owner_apart_from_local_tools_and_visitors(name, owner):
    assert user_owner(name) == owner
    assert owner not in (LOCAL, TOOLS) and not (owner or "").startswith("visitor:")


def test_each_signed_in_user_sees_only_their_own_recordings(tmp_path):
    jobs = Jobs(Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off"))
    for n, (who, line) in enumerate([("ana", "The budget is over by twenty thousand."),
                                     ("bob", "The concert starts at seven.")]):
        key = hashlib.sha256(str(n).encode()).hexdigest()
        t = Transcript([Segment(0.0, 5.0, line)], 5.0, "en", meta=Meta(id=key))
        jobs.cache.put_transcript(key, t)
        Shelf(jobs, user_owner(who)).hold(t, f"{who}'s talk")
    ana, bob, other = (Shelf(jobs, user_owner(n)) for n in ("ana", "bob", "ana "))
    assert [e.recording.title for e in ana.entries()] == ["ana's talk"]
    assert [e.recording.title for e in other.entries()] == ["ana's talk"]  # the same name: the same library
    assert [f.hit.text for f in ana.search("concert")] == [] and len(bob.search("concert")) == 1
    [entry] = bob.entries()
    assert ana.recording(entry.id) is None and not ana.remove(entry.id) and bob.recording(entry.id)
    assert Shelf(jobs, LOCAL).entries() == [] and Shelf(jobs, TOOLS).entries() == []


def accounts(tmp_path, text: str):
    path = tmp_path / "users.txt"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_accounts_file_is_read_and_checked_in_constant_time(tmp_path):
    users = read_users(accounts(tmp_path, f"# people\n\nana:{SECRET}\n  bob : pass:with:colons \nÁlvaro:ñ\n"))
    assert users == {"ana": SECRET, "bob": " pass:with:colons ", "Álvaro": "ñ"}
    check = checker(users)
    assert check("ana", SECRET) and check("Álvaro", "ñ") and check("bob", " pass:with:colons ")
    for name, password in [("ana", SECRET[:-1]), ("ana", ""), ("bob", "pass:with:colons"), ("carol", SECRET),
                           ("", ""), ("ANA", SECRET), ("ana", None)]:
        assert not check(name, password)


@pytest.mark.parametrize("text, said", [
    (f"ana:{SECRET}\nbob{SECRET}\n", "line 2 of .* is not name:password"),
    (f"ana:{SECRET}\n:{SECRET}\n", "line 2 of .* is not name:password"),
    ("ana:\n", "line 1 of .* is not name:password"),
    (f"ana:{SECRET}\nana:{SECRET}x\n", "line 2 of .* names someone already named above"),
    ("x" * (MAX_NAME + 1) + f":{SECRET}\n", "name on line 1 of .* at most 128 printable characters"),
    ("\n# nobody\n", "names nobody")])
def test_a_malformed_accounts_file_is_named_by_its_line_never_its_content(tmp_path, text, said):
    with pytest.raises(AppError, match=said) as e:
        read_users(accounts(tmp_path, text))
    assert SECRET not in str(e.value) and SECRET not in e.value.localized("es")


def test_an_unreadable_accounts_file(tmp_path):
    with pytest.raises(AppError, match="cannot read .*FileNotFoundError"):
        read_users(tmp_path / "missing.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00ana:" + SECRET.encode())
    with pytest.raises(AppError, match="cannot read .*UnicodeDecodeError") as e:
        read_users(tmp_path / "binary.txt")
    assert SECRET not in str(e.value)


def test_the_settings_that_turn_sign_in_on(tmp_path):
    assert Settings.from_env({}).users_file is None and Settings.from_env({}).sign_in == "off"
    assert Settings.from_env({"APP_USERS": str(tmp_path / "u")}).users_file == tmp_path / "u"
    with pytest.raises(AppError, match="SIGN_IN must be one of off, huggingface"):
        Settings.from_env({"SIGN_IN": "github"})
    with pytest.raises(AppError, match="Choose one way to sign in: APP_USERS or SIGN_IN"):
        Settings.from_env({"SIGN_IN": "huggingface", "APP_USERS": str(tmp_path / "u")})


def test_hugging_face_sign_in_works_only_on_a_space_with_oauth_on():
    oauth = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret", "OAUTH_SCOPES": "openid profile",
             "OPENID_PROVIDER_URL": "https://huggingface.co"}
    space = {"SYSTEM": "spaces", "SPACE_ID": "someone/app"}
    for elsewhere in ({}, {"SPACE_ID": "someone/app"}, {"SYSTEM": "spaces"}):
        with pytest.raises(AppError, match="works on a Hugging Face Space; on this machine, use APP_USERS"):
            huggingface_ready({**elsewhere, **oauth})
    with pytest.raises(AppError, match="hf_oauth: true"):
        huggingface_ready({**space, **oauth, "OAUTH_CLIENT_SECRET": ""})
    huggingface_ready({**space, **oauth})


def request_with(session: dict | None = None, username: str | None = None) -> gr.Request:
    """A request as Gradio hands it to a handler, with the session Starlette's middleware read."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    if session is not None:
        scope["session"] = session
    return gr.Request(request=Request(scope), username=username)


def profile(name, expires_in: float = 3600) -> dict:
    return {"oauth_info": {"access_token": "hf_oauth_token", "expires_at": int(time.time() + expires_in),
                           "userinfo": {"preferred_username": name, "name": "Ana Full Name", "sub": "1"}}}


def test_the_owner_from_gradios_login_or_the_hugging_face_profile():
    assert user_of(request_with(username="ana")) == "user:ana"
    assert user_of(request_with(profile("ana-hf"))) == "user:ana-hf"
    assert signed_in(request_with(profile("ana-hf"), username="ana")) == "ana"  # Gradio's login first
    for anonymous in (None, request_with(), request_with({}), request_with(profile("ana-hf", -10)),
                      request_with({"oauth_info": {"userinfo": "ana"}}), request_with({"oauth_info": "x"}),
                      request_with(profile(None)), request_with(profile("x" * 500)), request_with(profile("a\x00"))):
        assert user_of(anonymous) is None
    queued = gr.Request(username=None, session_hash="abc")  # a request rebuilt by the queue, no Starlette request
    assert user_of(queued) is None


@pytest.mark.slow
@pytest.mark.parametrize("text", [f"ana{SECRET}\n", "\n"])
def test_the_app_refuses_to_start_on_a_malformed_accounts_file_in_one_line(tmp_path, text):
    users = accounts(tmp_path, text)
    run = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "APP_USERS": str(users),
                              "CACHE_DIR": str(tmp_path / "cache"), "GRADIO_ANALYTICS_ENABLED": "False"})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and run.stderr.strip().endswith(errors[0]), run.stderr
    assert "APP_USERS" in run.stderr and SECRET not in run.stdout + run.stderr


def test_a_browsers_recent_recordings_open_only_for_whoever_signed_in_when_they_were_kept(tmp_path):
    from ui.state import recent_entries, remember

    jobs = Jobs(Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off"))
    key = hashlib.sha256(b"recent").hexdigest()
    t = Transcript([Segment(0.0, 5.0, "The budget is over.")], 5.0, "en", meta=Meta(id=key))
    jobs.cache.put_transcript(key, t)
    ana, bob = user_owner("ana"), user_owner("bob")
    kept = remember(jobs, None, t, None, user=ana)
    assert [e.id for e in recent_entries(jobs, kept, ana)] == [jobs.public_id(t)]
    assert recent_entries(jobs, kept, bob) == [] and recent_entries(jobs, kept) == []  # nor anonymously
    anonymous = remember(jobs, None, t, None)
    assert recent_entries(jobs, anonymous) and recent_entries(jobs, anonymous, ana) == []
