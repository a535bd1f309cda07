"""The server's secret (`core.seal`): values sealed for visitors' browsers open only on the server
that sealed them, for the purpose they were sealed for, unedited; served names and recordings'
public ids are keyed hashes nobody can compute from the file; the secret stays in the cache folder."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest

from core.cache import Cache, file_digest
from core.config import Settings
from core.job import Jobs
from core.seal import ServerKey, is_served_name
from core.transcribe.backends import get_backend
from core.transcribe.keys import transcript_key
from core.transcript import Segment, Transcript

VALUE = [{"id": "a" * 32, "chat": [{"role": "user", "content": "Who will travel to Lisbon?"}]}]


def test_a_sealed_value_opens_only_on_its_server_for_its_purpose_unedited(tmp_path):
    ours, theirs = ServerKey.kept(tmp_path / "ours"), ServerKey.kept(tmp_path / "theirs")
    token = ours.seal(VALUE, "recent")
    assert ours.unseal(token, "recent") == VALUE
    assert "Lisbon" not in token and b"Lisbon" not in base64.urlsafe_b64decode(token + "==")
    assert ours.seal(VALUE, "recent") != token, "a fresh nonce each time"
    middle = len(token) // 2
    edited = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    for forged in (edited, token[:-4], token + "AAAA", theirs.seal(VALUE, "recent"), "", "not base64!", None, 42,
                   VALUE, base64.urlsafe_b64encode(b"[]").decode()):
        assert ours.unseal(forged, "recent") is None, forged
    assert ours.unseal(token, "library") is None, "sealed for one use, it does not open for another"


def test_the_secret_is_private_survives_a_restart_and_the_old_public_one_goes(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / "browser-secret").write_text("the key earlier versions sent to every visitor")
    first = ServerKey.kept(root)
    assert not (root / "browser-secret").exists()
    secret = root / "server-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text()) >= 40
    again = ServerKey.kept(root)  # a restart
    assert again.unseal(first.seal(VALUE, "recent"), "recent") == VALUE
    assert again.public_id("k" * 64) == first.public_id("k" * 64)


def test_served_names_are_keyed_names_only():
    keyed = "0123456789abcdef" * 2
    for name in (f"{keyed}.mp3", f"{keyed}.mono48k.mp3", f"{keyed}.vtt", f"{keyed}.webm"):
        assert is_served_name(name), name
    sha = hashlib.sha256(b"x").hexdigest()
    for name in (f"{sha}.mp3", f"{sha}.vtt", keyed, f"{keyed}.", f".{keyed}.mp3", f"../{keyed}.mp3",
                 "server-secret", f"{keyed.upper()}.mp3", f"{keyed}.mp3/..", ""):
        assert not is_served_name(name), name


def _cached(root, recording) -> tuple[Jobs, str]:
    """A server over cache folder `root` whose cache holds a transcript of `recording`, and that
    transcript's cache key (computable offline from the file and the settings)."""
    settings = Settings(api_key="sk-test", cache_dir=root)
    key = transcript_key(file_digest(recording), get_backend(settings), settings)
    Cache(root).put_transcript(key, Transcript([Segment(0.0, 2.0, "To Lisbon.")], 2.0, "en", "whisper-1"))
    return Jobs(settings), key


def test_a_recordings_public_id_cannot_be_computed_from_the_file(tmp_path):
    recording = tmp_path / "talk.mp3"
    recording.write_bytes(b"\xff\xfb" + bytes(range(256)) * 40)
    ours, key = _cached(tmp_path / "ours", recording)
    theirs, same_key = _cached(tmp_path / "theirs", recording)
    assert key == same_key, "the cache key is the same everywhere: what makes it guessable"
    found = Cache(tmp_path / "ours").get_transcript(key)
    found.meta.id = key
    public = ours.public_id(found)
    assert len(public) == 32 and public not in (key, file_digest(recording)) and public not in key
    assert public != theirs.public_id(found), "another server, another secret, another id"
    assert ours.recording(public).text == "To Lisbon."
    for guess in (key, key[:32], file_digest(recording)[:32], theirs.public_id(found), "0" * 32, "", None):
        assert ours.recording(guess) is None, guess
    media_name = ours.key.name("media", file_digest(recording))
    assert media_name != file_digest(recording)[:32] and media_name != theirs.key.name("media", file_digest(recording))


def test_a_planted_alias_leads_nowhere(tmp_path):
    """The alias index is checked against the key: an entry this server did not make finds nothing."""
    recording = tmp_path / "talk.mp3"
    recording.write_bytes(b"\xff\xfb" + bytes(range(256)) * 40)
    jobs, key = _cached(tmp_path / "cache", recording)
    Cache(tmp_path / "cache").put_alias("1" * 32, key)
    assert jobs.recording("1" * 32) is None


@pytest.mark.parametrize("size", [0, 1, 300_000])
def test_any_json_value_round_trips(tmp_path, size):
    key = ServerKey.kept(tmp_path)
    value = {"text": "ñ" * size, "n": [1, 2.5, None, True]}
    assert key.unseal(key.seal(value, "x"), "x") == value
