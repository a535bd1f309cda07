"""Silence and voice in 16 kHz mono PCM: pauses and silence by loudness (pydub), voice by Silero
(shipped with faster-whisper), on a grid of FRAME_SECONDS frames.

Silero hears no voice in singing, whispering or a voice under noise, so voice detection may say
where to cut or where speech starts, never what to leave out: only silence by loudness
(`SILENT_DBFS`) is left out.
"""

from __future__ import annotations

import threading

import warnings

import numpy as np

with warnings.catch_warnings():  # pydub warns at import when ffmpeg is not on PATH; it never runs ffmpeg here
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_silence

from .decode import SAMPLE_RATE, SAMPLE_WIDTH, pcm_samples

SILENCE_SEEK_MS = 10  # detect_silence step; 1 ms costs ~40 s an hour, 10 ms is as good for cuts
SILENT_DBFS = -50.0  # a chunk whose loudest sample stays under this has nothing to transcribe
VAD_MIN_SPEECH_MS = 250  # shorter blips are not speech
VAD_PAUSE_MS = 200  # a pause in the voice at least this long is a place to cut (a breath between phrases)
FRAME_SECONDS = 0.01  # the grid of loudness, voice and cut times
FRAME_BYTES = int(SAMPLE_RATE * FRAME_SECONDS) * SAMPLE_WIDTH
# The loudest sample of a silent stretch stays under this: `is_silent` (pydub's max_dBFS) per frame.
SILENT_PEAK = 2 ** (8 * SAMPLE_WIDTH - 1) * 10 ** (SILENT_DBFS / 20)


def segment(pcm: bytes) -> AudioSegment:
    return AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE, channels=1)


def find_pause(pcm: bytes, min_silence_ms: int) -> float | None:
    """Seconds into `pcm` of the middle of its longest pause (the latest on ties), or None."""
    audio = segment(pcm)
    if len(audio) < min_silence_ms:
        return None
    loudness = audio.dBFS
    # Relative threshold: 16 dB under the window's average, as pydub's docs suggest; a silent
    # window (-inf dBFS) is all pause.
    thresh = -50.0 if loudness == float("-inf") else loudness - 16
    pauses = detect_silence(audio, min_silence_len=min_silence_ms, silence_thresh=thresh,
                            seek_step=SILENCE_SEEK_MS)
    if not pauses:
        return None
    start, end = max(pauses, key=lambda p: (p[1] - p[0], p[0]))
    return (start + end) / 2000.0


def is_silent(pcm: bytes) -> bool:
    return segment(pcm).max_dBFS < SILENT_DBFS


def has_speech(pcm: bytes) -> bool:
    """Silero voice activity detection (shipped with faster-whisper) on 16 kHz mono PCM."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(pcm) < SAMPLE_WIDTH * SAMPLE_RATE // 10 or is_silent(pcm):
        return False
    audio = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.float32) / 32768.0
    return bool(get_speech_timestamps(audio, VadOptions(min_speech_duration_ms=VAD_MIN_SPEECH_MS)))


def frames(seconds: float) -> int:
    """Frames of FRAME_SECONDS in `seconds`, rounded."""
    return int(round(seconds / FRAME_SECONDS))


def loud_frames(pcm: bytes) -> np.ndarray:
    """Per 10 ms frame, whether it is not silent: its loudest sample reaches SILENT_DBFS, the
    `is_silent` rule (so a stretch of frames that are not loud is silent by `is_silent`)."""
    samples = pcm_samples(pcm).astype(np.int32)
    per = FRAME_BYTES // SAMPLE_WIDTH
    samples = np.pad(samples, (0, -len(samples) % per))
    return np.abs(samples.reshape(-1, per)).max(axis=1) >= SILENT_PEAK


def voice_spans(pcm: bytes, min_silence_ms: int = VAD_PAUSE_MS) -> list[tuple[float, float]]:
    """Where Silero (shipped with faster-whisper) hears a voice, in seconds into `pcm`, unpadded.

    Silero hears no voice in singing, music with words, whispering or a voice under noise: this
    may say where to cut or where speech starts, never what to leave out.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(pcm) < SAMPLE_WIDTH * SAMPLE_RATE // 10:
        return []
    audio = pcm_samples(pcm).astype("float32") / 32768.0
    options = VadOptions(min_speech_duration_ms=VAD_MIN_SPEECH_MS, min_silence_duration_ms=min_silence_ms,
                         speech_pad_ms=0)
    return [(t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE) for t in get_speech_timestamps(audio, options)]


def warm() -> None:
    """Load Silero in the background now, so that the first answer's start check does not wait
    for it (about half a second)."""

    def load() -> None:
        from faster_whisper.vad import get_vad_model

        get_vad_model()

    threading.Thread(target=load, name="voice-model", daemon=True).start()


def first_voice(pcm: bytes) -> float | None:
    """Seconds into `pcm` where Silero first hears a voice, or None."""
    spans = voice_spans(pcm)
    return spans[0][0] if spans else None
