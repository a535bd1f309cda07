"""Transcription backends behind one small Protocol: the OpenAI audio API (or any server that
speaks it), with Whisper's hallucination filter, and the local faster-whisper (`core/local.py`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Callable, Protocol

from . import media, service
from .config import Settings, model_has_timestamps
from .errors import AppError
from .local import LocalBackend
from .media import Chunk
from .transcript import Segment

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def cache_params(self) -> dict:
        """Everything about this backend that changes what a chunk transcribes to."""

    def prepare(self, chunk: Chunk) -> Chunk:
        """The chunk as the backend will send it (runs in the producer, before a worker gets it)."""

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        """Segments with times relative to the chunk, and the language if known. A backend that
        produces segments one by one also hands each to `on_segment` as it comes."""


class OpenAIBackend:
    """Whisper through the OpenAI audio API, or any server that speaks it."""

    name = "openai"

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None):
        self.settings = settings
        self.model = settings.transcribe_model
        self.timestamps = model_has_timestamps(self.model)
        # Retries are ours (per chunk, with Retry-After); the client must not retry on top.
        self.client = service.make_client(settings, max_retries=0)

    def cache_params(self) -> dict:
        s = self.settings
        return {"backend": self.name, "model": self.model, "language": s.language,
                "prompt": s.prompt, "server": s.base_url or "openai"}

    def prepare(self, chunk: Chunk) -> Chunk:
        """Encode the upload up front and drop the PCM: a chunk in flight holds only what it sends."""
        return replace(chunk, encoded=chunk.encode(), pcm=b"")

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        audio = chunk.encode()
        if len(audio) > self.settings.max_upload_bytes:  # cannot happen with lossless 16 kHz mono
            raise AppError(f"Internal error: a {len(audio)} byte chunk is over the upload limit.")
        args: dict = {
            "model": self.model,
            "file": (f"chunk-{chunk.index:04d}.{media.UPLOAD_FORMAT}", audio, f"audio/{media.UPLOAD_FORMAT}"),
            "response_format": "verbose_json" if self.timestamps else "json",
        }
        if self.timestamps:
            args["timestamp_granularities"] = ["segment"]
        if self.settings.language:
            args["language"] = self.settings.language
        if self.settings.prompt:
            args["prompt"] = self.settings.prompt
        try:
            segments, language = self._send(chunk, args)
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # a body that is not the API's
            raise service.BadResponse(type(e).__name__) from e
        return drop_hallucinations(segments, chunk), language

    def _send(self, chunk: Chunk, args: dict) -> tuple[list[Segment], str | None]:
        """One request, and its response read into segments relative to the chunk."""
        result = self.client.audio.transcriptions.create(**args)
        if not self.timestamps:
            text = result.text.strip()
            return ([Segment(0.0, chunk.duration, text)] if text else []), None
        segments = [Segment(float(s.start), float(s.end), s.text.strip()) for s in result.segments or []
                    if not _no_speech(s)]
        if not segments and result.text.strip() and not result.segments:  # text without segments
            segments = [Segment(0.0, chunk.duration, result.text.strip())]
        return segments, getattr(result, "language", None)


# Whisper's own rule (openai/whisper transcribe.py): a segment the model itself thinks is probably
# not speech, and is not confident about, is silence or noise.
NO_SPEECH_PROB = 0.6
LOGPROB_FLOOR = -1.0

# What Whisper writes over silence, noise or music (learned from subtitled videos).
HALLUCINATIONS = {
    "thank you", "thank you for watching", "thanks for watching", "thank you so much for watching",
    "thank you very much", "please subscribe", "like and subscribe", "subscribe to my channel",
    "subtitles by the amara org community", "subtitles by", "you", "bye", "so", "okay",
    "gracias", "gracias por ver", "gracias por ver el video", "suscríbete",
    "subtítulos realizados por la comunidad de amara org", "sous titres réalisés par la communauté d amara org",
    "untertitel der amara org community", "music", "applause",
}


def _no_speech(seg) -> bool:
    prob, logprob = getattr(seg, "no_speech_prob", None), getattr(seg, "avg_logprob", None)
    return prob is not None and logprob is not None and prob > NO_SPEECH_PROB and logprob < LOGPROB_FLOOR


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def drop_hallucinations(segments: list[Segment], chunk: Chunk) -> list[Segment]:
    """Drop the stock phrases Whisper invents over silence, when no voice is heard under them."""
    kept = []
    for seg in segments:
        if _plain(seg.text) in HALLUCINATIONS:
            a = media.pcm_bytes(max(0.0, seg.start))
            b = media.pcm_bytes(min(chunk.duration, max(seg.end, seg.start + 1.0)))
            if not media.has_speech(chunk.audio()[a:b]):
                log.info("dropped %r at %.1f s: no voice under it", seg.text, chunk.start + seg.start)
                continue
        kept.append(seg)
    return kept


BACKENDS: dict[str, Callable[..., Backend]] = {"openai": OpenAIBackend, "local": LocalBackend}


def get_backend(settings: Settings, notify: Callable[[str], None] | None = None) -> Backend:
    """The backend in force (TRANSCRIBE_BACKEND; `auto` is OpenAI with a key, else local)."""
    return BACKENDS[settings.transcribe_backend](settings, notify)
