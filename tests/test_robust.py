"""Hostile input, media URLs, service faults and secrets: each gets a clear message, nothing leaks."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from urllib.parse import quote

import httpcore
import pytest

from core.audio import fetch
from core.errors import AppError, NoSpeech, TooLarge, UnsupportedMedia
from core.audio.fetch import UrlRefused
from core.transcribe.pipeline import transcribe_file

import speech
from conftest import TEST_KEY
from mediaserver import MediaServer


@pytest.fixture(scope="module")
def media(tmp_path_factory, short_talk_module):
    root = tmp_path_factory.mktemp("served")
    shutil.copy(short_talk_module, root / "talk.mp3")
    server = MediaServer(root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def short_talk_module(tmp_path_factory):
    path = tmp_path_factory.mktemp("robust") / "talk.mp3"
    speech.recording(path, speech.SENTENCES[:2])
    return path


@pytest.fixture
def private_ok(settings):
    return settings.replace(allow_private_urls=True)


# Media URLs

@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_media_url_is_fetched_and_transcribed(private_ok, server, media, tmp_path):
    url = media.url("/redirect?" + "to=" + quote(media.url("/files/talk.mp3")) + "&hops=2")
    path = fetch.download(url, tmp_path, private_ok)
    assert path.name == "talk.mp3" and path.stat().st_size > 10_000
    assert "Lisbon" in transcribe_file(path, private_ok).text


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.mp3", "data:audio/mp3;base64,AAAA",
                                 "gopher://x/", "javascript:alert(1)", "/etc/passwd", "", "http://user:pw@example.com/a.mp3"])
def test_other_schemes_are_refused(url, settings, tmp_path):
    with pytest.raises(UrlRefused):
        fetch.download(url, tmp_path, settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.8", "192.168.1.1",
                                  "172.16.5.4", "100.64.0.1", "0.0.0.0", "[::ffff:127.0.0.1]", "[fe80::1]", "224.0.0.1"])
def test_internal_hosts_are_refused_without_connecting(host, settings, tmp_path, monkeypatch):
    """Checked on the resolved address, before any connection is opened."""
    def no_connect(*a, **k):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    with pytest.raises(UrlRefused, match="private or internal"):
        fetch.download(f"http://{host}/latest/meta-data", tmp_path, settings)


MALFORMED_LINKS = ["http://0177.0.0.1/", "http://[::1", "http://[::1]:99999/", "http://999.1.1.1/a.mp3",
                   "http://[v1.x]/", "http://host:abc/a.mp3", "http://xn--/", "http://a..b/a.mp3",
                   "http://" + "a" * 300 + ".com/a.mp3"]


@pytest.mark.parametrize("url", MALFORMED_LINKS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_malformed_links_get_a_sentence_not_a_traceback(url, allow_private, settings, tmp_path, caplog):
    """Links urllib or httpx cannot parse (an octal IPv4 address, an unclosed IPv6 bracket, a port
    past 65535, a host IDNA cannot encode) are refused in words, with ALLOW_PRIVATE_URLS too."""
    with caplog.at_level(logging.DEBUG), pytest.raises(UrlRefused) as err:
        fetch.download(url, tmp_path, settings.replace(allow_private_urls=allow_private))
    assert str(err.value) == fetch.MALFORMED
    assert err.value.localized("es") == "Ese enlace no es una dirección web válida; revísalo y pégalo de nuevo."
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    assert list(tmp_path.iterdir()) == []


PUBLIC = "8.8.8.8"  # what the patched resolver answers; no test ever connects to it


def resolving_to(monkeypatch, *answers: str) -> list[str]:
    """media.example.com resolves to each answer in turn (the last one from then on)."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kw):
        if host != "media.example.com":
            return real(host, port, *args, **kw)
        asked.append(host)
        address = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_dns_rebinding_cannot_swap_the_address(settings, media, tmp_path, monkeypatch):
    """The name answers a public address when checked and a loopback one when asked again: the
    connection goes to the address that was checked, and the name is never resolved again."""
    connected = []

    def connect_tcp(self, host, port, *args, **kw):
        connected.append(host)
        raise httpcore.ConnectError("unreachable in the test")  # no internet: stop here

    resolving_to(monkeypatch, PUBLIC, "127.0.0.1")
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    media.hits.clear()
    with pytest.raises(UrlRefused, match="could not be fetched"):
        fetch.download(f"http://media.example.com:{media.httpd.server_address[1]}/files/talk.mp3", tmp_path,
                       settings)
    assert connected == [PUBLIC], "only the checked address, never the name"
    assert media.hits == []


def test_the_connected_address_is_checked_too(settings, media, tmp_path, monkeypatch):
    """The name resolves to a public address, but the connection lands on loopback (a NAT or a
    transparent proxy in the way): the address actually reached is checked, and refused."""
    port = media.httpd.server_address[1]
    real = httpcore.SyncBackend.connect_tcp

    def lands_on_loopback(self, host, port_, *args, **kw):
        return real(self, "127.0.0.1", port, *args, **kw)

    resolving_to(monkeypatch, PUBLIC)
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", lands_on_loopback)
    media.hits.clear()
    with pytest.raises(UrlRefused, match="private or internal"):
        fetch.download(f"http://media.example.com:{port}/files/talk.mp3", tmp_path, settings)
    assert media.hits == [], "refused before a request was sent"


def test_every_redirect_is_checked(settings, media, tmp_path, monkeypatch):
    """The test server stands in for a public host; its redirect to an internal one is refused."""
    real = fetch.check_address
    monkeypatch.setattr(fetch, "check_address",
                        lambda address, allow: None if address == "127.0.0.1" else real(address, allow))
    for target in ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/admin", "file:///etc/passwd"]:
        with pytest.raises(UrlRefused):
            fetch.download(media.url("/redirect?to=" + quote(target)), tmp_path, settings)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_download_limits(private_ok, media, tmp_path):
    small = private_ok.replace(max_file_mb=0.01)
    with pytest.raises(UrlRefused, match="limit is 0.01 MB"):  # said by Content-Length, before the body
        fetch.download(media.url("/files/talk.mp3"), tmp_path, small)
    with pytest.raises(UrlRefused, match="over the 0.01 MB limit"):  # no Content-Length: counted
        fetch.download(media.url("/endless"), tmp_path, small)
    with pytest.raises(UrlRefused, match="longer than 1 s"):
        fetch.download(media.url("/slow"), tmp_path, private_ok.replace(url_timeout=1))
    with pytest.raises(UrlRefused, match="redirects too many times"):
        fetch.download(media.url("/redirect?to=/files/talk.mp3&hops=9"), tmp_path, private_ok)
    with pytest.raises(UrlRefused, match=r"error \(404\)"):
        fetch.download(media.url("/files/nothing.mp3"), tmp_path, private_ok)
    assert list(tmp_path.iterdir()) == [], "partial downloads are removed"


def test_web_page_that_is_no_video_site(private_ok, media, tmp_path):
    with pytest.raises(UrlRefused, match="web page, not a media file"):
        fetch.download(media.url("/page"), tmp_path, private_ok)


# Bad files

def ffmpeg(*args: str) -> None:
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_bad_files_get_clear_messages(settings, server, tmp_path, short_talk):
    path, _ = short_talk
    cases = []
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    cases.append((empty, UnsupportedMedia, "is empty"))
    text = tmp_path / "notes.wav"
    text.write_text("RIFF? no, just notes\n" * 40)
    cases.append((text, UnsupportedMedia, "not an audio or video file"))
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(path.read_bytes()[:600] + bytes(range(256)) * 40)
    cases.append((corrupt, UnsupportedMedia, "seems damaged"))
    video = tmp_path / "silent film.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:d=2", "-c:v", "libx264", str(video))
    cases.append((video, UnsupportedMedia, "no audio track"))
    zero = tmp_path / "microphone.wav"
    speech.write(b"", zero)
    cases.append((zero, UnsupportedMedia, "empty"))
    silence = tmp_path / "silence.mp3"
    speech.write(speech.silence(20), silence)
    cases.append((silence, NoSpeech, "No speech was found"))
    for bad, kind, words in cases:
        with pytest.raises(kind, match=words) as err:
            transcribe_file(bad, settings)
        print(bad.name, "->", err.value)
        assert "Traceback" not in str(err.value) and len(str(err.value)) < 300
    assert server.requests() == [], "nothing was sent for any of them"


def test_noise_gives_no_speech_not_hallucinations(settings, server, tmp_path):
    noise = tmp_path / "noise.mp3"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=d=12:c=pink:a=0.05", "-ac", "1", str(noise))
    server.hallucinate = True  # the service answers "Thank you for watching!" over noise
    try:
        with pytest.raises(NoSpeech):
            transcribe_file(noise, settings)
    finally:
        server.hallucinate = False
    assert len(server.requests()) == 1


@pytest.mark.slow
def test_truncated_file_is_transcribed_as_far_as_it_goes(settings, server, tmp_path, long_talk):
    path, spoken = long_talk
    cut = tmp_path / "cut short.mp3"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    t = transcribe_file(cut, settings)
    assert "budget" in t.text and "museum" not in t.text
    assert any("cut short" in n and "could be decoded" in n for n in t.meta.notes), t.meta


def test_limits_are_said_before_anything_is_paid(settings, server, long_talk):
    path, _ = long_talk
    with pytest.raises(TooLarge, match="MAX_FILE_MB"):
        transcribe_file(path, settings.replace(max_file_mb=0.01))
    with pytest.raises(TooLarge, match=r"0:00:45 long; the limit is 0.5 min \(MAX_DURATION_MINUTES\)"):
        transcribe_file(path, settings.replace(max_duration_minutes=0.5))
    assert server.requests() == []


@pytest.mark.parametrize("name", ["my talk (final) v2.mp3", "réunion d'équipe — 会议.mp3", "x" * 200 + ".mp3",
                                  "-rf --help.mp3", "a;b&c|d$e.mp3"])
@pytest.mark.slow
def test_unusual_file_names(name, settings, server, tmp_path, short_talk):
    path = tmp_path / name
    shutil.copy(short_talk[0], path)
    t = transcribe_file(path, settings)
    assert "Lisbon" in t.text and t.source == name


# Secrets

@pytest.mark.slow
def test_the_key_never_reaches_logs_caches_or_messages(settings, server, short_talk, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    server.add_fault(status=500, times=2)
    transcribe_file(short_talk[0], settings)
    with pytest.raises(AppError) as err:
        transcribe_file(short_talk[0], settings.replace(api_key="sk-live-0123456789abcdefghij", cache_dir=tmp_path / "c2"))
    texts = [caplog.text, str(err.value), repr(settings)]
    texts += [p.read_text(errors="replace") for p in settings.cache_dir.rglob("*") if p.is_file()]
    for text in texts:
        assert TEST_KEY not in text and "0123456789abcdefghij" not in text


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the server is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def visitor_words(error: Exception) -> list[str]:
    """What a web visitor is shown for `error`: the page's status line and the API's `gr.Error`."""
    from ui.status import failure

    return [failure(error, lang) for lang in ("en", "es")]


def test_a_password_in_the_server_address_reaches_nobody(settings, short_talk, caplog):
    """OPENAI_BASE_URL=http://admin:hunter2@127.0.0.1:PORT with the server down: the owner (the CLI's
    message) is told the host, masked, and the setting; a visitor neither; the log has no password."""
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    down = settings.replace(base_url=f"http://admin:hunter2@127.0.0.1:{port}/v1", max_retries=1,
                            retry_base_delay=0.01, cache_dir=settings.cache_dir / "down")
    with pytest.raises(AppError) as err:
        transcribe_file(short_talk[0], down)
    owner = str(err.value)
    assert f"the server at ***@127.0.0.1:{port}" in owner and "OPENAI_BASE_URL" in owner, owner
    for shown in visitor_words(err.value):
        assert "could not be reached" in shown or "no se pudo contactar" in shown, shown
        for internal in ("127.0.0.1", str(port), "hunter2", "admin", "OPENAI_", "***"):
            assert internal not in shown, (internal, shown)
    assert "hunter2" not in caplog.text and "admin:" not in caplog.text


def test_a_visitor_is_not_told_to_check_a_setting(settings, server, short_talk):
    """The server's key refused (401): the owner is told to check OPENAI_API_KEY, a visitor only
    what they can do; the same for an answer that cannot reach its server."""
    from core.answer import chat
    from core.transcript import Segment, Transcript

    with pytest.raises(AppError) as err:
        transcribe_file(short_talk[0], settings.replace(api_key="wrong-key"))
    assert "Check OPENAI_API_KEY" in str(err.value)
    for shown in visitor_words(err.value):
        assert "401" in shown and "OPENAI_" not in shown and str(server.httpd.server_address[1]) not in shown, shown
    t = Transcript([Segment(0, 4, "The budget is approved.")], 4.0, "en", "whisper-1", "talk.mp3")
    unreachable = settings.replace(chat_base_url=f"http://user:pw@127.0.0.1:{closed_port()}/v1", max_retries=0)
    with pytest.raises(AppError) as err:
        "".join(chat.ask(t, "What was approved?", [], unreachable).stream)
    assert "***@127.0.0.1" in str(err.value) and "user:pw" not in str(err.value)
    for shown in visitor_words(err.value):
        assert "127.0.0.1" not in shown and "_BASE_URL" not in shown, shown


# Messages that show a visitor what they gave themselves, or that are only pieces of a message whose
# visitor form leaves them out, or that are raised with a visitor sentence of their own (`visitor=`).
VISITORS_OWN = {"The host {host} could not be found."}  # the host of the visitor's own link
PIECES = {"set {var}={new} (the model that replaces it)", "set {var} to a model it serves"}  # of {fix}
OWN_VISITOR_SENTENCE = {  # core/transcribe/backends/local_model.py and local.py: raised with visitor=...
    "LOCAL_WHISPER_MODEL points to {folder}, which has no CTranslate2 model.bin.",
    "LOCAL_WHISPER_MODEL '{name}' is not a model size ({sizes}), a Hugging Face repo id or a folder.",
    "Could not prepare the embedded Whisper model in {folder} ({error}). Set CACHE_DIR to a writable folder.",
    "Could not prepare the embedded Whisper model in {folder} ({error}). Free some disk space or set CACHE_DIR to "
    "a writable folder.",
    "The local model {model} only understands English, but the language is set to '{language}'. Choose another "
    "LOCAL_WHISPER_MODEL or language.",
    "The recording is in {language} ({spans}), which the English-only model {model} cannot transcribe. Leave "
    "LOCAL_WHISPER_MODEL unset to use the multilingual base model that comes with this app."}


def test_no_message_a_visitor_can_be_shown_names_an_internal():
    """Issue 21, finding 5: every message the page, the API and the MCP tools can show (every
    template with its Spanish, core's and the page's, filled with a server address holding a
    password, a cache path, a setting) names, in the form a visitor is told, no setting (any
    of core.config.ENV), no host or port, no password, no path; the owner's form still does."""
    import importlib
    import pkgutil
    import string

    import core
    import ui.api  # noqa: F401 - the page's and the tools' own messages
    import ui.handlers  # noqa: F401
    import re

    from core.config import ENV, Settings
    from core.i18n import ES, VISITOR, Text, to_visitor
    from core.service.client import by_whom, service_text, service_text_first

    for module in pkgutil.walk_packages(core.__path__, prefix="core."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)  # each adds its messages' visitor forms
    s = Settings(api_key="sk-test-123456789", base_url="http://admin:hunter2@127.0.0.1:8443/v1")
    internal = {"where": service_text(s, True), "service": service_text_first(s, True), "by_whom": by_whom(s, True),
                "host": "127.0.0.1:8443", "folder": "/srv/cache/models", "path": "/srv/cache/x.wav",
                "var": "OPENAI_API_KEY", "setting": "CHAT_MODEL"}
    internals = re.compile("|".join([*map(re.escape, ENV.values()), r"127\.0\.0\.1", "8443", "hunter2", "/srv/cache",
                                     "sk-test"]))
    leaks, owners = [], 0
    for template in set(ES) - VISITORS_OWN - PIECES - OWN_VISITOR_SENTENCE:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        message = Text(template, **{f: internal.get(f, 1) for f in fields})
        leaks += [(lang, to_visitor(message, lang)) for lang in ("en", "es")
                  if internals.search(to_visitor(message, lang))]
        owners += bool(internals.search(str(message)))
    assert leaks == []
    assert owners >= 30 and len(VISITOR) >= 30, "the owner is still told the setting, the server"


def test_a_local_models_folder_is_named_not_its_path():
    """The status line and the JSON export name a local model's folder by its name (the server's
    paths are for the owner); a model's id stays as it is."""
    import json

    from core.exports import to_json
    from core.transcript import Segment, Transcript
    from ui.status import summary_line

    t = Transcript([Segment(0, 1, "Hi.")], 1.0, model="/srv/models/tiny-en")
    t.meta.backend = "local"
    assert "(tiny-en)" in summary_line(t, "en") and "/srv" not in summary_line(t, "en")
    assert json.loads(to_json(t))["model"] == "tiny-en"
    assert Transcript([], 0, model="Systran/faster-whisper-base").model_name == "Systran/faster-whisper-base"
