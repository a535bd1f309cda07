"""Hostile media: files that make ffmpeg read other files, headers that lie about the length, and
video-site pages that lead yt-dlp into the server's own network."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from core.audio import fetch
from core.audio import chunking, decode
from core.errors import UnsupportedMedia
from core.audio.fetch import UrlRefused
from core.transcribe.pipeline import transcribe_file

import speech
from mediaserver import MediaServer

SPLIT = {"target_seconds": 20, "window_seconds": 4, "overlap_seconds": 1, "min_silence_ms": 300}


def ffmpeg(*args: str) -> None:
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", *args], check=True)


# Playlists and other indirections

def reader_present(fifo: Path) -> bool:
    """Whether some process has `fifo` open for reading (or is blocked opening it)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:  # no reader
            return False
        raise
    os.close(fd)  # the reader gets end-of-file and carries on, so the call under test returns
    return True


@contextmanager
def watched_fifo(path: Path):
    """A FIFO standing in for a file nobody may read; yields a list that records any reader.

    Opening a FIFO for reading blocks until a writer comes, so a reader is caught while it waits:
    this proves the file was never opened, rather than opened and found useless.
    """
    os.mkfifo(path)
    readers: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if reader_present(path):
                readers.append(time.monotonic())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield readers
    finally:
        stop.set()
        watcher.join()
        if reader_present(path):
            readers.append(time.monotonic())


PLAYLISTS = {
    # HLS: ffmpeg opens each segment it names (absolute paths too) to read it as media.
    "hls": "#EXTM3U\n#EXT-X-TARGETDURATION:60\n#EXTINF:42,\n{planted}\n#EXT-X-ENDLIST\n",
    # ffconcat: ffmpeg opens every listed file ("safe" mode still allows names in the same folder).
    "ffconcat": "ffconcat version 1.0\nfile {name}\n",
}


# Every way an upload is read by ffmpeg: the header (before transcribing), decoding, measuring.
READERS = {
    "transcribe": lambda path, settings: transcribe_file(path, settings),
    "decode": lambda path, settings: list(chunking.iter_chunks(path, **SPLIT)),
    "measure": lambda path, settings: decode.measure_duration(path),
}


@pytest.mark.parametrize("kind", PLAYLISTS)
@pytest.mark.parametrize("read", READERS)
def test_playlists_are_refused_without_opening_what_they_name(kind, read, settings, server, tmp_path):
    planted = tmp_path / "planted.mp3"
    playlist = tmp_path / "x.mp3"  # an innocent name: ffmpeg goes by the content
    playlist.write_text(PLAYLISTS[kind].format(planted=planted, name=planted.name))
    refused = r"x\.mp3 is a playlist that points to other files; upload the media file itself\."
    with watched_fifo(planted) as readers, pytest.raises(UnsupportedMedia, match=refused):
        READERS[read](playlist, settings)
    assert readers == [], "the planted file was opened"
    assert server.requests() == []


def test_a_file_name_is_never_taken_for_a_url(tmp_path, short_talk, monkeypatch):
    """ffmpeg reads `concat:a|b` as a list of files to join; a file may well have that name."""
    monkeypatch.chdir(tmp_path)
    named = Path("concat:planted.mp3")
    shutil.copy(short_talk[0], named)
    with watched_fifo(tmp_path / "planted.mp3") as readers:
        info = decode.probe(named)
        chunks = list(chunking.iter_chunks(named, **SPLIT))
    assert readers == [], "the file the name points to was opened"
    assert info.container == "mp3" and abs(chunks[-1].end - info.duration) < 0.5


def test_other_formats_are_refused_with_what_they_are(tmp_path):
    picture = tmp_path / "cover.mp3"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:d=1", "-frames:v", "1", "-f", "image2", "-c:v", "png",
           str(picture))
    with pytest.raises(UnsupportedMedia, match=r"cover\.mp3 is not a recording this app reads \(ffmpeg sees "
                                               r"png_pipe data\); upload an audio or video file"):
        decode.probe(picture)


# Every kind of recording people upload still opens: audio only, and video with audio.
RECORDINGS = {
    "mp3": [], "wav": [], "ogg": ["-c:a", "libvorbis"], "opus": [], "flac": [], "m4a": [],
    "aac": [], "wma": [], "aiff": [], "ac3": [], "caf": [], "wv": [], "mka": [],
    "mp4": ["-c:v", "libx264", "-c:a", "aac"],  # the moov atom at the end, ffmpeg's default
    "mov": [], "webm": ["-c:v", "libvpx", "-c:a", "libopus"], "mkv": [], "avi": [], "flv": [], "mpg": [], "ts": [],
}
VIDEO = {"mp4", "mov", "webm", "mkv", "avi", "flv", "mpg", "ts"}


@pytest.mark.parametrize("ext", RECORDINGS)
def test_plain_recordings_still_open(ext, tmp_path):
    path = tmp_path / f"clip.{ext}"
    video = ["-f", "lavfi", "-i", "color=c=blue:s=64x64:d=2"] if ext in VIDEO else []
    ffmpeg(*video, "-f", "lavfi", "-i", "sine=f=440:d=2", "-shortest", *RECORDINGS[ext], str(path))
    info = decode.probe(path)
    chunks = list(chunking.iter_chunks(path, **SPLIT))
    assert info.has_audio and abs(info.duration - 2) < 0.1
    assert abs(chunks[-1].end - 2) < 0.1 and abs(decode.measure_duration(path) - 2) < 0.1


# Headers that lie about the length

def lying_mp3(path: Path, seconds: float, claimed: float) -> Path:
    """An MP3 of `seconds` whose Info header counts frames for `claimed` seconds only."""
    rate, samples_per_frame = 16_000, 576  # MPEG-2 Layer III
    ffmpeg("-f", "lavfi", "-i", f"sine=f=300:d={seconds}", "-ac", "1", "-ar", str(rate), "-b:a", "32k", str(path))
    data = bytearray(path.read_bytes())
    tag = data.find(b"Info")  # the Xing header of a constant-bitrate file: flags, frames, bytes, ...
    assert tag > 0 and data[tag + 7] & 1, "no frame count in the header"
    data[tag + 8:tag + 12] = struct.pack(">I", int(claimed * rate / samples_per_frame))
    path.write_bytes(data)
    return path


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_decoding_stops_at_the_limit_whatever_the_header_says(tmp_path):
    path = lying_mp3(tmp_path / "short, it says.mp3", seconds=300, claimed=30)
    assert decode.probe(path).duration < 31, "the header no longer lies: find another way"
    said: list[float] = []
    chunks = list(chunking.iter_chunks(path, **SPLIT, max_seconds=60, on_limit=said.append))
    assert said == [60.0]
    assert max(c.end for c in chunks) <= 60.0 and chunks[-1].keep_end == 60.0
    assert all(len(c.pcm) <= decode.pcm_bytes(max(c.duration, chunking.MIN_CHUNK_SECONDS)) for c in chunks)
    assert 60 < decode.measure_duration(path, max_seconds=60) < 62, "measured just past the limit, no further"


def test_a_recording_within_the_limit_is_not_cut(tmp_path):
    path = lying_mp3(tmp_path / "short, it says.mp3", seconds=90, claimed=30)
    said: list[float] = []
    chunks = list(chunking.iter_chunks(path, **SPLIT, max_seconds=90.5, on_limit=said.append))
    assert said == [] and abs(chunks[-1].keep_end - 90) < 0.2


# Video-site pages: every request yt-dlp makes is checked

@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """A public site (127.0.0.1, let through by `public_loopback`) and an internal one (127.0.0.2)."""
    root = tmp_path_factory.mktemp("sites")
    (root / "list.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:9,\nsegment.mp3\n#EXT-X-ENDLIST\n")
    public, internal = MediaServer(root), MediaServer(root, host="127.0.0.2")
    yield public, internal
    public.stop()
    internal.stop()


@pytest.fixture
def public_loopback(monkeypatch):
    """127.0.0.1 passes for a public address, as in test_every_redirect_is_checked; 127.0.0.2 does not."""
    real = fetch.check_address
    monkeypatch.setattr(fetch, "check_address",
                        lambda address, allow: None if address == "127.0.0.1" else real(address, allow))


@pytest.fixture
def any_page(monkeypatch):
    """yt-dlp's generic extractor on: it reads any page and follows where it leads."""
    monkeypatch.setitem(fetch.YTDLP_OPTIONS, "allowed_extractors", ["default"])


@pytest.fixture
def env_proxies(monkeypatch, sites):
    """Proxy settings that would send yt-dlp around the guard, if it heeded them."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, sites[1].url(""))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "*")


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
@pytest.mark.parametrize("lead", ["refresh", "redirect"])
def test_yt_dlp_cannot_reach_internal_addresses(lead, settings, sites, public_loopback, any_page, env_proxies,
                                                tmp_path):
    public, internal = sites
    public.hits.clear()
    internal.hits.clear()
    inside = internal.url("/page")
    with pytest.raises(UrlRefused, match="private or internal address"):
        if lead == "refresh":  # the page itself is fine; a <meta> refresh sends yt-dlp inside
            fetch.download(public.url("/page?refresh=" + quote(inside)), tmp_path, settings)
        else:  # a redirect that only yt-dlp sees (a site may answer it differently from us)
            fetch._page_audio(public.url("/redirect?to=" + quote(inside)), tmp_path, settings)
    assert public.hits, "yt-dlp did read the public page"
    assert internal.hits == [], "a request reached the internal host"
    assert list(tmp_path.iterdir()) == []


def test_the_guard_proxy_only_connects_to_checked_addresses(sites, public_loopback):
    """Spoken to with yt-dlp's own SOCKS client, as yt-dlp's request handlers do."""
    from yt_dlp.socks import ProxyType, Socks5Error, sockssocket

    public, internal = sites
    internal.hits.clear()

    def through(proxy: fetch._GuardedProxy, host: str, port: int) -> bytes:
        with sockssocket() as s:
            s.settimeout(10)
            s.setproxy(ProxyType.SOCKS5, "127.0.0.1", proxy.server.server_address[1], rdns=True)
            s.connect((host, port))
            s.sendall(b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while data := s.recv(65536):
                answer += data
            return answer

    with fetch._GuardedProxy(allow_private=False) as proxy:
        assert b"Episode 12" in through(proxy, *public.httpd.server_address[:2])
        for host, port in [internal.httpd.server_address[:2], ("169.254.169.254", 80), ("::1", 80)]:
            with pytest.raises(Socks5Error, match="not allowed"):
                through(proxy, host, port)
    assert len(proxy.refused) == 3 and internal.hits == []


def test_pages_that_only_stream_in_pieces_get_a_clear_message(settings, sites, public_loopback, any_page, tmp_path):
    """A playlist would be fetched by ffmpeg, unchecked: only plain files are downloaded."""
    public, _ = sites
    with pytest.raises(UrlRefused, match="streams this recording in pieces"):
        fetch.download(public.url("/page?video=" + quote(public.url("/files/list.m3u8"))), tmp_path, settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_pipeline_sends_nothing_past_the_limit_and_says_so(settings, server, long_talk, tmp_path):
    """45 s of speech in an MP3 whose header says 10 s, with a 30 s limit: the header passes the
    check, but nothing past 30 s is sent, the transcript says why it stops, and it is not cached
    (a higher limit later must not get the cut one)."""
    path = speech.lying_mp3(long_talk[0], tmp_path / "meeting.mp3", claimed=10)
    assert decode.probe(path).duration < 11
    s = settings.replace(max_duration_minutes=0.5)
    t = transcribe_file(path, s)
    assert sum(r.info["seconds"] for r in server.requests(status=200)) <= 30.01
    assert t.duration <= 30.0 and "budget" in t.text and "museum" not in t.text
    assert any("past the 0.5 min limit (MAX_DURATION_MINUTES)" in n for n in t.meta.notes), t.meta
    assert not list((s.cache_dir / "transcripts").glob("*.json")), "the cut transcript is not cached"


@pytest.mark.slow
def test_an_agent_is_told_the_transcript_was_cut(settings, server, long_talk, tmp_path):
    """The same lying MP3 sent to the MCP tool as a data URL: its result carries the note of the
    cut, in the agent's language, and says it was cut."""
    import asyncio
    import base64
    import json

    from core.job import Jobs
    from ui.api import Tools

    path = speech.lying_mp3(long_talk[0], tmp_path / "meeting.mp3", claimed=10)
    media = "data:audio/mpeg;base64," + base64.b64encode(path.read_bytes()).decode()
    tools = Tools(Jobs(settings.replace(max_duration_minutes=0.5)))
    result = json.loads(asyncio.run(tools.transcribe_recording(media)))
    assert result["cut_at_limit"] is True and result["duration_seconds"] <= 30.0
    [note] = result["notes"]  # the visitor's form: no setting named
    assert "past this server's 0.5 min limit" in note and "MAX_" not in note, note
    whole = json.loads(asyncio.run(Tools(Jobs(settings)).transcribe_recording(media)))
    assert whole["notes"] == [] and whole["cut_at_limit"] is False
