"""Segments with real times from models that answer with text only (gpt-transcribe, gpt-4o-*):
the recording is cut into utterance pieces at pauses, each sent on its own, and each piece's text
is a segment with the piece's times. The target, for every model: the segment holding a spoken
word starts at most 10 s before that word, and never after it. Voice detection chooses where to
cut, never what to leave out: only silence is not sent.

Also: segments a Whisper server without voice detection starts before the voice (at 0.0 after
music) are moved to the voice (`stitch.start_at_speech`).
"""

from __future__ import annotations

import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.audio import chunking, decode, voice
from core.transcribe import pipeline as transcribe
from core.transcribe.backends.openai_api import OpenAIBackend
from core.errors import Cancelled
from core.transcribe.pipeline import transcribe_file
from core.transcribe.progress import Progress
from core.transcript import Segment

import speech
from support import FRAME, LONGEST_REQUEST, Said, assert_cited_in_time, key_offset, loud_frames, spoken_as_said

TEXT_ONLY = ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"]
HUMAN = Path(__file__).resolve().parent.parent.parent / "shared" / "speech"  # real voices; reference transcripts in its README
# A key word of each human recording (as the test model writes it), and where it starts in the
# file: faster-whisper's word times, give or take HUMAN_ONSET_ERROR.
HUMAN_KEYS = {"ldc93s1.wav": ("greasy", 1.54), "arctic_a0024.wav": ("north", 1.58),
              "new-home-in-the-stars.wav": ("stars", 2.58), "ru.wav": (None, 0.0)}
HUMAN_ONSET_ERROR = 0.5  # s


def voices(pcm: bytes) -> list[dict]:
    """Where Silero, as shipped with faster-whisper, hears a voice."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    return get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=200, speech_pad_ms=0))


def lavfi(source: str, seconds: float) -> bytes:
    """16 kHz mono PCM from an ffmpeg source filter."""
    return subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", source,
                           "-t", f"{seconds:g}", "-ac", "1", "-ar", str(speech.RATE), "-f", "s16le", "pipe:1"],
                          check=True, capture_output=True).stdout


def hum(seconds: float) -> bytes:
    """A hummed tone: 220 Hz with a slow tremolo, loud (about -28 dBFS) and no voice to Silero."""
    return lavfi("sine=frequency=220:sample_rate=16000,tremolo=f=5:d=0.6,volume=0.3", seconds)


def noise(seconds: float) -> bytes:
    """Pink noise, like a crowd or a room with music far off: no voice to Silero."""
    return lavfi("anoisesrc=color=pink:amplitude=0.1:sample_rate=16000", seconds)


def build(out: Path, *parts) -> list[Said]:
    """A recording from parts: seconds of silence, (text, key) said by espeak, the path of a
    human recording (HUMAN_KEYS), or raw PCM bytes (not speech). Returns what is said where."""
    pcm, said = bytearray(), []
    for part in parts:
        at = len(pcm) / 2 / speech.RATE
        if isinstance(part, (int, float)):
            pcm += speech.silence(part)
        elif isinstance(part, bytes):
            pcm += part
        elif isinstance(part, Path):
            pcm += speech.to_pcm(part)
            key, onset = HUMAN_KEYS[part.name]
            end = len(pcm) / 2 / speech.RATE
            if key is None:  # said, but no word of it to look for
                said.append(Said(None, at, end, at, end))
            else:
                said.append(Said(key, at, end, at + onset - HUMAN_ONSET_ERROR, at + onset + HUMAN_ONSET_ERROR))
        else:
            text, key = part
            pcm += speech.speak_pcm(text)
            onset = at + key_offset(text, key)
            said.append(Said(key, at, len(pcm) / 2 / speech.RATE, onset, onset))
    speech.write(bytes(pcm), out)
    return said


class Recorded(OpenAIBackend):
    """The real backend, noting the span of the recording each request carries."""

    def __init__(self, settings):
        super().__init__(settings)
        self.sent: list[tuple[float, float]] = []

    def transcribe_chunk(self, chunk, on_segment=None):
        self.sent.append((chunk.start, chunk.end))
        return super().transcribe_chunk(chunk, on_segment)


def covered(spans: list[tuple[float, float]], start: float, end: float) -> bool:
    """Whether the spans together cover [start, end] (to the 10 ms grid)."""
    at = start
    for a, b in sorted(spans):
        if a > at + FRAME:
            break
        at = max(at, b)
    return at >= end - FRAME


@pytest.fixture(scope="module")
def silences_talk(media_dir):
    """Sentences apart by long silences, with silence before and after: about 95 s, 25 of speech."""
    path = media_dir / "silences.flac"
    return path, build(path, 8.0, speech.SENTENCES[0], 1.0, speech.SENTENCES[1], 20.0, speech.SENTENCES[2],
                       35.0, speech.SENTENCES[3], 0.6, speech.SENTENCES[4], 3.0, speech.SENTENCES[5], 12.0)


@pytest.fixture(scope="module")
def human_talk(media_dir):
    """Real voices (with their breathing and room noise) between espeak sentences, pauses of
    half a second to two, and a Russian clip the English-only test model cannot write down."""
    path = media_dir / "human.flac"
    return path, build(path, 3.0, speech.SENTENCES[0], 1.0, HUMAN / "ldc93s1.wav", 0.8, speech.SENTENCES[1], 0.5,
                       HUMAN / "arctic_a0024.wav", 1.5, HUMAN / "new-home-in-the-stars.wav", 0.6, HUMAN / "ru.wav",
                       1.0, speech.SENTENCES[2], 2.0)


@pytest.fixture(scope="module")
def unheard_talk(media_dir):
    """Speech, then a hummed tone and noise that are not silent but that Silero hears no voice in."""
    path = media_dir / "hum and noise.flac"
    parts = (1.0, speech.SENTENCES[6], 1.0, hum(14.0), 0.5, speech.SENTENCES[7], noise(11.0),
             speech.SENTENCES[8], 4.0)
    return path, build(path, *parts)


@pytest.mark.parametrize("model", TEXT_ONLY)
@pytest.mark.slow
def test_each_sentence_is_cited_when_it_is_said(settings, server, long_talk, model):
    path, spoken = long_talk
    t = transcribe_file(path, settings.replace(transcribe_model=model))
    assert_cited_in_time(t, spoken_as_said(spoken))
    reqs = server.requests(status=200)
    assert {r.info["response_format"] for r in reqs} == {"json"} and len(reqs) >= 4
    assert all(r.info["seconds"] <= LONGEST_REQUEST for r in reqs)


@pytest.mark.parametrize("model", TEXT_ONLY)
@pytest.mark.slow
def test_long_silences_are_not_sent(settings, server, silences_talk, model):
    path, said = silences_talk
    backend = Recorded(settings.replace(transcribe_model=model))
    t = transcribe_file(path, backend.settings, backend=backend)
    assert_cited_in_time(t, said)
    assert t.segments[0].start >= said[0].start - 1.0, "the silence before the first word is not cited"
    sent = sum(r.info["seconds"] for r in server.requests(status=200))
    speaking = sum(s.end - s.start for s in said)
    assert sent < speaking + 12.0 and sent < t.duration / 2, (sent, speaking, t.duration)
    long_silences = [(said[1].end + 0.5, said[2].start - 0.5), (said[2].end + 0.5, said[3].start - 0.5)]
    assert not [(a, b) for a, b in backend.sent for lo, hi in long_silences if a < hi and b > lo]


@pytest.mark.parametrize("model", TEXT_ONLY)
@pytest.mark.slow
def test_speech_without_pauses_is_cut_short_all_the_same(settings, server, continuous_talk, model):
    path, spoken = continuous_talk
    t = transcribe_file(path, settings.replace(transcribe_model=model))
    assert_cited_in_time(t, spoken_as_said(spoken))
    assert all(r.info["seconds"] <= LONGEST_REQUEST for r in server.requests(status=200))


@pytest.mark.slow
def test_with_no_pause_and_no_quiet_moment_pieces_are_cut_hard(settings, server, continuous_talk, monkeypatch):
    """No voice pause heard and no quiet moment of 3 s: hard cuts, with both pieces holding the
    moments around the cut; the stitching keeps each word once, still cited in time."""
    monkeypatch.setattr(voice, "voice_spans", lambda pcm, *a, **k: [], raising=False)
    path, spoken = continuous_talk
    backend = Recorded(settings.replace(transcribe_model="gpt-4o-transcribe", min_silence_ms=3000))
    t = transcribe_file(path, backend.settings, backend=backend)
    pieces = sorted(backend.sent)
    assert len(pieces) >= 2 and all(b - a <= LONGEST_REQUEST for a, b in pieces)
    assert all(later[0] < earlier[1] for earlier, later in zip(pieces, pieces[1:])), "pieces overlap"
    assert_cited_in_time(t, spoken_as_said(spoken))


@pytest.mark.slow
def test_real_voices_are_cited_when_they_speak(settings, server, human_talk):
    path, said = human_talk
    backend = Recorded(settings.replace(transcribe_model="gpt-4o-transcribe"))
    t = transcribe_file(path, backend.settings, backend=backend)
    assert_cited_in_time(t, said)
    russian = next(s for s in said if s.key is None)
    assert covered(backend.sent, russian.start, russian.end), "a voice the model cannot write is still sent"


@pytest.mark.slow
def test_what_voice_detection_does_not_hear_is_sent(settings, server, unheard_talk):
    """Silero hears no voice in a hummed tone or in noise (nor in singing or whispering), but
    they are not silence: they are sent, cut where they are quiet or hard, never left out."""
    path, said = unheard_talk
    pcm = speech.to_pcm(path)
    tone = (said[0].end + 1.0, said[1].start - 0.5)
    hiss = (said[1].end, said[2].start)
    for a, b in (tone, hiss):
        stretch = pcm[decode.pcm_bytes(a):decode.pcm_bytes(b)]
        assert voices(stretch) == [] and not voice.is_silent(stretch)
    backend = Recorded(settings.replace(transcribe_model="gpt-4o-mini-transcribe"))
    t = transcribe_file(path, backend.settings, backend=backend)
    assert covered(backend.sent, *tone) and covered(backend.sent, *hiss)
    assert len(server.requests(status=200)) == len(backend.sent)
    assert all(b - a <= LONGEST_REQUEST for a, b in backend.sent)
    assert_cited_in_time(t, said)


@pytest.mark.slow
def test_deaf_voice_detection_loses_nothing(settings, server, long_talk, monkeypatch):
    """Were Silero to hear no voice at all (a singer, a whisper), the pieces are cut in quiet
    moments and every word is still sent and cited in time."""
    monkeypatch.setattr(voice, "voice_spans", lambda pcm, *a, **k: [], raising=False)
    path, spoken = long_talk
    t = transcribe_file(path, settings.replace(transcribe_model="gpt-4o-transcribe"))
    assert_cited_in_time(t, spoken_as_said(spoken))
    sent = sum(r.info["seconds"] for r in server.requests(status=200))
    assert sent >= spoken[-1].end - spoken[0].start


@pytest.mark.slow
def test_only_silence_is_left_out_and_no_piece_is_too_long(media_dir):
    """Straight from the cutter: every moment that is not silent is in a piece, the pieces are
    never longer than PIECE_MAX_SECONDS, and what is left out is silent by `is_silent`."""
    path = media_dir / "mixed.flac"
    build(path, 2.5, speech.SENTENCES[0], 0.2, noise(3.0), speech.SENTENCES[1], 6.0, hum(23.0),
          speech.SENTENCES[2], 0.05, speech.SENTENCES[3], 2.1, HUMAN / "ru.wav", 0.7)
    pcm = speech.to_pcm(path)
    chunks = list(chunking.iter_utterances(path, min_silence_ms=300))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].keep_start == 0 and chunks[-1].keep_end == pytest.approx(len(pcm) / 2 / speech.RATE)
    assert all(a.keep_end == pytest.approx(b.keep_start) for a, b in zip(chunks, chunks[1:])), "no moment skipped"
    pieces = [c for c in chunks if not c.gap]
    assert all(c.duration <= LONGEST_REQUEST + 1e-6 for c in pieces)
    assert all(c.pcm == pcm[decode.pcm_bytes(c.start):decode.pcm_bytes(c.end)] for c in pieces if c.duration >= 1)
    gaps = [c for c in chunks if c.gap]
    assert gaps and all(c.pcm == b"" and voice.is_silent(pcm[decode.pcm_bytes(c.start):decode.pcm_bytes(c.end)])
                        for c in gaps)
    loud = np.flatnonzero(loud_frames(pcm)) * FRAME
    starts = np.array([c.start for c in pieces])
    ends = np.array([c.end for c in pieces])
    inside = [(starts <= t + 1e-6) & (t + FRAME <= ends + 1e-6) for t in loud]
    assert all(x.any() for x in inside), "a moment that is not silent was left out"


def test_pieces_stop_at_the_limit(long_talk):
    said = []
    chunks = list(chunking.iter_utterances(long_talk[0], min_silence_ms=300, max_seconds=20.0, on_limit=said.append))
    assert said == [20.0] and chunks[-1].keep_end <= 20.0 and all(c.end <= 20.0 for c in chunks)


@pytest.mark.slow
def test_progress_counts_pieces_and_a_rerun_comes_from_the_cache(settings, server, silences_talk):
    path, _ = silences_talk
    s = settings.replace(transcribe_model="gpt-4o-mini-transcribe")
    events: list[Progress] = []
    first = transcribe_file(path, s, events.append)
    working = [e for e in events if e.stage == "transcribing"]
    assert [e.chunks_done for e in working] == list(range(1, len(working) + 1))
    assert events[-1].stage == "done" and events[-1].fraction == 1.0
    assert working[-1].seconds_done == pytest.approx(first.duration, abs=0.01)
    assert len(server.requests(status=200)) < len(working), "silences are parts that send nothing"
    server.clear()
    again = transcribe_file(path, s)
    assert server.requests() == [] and again.to_dict() == first.to_dict()


@pytest.mark.slow
def test_a_stop_sends_nothing_more_and_a_rerun_sends_only_what_is_missing(settings, server, long_talk):
    path, spoken = long_talk
    s = settings.replace(transcribe_model="gpt-4o-transcribe", concurrency=2)
    cancel, stopped = threading.Event(), []

    def stop_at_first_text(p: Progress) -> None:
        if p.segments and not cancel.is_set():
            stopped.append(time.monotonic())
            cancel.set()

    server.latency = lambda seconds: 0.5
    try:
        with pytest.raises(Cancelled, match="running again sends only what is missing"):
            transcribe_file(path, s, stop_at_first_text, cancel=cancel)
    finally:
        server.latency = None
    assert not [t for t in server.arrivals if t > stopped[0] + 0.5], "nothing was sent after the stop"
    done = [r.info["filename"] for r in server.requests(status=200)]
    server.clear()
    t = transcribe_file(path, s)
    again = [r.info["filename"] for r in server.requests(status=200)]
    assert done and again and not set(done) & set(again), "what finished before was cached, not sent again"
    assert_cited_in_time(t, spoken_as_said(spoken))


@pytest.mark.slow
def test_nothing_past_the_limit_is_sent_whatever_the_header_says(settings, server, long_talk, tmp_path):
    """45 s of speech in an MP3 whose header says 10 s, with a 30 s limit (as in test_hostile)."""
    path = tmp_path / "meeting.mp3"
    subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-i", str(long_talk[0]), "-ac", "1",
                    "-ar", "16000", "-b:a", "32k", str(path)], check=True)
    data = bytearray(path.read_bytes())
    tag = data.find(b"Info")
    data[tag + 8:tag + 12] = struct.pack(">I", int(10 * 16_000 / 576))
    path.write_bytes(data)
    t = transcribe_file(path, settings.replace(transcribe_model="gpt-4o-transcribe", max_duration_minutes=0.5))
    assert sum(r.info["seconds"] for r in server.requests(status=200)) <= 30.01
    assert t.duration <= 30.0 and "budget" in t.text.lower() and "museum" not in t.text.lower()
    assert any("past the 0.5 min limit" in n for n in t.meta.notes), t.meta


class Successor(OpenAIBackend):
    """whisper-1 until its first answer; then its text-only successor takes over, as when the
    service retires it during a job (gpt-4o-transcribe stands in for it on the test server)."""

    def transcribe_chunk(self, chunk, on_segment=None):
        result = super().transcribe_chunk(chunk, on_segment)
        self.model, self.timestamps = "gpt-4o-transcribe", False
        return result


class NoSegments(OpenAIBackend):
    """whisper-1 on a server that answers without segments: the backend makes one segment of the
    whole chunk, as it does for such an answer."""

    def _send(self, chunk, *args):
        segments, language = super()._send(chunk, *args)
        text = " ".join(seg.text for seg in segments)
        return ([Segment(0.0, chunk.duration, text)] if text else []), language


@pytest.mark.slow
def test_a_successor_without_times_taking_over_mid_job_gets_pieces(settings, server, long_talk):
    path, spoken = long_talk
    s = settings.replace(chunk_seconds=15, silence_window=5, concurrency=1)
    t = transcribe_file(path, s, backend=Successor(s))
    reqs = server.requests(status=200)
    assert reqs[0].info["response_format"] == "verbose_json" and reqs[0].info["seconds"] > LONGEST_REQUEST
    assert {r.info["response_format"] for r in reqs[1:]} == {"json"}
    assert all(r.info["seconds"] <= LONGEST_REQUEST for r in reqs[1:]), "the chunks cut before are cut again"
    assert_cited_in_time(t, spoken_as_said(spoken))


@pytest.mark.slow
def test_a_whisper_server_that_answers_without_segments_gets_pieces(settings, server, long_talk):
    path, spoken = long_talk
    s = settings.replace(chunk_seconds=15, silence_window=5, concurrency=1)
    t = transcribe_file(path, s, backend=NoSegments(s))
    long_requests = [r for r in server.requests(status=200) if r.info["seconds"] > LONGEST_REQUEST]
    assert len(long_requests) == 1, "only the first chunk is sent whole (and again in pieces)"
    assert_cited_in_time(t, spoken_as_said(spoken))


# Section 7: a Whisper server without voice detection starts segments before the voice.

class NoVoiceDetection(OpenAIBackend):
    """whisper-1 as a server without voice detection answers: the first segment starts at 0.0."""

    def _send(self, chunk, *args):
        segments, language = super()._send(chunk, *args)
        if segments:
            segments[0] = Segment(0.0, segments[0].end, segments[0].text)
        return segments, language


@pytest.fixture(scope="module")
def late_speech(media_dir):
    """Ten seconds of a hummed tone, then two sentences."""
    path = media_dir / "jingle then talk.flac"
    return path, build(path, hum(10.0), speech.SENTENCES[0], 0.8, speech.SENTENCES[1], 1.0)


def test_a_segment_reported_before_the_voice_starts_at_the_voice(late_speech):
    from core.transcribe.stitch import start_at_speech

    path, said = late_speech
    pcm = speech.to_pcm(path)
    calls = []

    def audio() -> bytes:
        calls.append(1)
        return pcm

    reported = [Segment(0.0, said[0].end, "The budget for the new library was approved on Tuesday morning."),
                Segment(said[1].start, said[1].end, "Maria will travel to Lisbon to meet the design team.")]
    fixed = start_at_speech(reported, audio)
    assert said[0].start - 0.5 <= fixed[0].start <= said[0].start + 0.2, fixed[0]
    assert fixed[1] == reported[1] and fixed[0].end == reported[0].end and len(calls) == 1


def test_starts_are_kept_where_no_voice_is_heard_or_nothing_is_early(late_speech):
    from core.transcribe.stitch import start_at_speech

    path, said = late_speech
    pcm = speech.to_pcm(path)
    tone_only = [Segment(0.0, 9.5, "la la la")]  # singing Silero does not hear: kept, whatever it is
    assert start_at_speech(tone_only, lambda: pcm) == tone_only
    calls = []
    in_time = [Segment(said[0].start, said[0].end, "The budget for the new library was approved on Tuesday morning."),
               Segment(said[1].start, said[1].end, "Maria will travel to Lisbon to meet the design team.")]
    assert start_at_speech(in_time, lambda: calls.append(1) or pcm) == in_time
    assert calls == [], "segments that cannot be early cost no decoding"


def test_the_start_check_decides_from_a_segments_first_seconds_as_from_all_of_it(monkeypatch):
    """Silero runs over a suspect segment's first PROBE_SECONDS first, and over all of it only when
    no voice starts in time there: the starts come out as they would from the whole segment."""
    from core.transcribe import stitch

    said = speech.speak_pcm("The budget for the new library was approved on Tuesday morning.")
    blip = speech.speak_pcm("Ah.")[:decode.pcm_bytes(0.2)]
    cases = {"voice at once": said, "voice at 0.9 s": speech.silence(0.9) + said,
             "voice at 1.1 s": speech.silence(1.1) + said, "voice after a hum": hum(3.0) + said,
             "a blip, then voice at 3 s": speech.silence(0.8) + blip + speech.silence(2.0) + said,
             "a hum only": hum(6.0)}
    analysed = []
    first_voice = voice.first_voice
    monkeypatch.setattr(voice, "first_voice", lambda pcm: analysed.append(len(pcm)) or first_voice(pcm))
    for name, pcm in cases.items():
        whole = first_voice(pcm)
        early = whole is not None and whole >= stitch.MIN_SHIFT_SECONDS
        analysed.clear()
        onset = stitch._onset(pcm)
        assert early == (onset is not None and onset >= stitch.MIN_SHIFT_SECONDS), name
        assert not early or onset == whole, name
        assert early or whole is None or analysed == [decode.pcm_bytes(stitch.PROBE_SECONDS)], name
    analysed.clear()
    segment = [Segment(0.0, len(said) / decode.BYTES_PER_SECOND, "The budget for the new library was approved.")]
    assert stitch.start_at_speech(segment, lambda: said) == segment
    assert analysed == [decode.pcm_bytes(stitch.PROBE_SECONDS)], "a voice at once: 1.6 s analysed, not 4"


@pytest.mark.slow
def test_whisper_servers_without_voice_detection_are_cited_at_the_voice(settings, server, late_speech):
    path, said = late_speech
    t = transcribe_file(path, settings, backend=NoVoiceDetection(settings))
    [req] = server.requests(status=200)
    assert req.info["response_format"] == "verbose_json"
    assert_cited_in_time(t, said)


def test_a_real_whisper_server_is_cited_at_the_voice(on_server, late_speech, monkeypatch):
    """faster-whisper-server (tests/test_compat.py) runs Whisper without voice detection: after
    the tone it starts the first segment at 0.0. The pipeline moves it to the voice."""
    path, said = late_speech
    assert_cited_in_time(transcribe_file(path, on_server), said)
    monkeypatch.setattr(transcribe, "start_at_speech", lambda segments, audio: segments)
    raw = transcribe_file(path, on_server.replace(cache_dir=on_server.cache_dir / "raw"))
    assert raw.segments[0].start == 0.0, "the server no longer starts early: this test shows nothing"
