"""Lean uploads (issue 14): every UPLOAD_FORMAT is taken by the service and heard, under a name it
accepts; lossy chunks are sized by duration while the byte limit still holds; the first chunks are
short, so the first text comes soon."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from conftest import TEST_KEY
from fakeopenai import FakeOpenAI, energy_recognizer

import speech
from core.audio import decode, encode
from core.transcribe.backends.openai_api import OpenAIBackend
from core.transcribe.cutting import FIRST_CHUNK_SECONDS
from core.transcribe.pipeline import transcribe_file
from core.transcribe.plan import plan


@pytest.mark.slow
def test_every_format_is_taken_by_the_service_and_heard(settings, server, short_talk):
    path, spoken = short_talk
    sizes = {}
    for name, fmt in encode.UPLOAD_FORMATS.items():
        server.clear()
        t = transcribe_file(path, settings.replace(upload_format=name))
        [req] = server.requests()
        assert req.status == 200 and req.info["filename"] == f"chunk-0000.{fmt.extension}", name
        assert all(s.key in t.text.lower() for s in spoken), (name, t.text)
        sizes[name] = req.info["bytes"]
    assert sizes["opus-24k"] < sizes["opus-32k"] < sizes["opus-48k"] < sizes["mp3-64k"] < sizes["flac"], sizes
    # The format is part of what a chunk transcribes to, except lossless: FLAC keeps the cache of before.
    assert "upload" not in OpenAIBackend(settings.replace(upload_format="flac")).cache_params()
    assert OpenAIBackend(settings.replace(upload_format="opus-24k")).cache_params()["upload"] == "opus-24k"


def test_the_service_refuses_ogg_opus_named_opus(server):
    """As the real service does: Ogg Opus is taken as `.ogg`, refused as `.opus`."""
    client = openai.OpenAI(api_key=TEST_KEY, base_url=server.base_url, max_retries=0)
    data = encode.encode_pcm(speech.speak_pcm("The budget was approved."), encode.UPLOAD_FORMATS["opus-24k"])
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        client.audio.transcriptions.create(model="whisper-1", file=("chunk.opus", data, "audio/ogg"))
    heard = client.audio.transcriptions.create(model="whisper-1", file=("chunk.ogg", data, "audio/ogg"))
    assert "budget" in heard.text.lower()


@pytest.mark.parametrize("name", list(encode.UPLOAD_FORMATS))
def test_no_audio_takes_more_bytes_than_its_format_allows(name):
    """Full-scale white noise, the hardest thing to compress, within the bound chunks are sized by."""
    fmt, seconds = encode.UPLOAD_FORMATS[name], 20
    noise = np.random.default_rng(14).integers(-32768, 32767, seconds * decode.SAMPLE_RATE, dtype=np.int16)
    assert len(encode.encode_pcm(noise.tobytes(), fmt)) <= fmt.max_bytes_per_second * seconds + 4096


def test_chunks_are_sized_by_duration_not_by_uncompressed_bytes(settings):
    lossless, opus = settings.replace(upload_format="flac"), settings.replace(upload_format="opus-24k")
    assert 750 < lossless.max_chunk_seconds < 786  # 24 MB of uncompressed 16 kHz mono, its worst case
    assert opus.max_chunk_seconds > 3600  # bytes decide nothing: CHUNK_SECONDS and the model's cap do
    assert opus.replace(chunk_seconds=3000).target_chunk_seconds == 3000
    capped = opus.replace(transcribe_model="gpt-4o-transcribe")
    assert capped.max_chunk_seconds == 1380  # its 1400 s cap, less 20
    assert lossless.replace(transcribe_model="gpt-4o-transcribe").max_chunk_seconds == lossless.max_chunk_seconds


@pytest.fixture
def quick():
    """A service that hears each stretch of sound at once: here only sizes and times are checked."""
    server = FakeOpenAI(api_key=TEST_KEY, recognizer=energy_recognizer, max_bytes=int(0.05 * 2**20))
    server.start()
    yield server
    server.stop()


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_a_lossy_format_keeps_to_the_byte_limit_too(settings, quick, long_talk):
    """With MAX_UPLOAD_MB at 0.05, even Opus chunks are cut short enough; the server refuses more."""
    path, spoken = long_talk
    s = settings.replace(base_url=quick.base_url, max_upload_mb=0.05, chunk_seconds=60, upload_format="opus-24k")
    assert 7 < s.max_chunk_seconds < 9
    t = transcribe_file(path, s)
    reqs = quick.requests()
    assert all(r.status == 200 and r.info["seconds"] <= s.max_chunk_seconds + 0.01 for r in reqs) and len(reqs) >= 5
    assert sum(r.info["seconds"] for r in reqs) >= t.duration - 0.1, "the requests carry the whole recording"
    assert len(t.segments) == len(spoken), "each sentence heard once"


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
def test_the_first_chunks_are_short_then_double_and_the_last_ones_short_again(settings, media_dir):
    """30, 60, 120, then CHUNK_SECONDS (180), and near the end each at most half of what is left,
    down to 30 again (the last answer is back soon after the decoding ends): a pause is found in
    the last part of each."""
    path = media_dir / "six minutes.mp3"
    sentence = speech.speak_pcm("We agreed to move the weekly meeting to Thursday.")
    speech.write((sentence + speech.silence(1.0)) * 90, path)  # 90 sentences of about 3.4 s and a pause
    p = plan(path, settings)
    chunks = p.chunks
    aims = [min(FIRST_CHUNK_SECONDS * 2**i, settings.chunk_seconds, max(FIRST_CHUNK_SECONDS, (p.duration - start) / 2))
            for i, (start, _, _) in enumerate(chunks)]
    lengths = [end - start for start, end, _ in chunks]
    assert lengths[0] <= FIRST_CHUNK_SECONDS and len(lengths) >= 6
    assert lengths[2] > 90 and lengths[-2] < 40, lengths  # up, then down
    for length, aim in zip(lengths[:-1], aims):
        assert aim - min(settings.silence_window, aim / 2) <= length <= aim, (lengths, aims)
    assert lengths[-1] <= aims[-1]

def test_uploads_are_encoded_by_encoder_processes_into_the_same_files():
    """Encoding runs in processes of its own (PyAV in a thread holds up the job's other threads),
    fed in blocks: the file is the one the encoder makes in one piece here (FLAC and MP3 byte for
    byte; Ogg Opus but for its random stream serial number, so it is compared decoded)."""
    import os

    pcm = speech.speak_pcm("The budget was approved on Tuesday morning.") + b"\x01"  # an odd byte is dropped
    for name in ("flac", "mp3-64k", "opus-24k"):
        fmt = encode.UPLOAD_FORMATS[name]
        sent, here = encode.encode_pcm(pcm, fmt), encode._encode_in_process(pcm, fmt)
        assert sent == here if name != "opus-24k" else decode.decode_bytes(sent) == decode.decode_bytes(here), name
    worker = encode._idle.get_nowait()
    encode._idle.put(worker)
    assert worker.proc.pid != os.getpid() and worker.proc.poll() is None


def test_an_encoder_process_that_dies_costs_no_upload():
    fmt, pcm = encode.LOSSLESS, speech.speak_pcm("Maria will travel to Lisbon.")
    encode.encode_pcm(pcm, fmt)
    dead = encode._idle.get_nowait()
    dead.proc.kill()
    dead.proc.wait()
    encode._idle.put(dead)
    assert encode.encode_pcm(pcm, fmt) == encode._encode_in_process(pcm, fmt)  # encoded here, this once
    assert encode.encode_pcm(pcm, fmt) == encode._encode_in_process(pcm, fmt)  # by a new worker
    worker = encode._idle.get_nowait()
    encode._idle.put(worker)
    assert worker is not dead and worker.proc.poll() is None
