"""The browser's copy of a recording (core/playback.py): kept when every browser plays it,
remuxed when only the container is wrong, compressed otherwise; refused like core/media refuses."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import speech

from core.audio import playback
from core.errors import AppError, Cancelled, UnsupportedMedia

FFMPEG = speech.ffmpeg()
FFPROBE = shutil.which("ffprobe")
HAS_X264 = "libx264" in subprocess.run([FFMPEG, "-hide_banner", "-encoders"], check=False, capture_output=True,
                                        text=True).stdout


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def ffprobe(path: Path) -> dict:
    if not FFPROBE:
        pytest.skip("ffprobe is not installed")
    run = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def streams(path: Path, kind: str) -> list[dict]:
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == kind]


def packets_md5(path: Path, spec: str) -> str:
    """MD5 of a stream's packets as stored: equal only if the stream was copied, not re-encoded."""
    return subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", spec, "-c", "copy",
                           "-f", "md5", "-"], capture_output=True, text=True, check=True).stdout.strip()


VIDEO = ("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i", "sine=f=300:sample_rate=16000",
         "-t", "2", "-pix_fmt", "yuv420p")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("playback-media")
    wav = speech.write(speech.speak_pcm("Playback for the browser."), d / "speech.wav", "-ac", "2", "-ar", "44100")
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-b:a", "64k", str(d / "speech.mp3"))
    ffmpeg("-i", str(wav), "-c:a", "wmav2", str(d / "speech.wma"))
    ffmpeg(*VIDEO, "-c:v", "libvpx", "-b:v", "50k", "-c:a", "libopus", str(d / "clip.webm"))
    ffmpeg(*VIDEO, "-c:v", "mpeg4", "-c:a", "libmp3lame", str(d / "clip.avi"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "2", "-c:v", "libvpx", str(d / "silent.webm"))
    if HAS_X264:
        ffmpeg(*VIDEO, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(d / "clip.mkv"))
    return {p.name: p for p in d.iterdir()}


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("name, suffix, mime", [("speech.wav", ".wav", "audio/wav"),
                                                ("speech.mp3", ".mp3", "audio/mpeg")])
def test_short_audio_is_kept_as_it_is_and_reused(media, tmp_path, name, suffix, mime):
    folder = tmp_path / "play"
    first = playback.prepare(media[name], folder)
    assert (first.kind, first.mime, first.converted, first.path.suffix) == ("audio", mime, False, suffix)
    assert first.path.parent == folder and filecmp.cmp(first.path, media[name], shallow=False)
    assert first.duration == pytest.approx(float(ffprobe(media[name])["format"]["duration"]), abs=0.1)
    before = first.path.stat()
    again = playback.prepare(media[name], folder)
    assert again == first
    after = again.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert files(folder) == [first.path.name]


def test_the_extension_is_not_trusted(media, tmp_path):
    """A WAV named .mp3 is served as the WAV it is."""
    liar = tmp_path / "really a wav.mp3"
    shutil.copyfile(media["speech.wav"], liar)
    got = playback.prepare(liar, tmp_path / "play")
    assert (got.path.suffix, got.mime, got.converted) == (".wav", "audio/wav", False)


def test_a_name_given_is_the_file_name(media, tmp_path):
    got = playback.prepare(media["speech.mp3"], tmp_path / "play", name="abc123")
    assert got.path == tmp_path / "play" / "abc123.mp3"
    with pytest.raises(ValueError):
        playback.prepare(media["speech.mp3"], tmp_path / "play", name="../escape")


def check_copy(got: playback.Playback, source: Path) -> None:
    assert (got.kind, got.mime, got.converted) == ("audio", playback.COPY_MIME, True)
    assert got.path.name.endswith(playback.COPY_SUFFIX)
    [audio] = streams(got.path, "audio")
    assert (audio["codec_name"], audio["channels"]) == ("mp3", 1)
    assert not streams(got.path, "video")
    duration = float(ffprobe(got.path)["format"]["duration"])
    assert duration == pytest.approx(float(ffprobe(source)["format"]["duration"]), abs=0.5)
    assert got.duration == pytest.approx(duration, abs=0.5)


def test_audio_over_the_size_limit_gets_a_compressed_mono_copy(media, tmp_path):
    folder = tmp_path / "play"
    got = playback.prepare(media["speech.wav"], folder, max_mb=0.01)
    check_copy(got, media["speech.wav"])
    assert got.path.stat().st_size < media["speech.wav"].stat().st_size / 10
    mtime = got.path.stat().st_mtime_ns
    assert playback.prepare(media["speech.wav"], folder, max_mb=0.01) == got
    assert got.path.stat().st_mtime_ns == mtime and files(folder) == [got.path.name]
    # The copy handed back (a page reloaded with its name) is its own playable copy.
    back = playback.prepare(got.path, folder)
    assert (back.path, back.kind, back.mime, back.converted) == (got.path, "audio", "audio/mpeg", True)
    assert files(folder) == [got.path.name]


def test_wma_is_converted(media, tmp_path):
    check_copy(playback.prepare(media["speech.wma"], tmp_path / "play"), media["speech.wma"])


def test_webm_video_is_kept(media, tmp_path):
    got = playback.prepare(media["clip.webm"], tmp_path / "play")
    assert (got.kind, got.mime, got.converted, got.path.suffix) == ("video", "video/webm", False, ".webm")
    assert filecmp.cmp(got.path, media["clip.webm"], shallow=False)


@pytest.mark.skipif(not HAS_X264, reason="this ffmpeg has no libx264")
def test_mkv_with_h264_and_aac_is_remuxed_to_mp4(media, tmp_path):
    started = time.perf_counter()
    got = playback.prepare(media["clip.mkv"], tmp_path / "play")
    assert time.perf_counter() - started < 3
    assert (got.kind, got.mime, got.converted, got.path.suffix) == ("video", "video/mp4", False, ".mp4")
    assert ffprobe(got.path)["format"]["format_name"].startswith("mov,mp4")
    [video] = streams(got.path, "video")
    [source_video] = streams(media["clip.mkv"], "video")
    assert (video["codec_name"], video["profile"]) == ("h264", source_video["profile"])
    assert packets_md5(got.path, "0:v:0") == packets_md5(media["clip.mkv"], "0:v:0")  # copied, not re-encoded
    assert [s["codec_name"] for s in streams(got.path, "audio")] == ["aac"]


def test_avi_with_mpeg4_part2_gives_its_audio_only(media, tmp_path):
    got = playback.prepare(media["clip.avi"], tmp_path / "play")
    assert got.kind == "audio" and got.mime.startswith("audio/")
    assert not streams(got.path, "video") and len(streams(got.path, "audio")) == 1
    assert got.duration == pytest.approx(2.0, abs=0.5)


def test_video_without_sound_is_refused(media, tmp_path):
    with pytest.raises(UnsupportedMedia, match="no audio"):
        playback.prepare(media["silent.webm"], tmp_path / "play")
    assert files(tmp_path / "play") == []


@pytest.mark.parametrize("name, text", [
    ("list.m3u", "#EXTM3U\n#EXTINF:2,x\n{target}\n"),
    ("list.mp3", "ffconcat version 1.0\nfile '{target}'\n"),
    ("notes.wav", "just some text, nothing to hear\n"),
])
def test_text_pretending_to_be_media_is_refused(media, tmp_path, name, text):
    fake = tmp_path / name
    fake.write_text(text.format(target=media["speech.mp3"]))
    with pytest.raises(UnsupportedMedia) as refused:
        playback.prepare(fake, tmp_path / "play")
    assert name in str(refused.value)
    assert files(tmp_path / "play") == []


def test_cancelled_before_start(media, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        playback.prepare(media["speech.wma"], tmp_path / "play", cancel=cancel)
    assert files(tmp_path / "play") == []


def test_cancel_stops_a_running_encoder_and_leaves_nothing(tmp_path):
    long = tmp_path / "long.wav"  # ten minutes: a few seconds of encoding
    ffmpeg("-f", "lavfi", "-i", "sine=f=200:sample_rate=16000:duration=600", str(long))
    folder = tmp_path / "play"
    cancel, outcome = threading.Event(), {}

    def run():
        try:
            outcome["got"] = playback.prepare(long, folder, max_mb=0.01, cancel=cancel)
        except AppError as e:
            outcome["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not any(n.startswith(".tmp-") for n in files(folder)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert files(folder), "the encoder never started"
    cancel.set()
    stopped = time.monotonic()
    worker.join(10)
    assert time.monotonic() - stopped < 1.0
    assert isinstance(outcome.get("error"), Cancelled)
    assert files(folder) == []


def test_two_at_once_make_one_whole_file(media, tmp_path):
    folder = tmp_path / "play"
    results, errors = [], []

    def run():
        try:
            results.append(playback.prepare(media["speech.wma"], folder))
        except AppError as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len({r.path for r in results}) == 1 and len(results) == 3
    assert files(folder) == [results[0].path.name]
    check_copy(results[0], media["speech.wma"])
