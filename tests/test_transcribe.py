"""The transcription pipeline against the local OpenAI-compatible server, on real speech."""

from __future__ import annotations

import json
import re

import pytest

from core.audio import chunking
from core.cache import Cache
from core.errors import ServiceError, TranscriptionFailed, UnsupportedMedia
from core.transcribe.pipeline import transcribe_file
from core.transcribe.progress import Progress

import speech


def key_positions(transcript, spoken):
    """For each spoken sentence, the segments whose text holds its key word."""
    return {s.key: [seg for seg in transcript.segments if s.key in seg.text.lower()] for s in spoken}


def assert_complete_in_order(transcript, spoken, tolerance=1.0):
    found = key_positions(transcript, spoken)
    for s in spoken:
        assert len(found[s.key]) == 1, f"{s.key!r} should appear once: {found[s.key]}"
        seg = found[s.key][0]
        # The segment holding the key word overlaps the moment it was said.
        assert seg.start - tolerance <= s.end and seg.end + tolerance >= s.start, (s, seg)
    starts = [found[s.key][0].start for s in spoken]
    assert starts == sorted(starts)
    assert [seg.start for seg in transcript.segments] == sorted(seg.start for seg in transcript.segments)
    assert all(0 <= seg.start <= seg.end <= transcript.duration + 0.01 for seg in transcript.segments)


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_short_file_one_request(settings, server, short_talk):
    path, spoken = short_talk
    t = transcribe_file(path, settings)
    assert_complete_in_order(t, spoken, tolerance=0.6)
    assert abs(t.duration - (spoken[-1].end + 1.7)) < 0.1
    assert t.language == "english"
    [req] = server.requests()
    assert req.status == 200 and req.info["response_format"] == "verbose_json"
    assert req.info["filename"] == f"chunk-0000.{settings.upload.extension}"  # Ogg Opus as .ogg, never .opus


@pytest.mark.slow
def test_long_file_is_split_and_stitched_in_order(settings, server, long_talk):
    path, spoken = long_talk
    events: list[Progress] = []
    t = transcribe_file(path, settings.replace(chunk_seconds=10, silence_window=5, concurrency=3),
                        events.append)
    ok = server.requests(status=200)
    assert len(ok) >= 4, "a 45 s recording with 10 s chunks is sent in several parts"
    assert sum(r.info["seconds"] for r in ok) == pytest.approx(t.duration, abs=0.05), "no audio sent twice"
    assert_complete_in_order(t, spoken, tolerance=0.6)
    # Progress: chunk by chunk up to the whole duration, text arriving as chunks finish.
    working = [e for e in events if e.stage == "transcribing"]
    assert len(working) == len(ok)
    assert [e.chunks_done for e in working] == list(range(1, len(ok) + 1))
    assert events[-1].stage == "done" and events[-1].fraction == 1.0
    assert sum(len(e.segments) for e in working) == len(t.segments)


@pytest.mark.slow
def test_no_pause_means_hard_cuts_without_lost_or_doubled_words(settings, server, continuous_talk):
    path, spoken = continuous_talk
    s = settings.replace(chunk_seconds=10, silence_window=4, min_silence_ms=3000, overlap_seconds=4)
    chunks = list(chunking.iter_chunks(path, target_seconds=10, window_seconds=4, overlap_seconds=4,
                                       min_silence_ms=3000))
    assert len(chunks) >= 2 and all(c.keep_end < c.end for c in chunks[:-1]), "cuts are hard and overlap"
    t = transcribe_file(path, s)
    assert_complete_in_order(t, spoken, tolerance=1.0)


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
@pytest.mark.slow
def test_models_without_timestamps_get_utterance_times(settings, server, long_talk, model):
    """Text-only models get short utterance pieces, whatever CHUNK_SECONDS says: each piece's text
    is a segment with the piece's times (tests/test_utterances.py checks those times closely)."""
    path, spoken = long_talk
    t = transcribe_file(path, settings.replace(transcribe_model=model, chunk_seconds=15, silence_window=5))
    reqs = server.requests(status=200)
    assert {r.info["response_format"] for r in reqs} == {"json"}
    assert len(t.segments) == len(reqs) and all(r.info["seconds"] <= chunking.PIECE_MAX_SECONDS for r in reqs)
    text = t.text.lower()
    positions = [text.find(s.key) for s in spoken]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert all(text.count(s.key) == 1 for s in spoken)
    assert all(seg.end - seg.start <= chunking.PIECE_MAX_SECONDS for seg in t.segments)
    assert 0 <= t.segments[0].start <= spoken[0].start and spoken[-1].end - 0.5 <= t.segments[-1].end <= t.duration


@pytest.mark.slow
def test_chunks_respect_the_upload_limit(settings, server, long_talk):
    """With a 0.25 MB limit, every request must stay under it; the server refuses anything bigger.
    Lossless chunks are sized for the worst case, uncompressed PCM (tests/test_upload.py: lossy ones)."""
    path, spoken = long_talk
    server.max_bytes = 256 * 1024
    try:
        s = settings.replace(max_upload_mb=0.25, chunk_seconds=60, upload_format="flac")
        assert s.max_chunk_seconds < 8.2
        t = transcribe_file(path, s)
    finally:
        server.max_bytes = 25 * 1024 * 1024
    assert not server.requests(status=413)
    assert len(server.requests(status=200)) >= 6
    assert_complete_in_order(t, spoken, tolerance=1.0)


@pytest.mark.slow
def test_gpt4o_duration_cap_respected(settings, server, media_dir):
    """A 24-minute file goes to gpt-4o-transcribe in parts under its 1400 s cap."""
    path = media_dir / "long silence.ogg"
    pcm = speech.speak_pcm("We begin the long meeting now.") + speech.silence(1430)
    speech.write(pcm + speech.speak_pcm("The meeting is over, thank you all."), path)
    s = settings.replace(transcribe_model="gpt-4o-transcribe", chunk_seconds=5000)
    assert s.max_chunk_seconds <= 1400
    t = transcribe_file(path, s)
    reqs = server.requests()
    assert len(reqs) == 2 and all(r.status == 200 and r.info["seconds"] <= 1400 for r in reqs)
    assert "begin" in t.text.lower() and "over" in t.text.lower()


@pytest.mark.slow
def test_retry_after_is_honoured(settings, server, short_talk):
    path, spoken = short_talk
    server.add_fault(status=429, retry_after=1, times=1)
    server.add_fault(status=503, times=1)
    t = transcribe_file(path, settings)
    reqs = server.requests()
    assert [r.status for r in reqs] == [429, 503, 200]
    assert reqs[1].at - reqs[0].at >= 0.95, "waited as long as Retry-After said"
    assert_complete_in_order(t, spoken)


@pytest.mark.slow
def test_slow_reply_and_dropped_connection_are_retried(settings, server, short_talk):
    path, spoken = short_talk
    server.add_fault(delay=5.0, times=1)  # slower than the timeout below
    server.add_fault(drop=True, times=1)
    server.add_fault(malformed=True, times=1)
    # The timeout leaves room for real recognition on a busy 2-core machine (about 1 s for 9 s).
    t = transcribe_file(path, settings.replace(request_timeout=3.0))
    assert_complete_in_order(t, spoken)
    assert server.requests()[-1].status == 200


@pytest.mark.slow
def test_failed_chunk_names_its_range_and_rerun_sends_only_the_missing(settings, server, long_talk):
    path, spoken = long_talk
    s = settings.replace(chunk_seconds=10, silence_window=5, concurrency=1, max_retries=2)
    # The third chunk fails every time.
    server.add_fault(status=500, times=None, when=lambda info: info["filename"] == f"chunk-0002.{s.upload.extension}")
    with pytest.raises(TranscriptionFailed) as err:
        transcribe_file(path, s)
    message = str(err.value)
    assert "500" in message and "running again" in message
    assert re.search(r"0:00:(1\d|2\d)–0:00:(2\d|3\d)", message), message  # the failed part's time range
    failed = server.requests(status=500)
    assert len(failed) == 3, "first attempt plus two retries"
    done_before = len(server.requests(status=200))
    assert done_before == 2

    server.clear()
    events = []
    t = transcribe_file(path, s, events.append)
    assert_complete_in_order(t, spoken, tolerance=0.6)
    resent = server.requests(status=200)
    assert sum(1 for e in events if e.stage == "transcribing" and e.cached) == 2
    assert len(resent) == sum(1 for e in events if e.stage == "transcribing" and not e.cached)
    assert resent[0].info["seconds"] == pytest.approx(failed[0].info["seconds"], abs=0.01)


@pytest.mark.slow
def test_second_run_comes_from_the_cache(settings, server, short_talk):
    path, _ = short_talk
    first = transcribe_file(path, settings)
    server.clear()
    events = []
    second = transcribe_file(path, settings, events.append)
    assert server.requests() == []
    assert second.to_dict() == first.to_dict()
    assert events[-1].cached
    # Settings that change the result are part of the key.
    transcribe_file(path, settings.replace(language="en"))
    assert len(server.requests()) == 1


@pytest.mark.slow
def test_corrupt_cache_entries_are_ignored(settings, server, short_talk):
    path, spoken = short_talk
    transcribe_file(path, settings)
    entries = list((settings.cache_dir).rglob("*.json"))
    assert {p.parent.name for p in entries} == {"chunks", "transcripts", "voices"}  # voices: the speakers' prints
    for p in entries:  # a truncated write and a tampered entry (the prints: truncated, heard again)
        data = json.loads(p.read_text())
        if p.parent.name == "transcripts":
            data["payload"]["segments"][0]["text"] = "tampered"
            p.write_text(json.dumps(data))
        else:
            p.write_text(p.read_text()[:40])
    server.clear()
    t = transcribe_file(path, settings)
    assert len(server.requests()) == 1
    assert "tampered" not in t.text
    assert_complete_in_order(t, spoken)
    assert not list(settings.cache_dir.rglob(".tmp-*")), "no temporary files left behind"
    assert Cache(settings.cache_dir).get_transcript("0" * 64) is None


def test_wrong_key_fails_at_once_without_leaking_it(settings, server, short_talk):
    path, _ = short_talk
    with pytest.raises(ServiceError) as err:
        transcribe_file(path, settings.replace(api_key="sk-wrongwrongwrongwrongwrong1234"))
    assert "OPENAI_API_KEY" in str(err.value)
    assert "wrongwrong" not in str(err.value)
    assert len(server.requests()) == 1, "a 401 is not retried"


def test_no_quota_is_not_retried(settings, server, short_talk):
    path, _ = short_talk
    server.add_fault(status=429, code="insufficient_quota", times=None)
    with pytest.raises(ServiceError, match="credit"):
        transcribe_file(path, settings)
    assert len(server.requests()) == 1


def test_unknown_model(settings, server, short_talk):
    path, _ = short_talk
    with pytest.raises(ServiceError, match="does not know the model 'whisper-9'"):
        transcribe_file(path, settings.replace(transcribe_model="whisper-9"))


def test_connection_refused(settings, short_talk):
    path, _ = short_talk
    s = settings.replace(base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(TranscriptionFailed, match="could not connect"):
        transcribe_file(path, s)


@pytest.mark.slow
def test_video_container_and_other_formats(settings, server, short_talk, media_dir):
    path, spoken = short_talk
    video = media_dir / "talk video.mp4"
    import subprocess
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=blue:s=160x120:d=10", "-i", str(path), "-shortest", "-c:v", "libx264",
                    "-c:a", "aac", str(video)], check=True)
    t = transcribe_file(video, settings)
    assert_complete_in_order(t, spoken)


def test_bad_media_gets_a_clear_message(settings, server, tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    fake = tmp_path / "notes.mp3"
    fake.write_text("these are my meeting notes, not audio\n" * 50)
    for path, words in [(empty, "empty"), (fake, "not an audio"), (tmp_path / "missing.wav", "not found")]:
        with pytest.raises(UnsupportedMedia, match=words):
            transcribe_file(path, settings)
    assert server.requests() == []
