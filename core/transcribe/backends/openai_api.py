"""The OpenAI audio API backend (or any server that speaks it), with Whisper's hallucination
filter. It speaks each model's dialect (gpt-transcribe takes keywords and candidate languages,
whisper-1 a prompt and returns timestamps) and hands over to the successor of a default model the
service has shut down.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from typing import Callable

from ...audio import chunking, decode, voice
from ...service.client import Budget, budget, check_key, make_client
from ...service.errors import BadResponse
from ...service.retirement import model_in_force, take_over
from ...service import sdk
from ...service.sdk import openai
from ...config import Settings
from ...service.catalogue import model_has_timestamps, model_takes_hints
from ...errors import AppError
from ...audio.chunking import Chunk
from ...transcript import Segment
from .base import TimesLost

log = logging.getLogger(__name__)


# The vocabulary hint as gpt-transcribe's `keywords[]`. The service documents no limits yet:
# these keep a hint pasted from a document from becoming a refused or diluted request.
MAX_KEYWORDS = 100  # a glossary of names and terms, not a text
MAX_KEYWORD_CHARS = 100  # a name or a short phrase
_KEYWORD_SEPARATORS = re.compile(r"[,\n\r，、]+")  # commas (also the CJK ones) and line ends
_REFUSED_IN_KEYWORDS = re.compile(r"[<>]")  # the service refuses a keyword holding these


def keywords(hint: str | None) -> list[str]:
    """TRANSCRIBE_PROMPT ("Kubernetes, CNCF, Istio") as gpt-transcribe's `keywords[]`: split at
    commas and line ends, trimmed, without the characters the service refuses, each once."""
    found: list[str] = []
    seen: set[str] = set()
    for part in _KEYWORD_SEPARATORS.split(hint or ""):
        word = " ".join(_REFUSED_IN_KEYWORDS.sub("", part).split())
        if len(word) > MAX_KEYWORD_CHARS:  # cut at a space, not inside a word
            word = word[:MAX_KEYWORD_CHARS + 1].rsplit(" ", 1)[0][:MAX_KEYWORD_CHARS]
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            found.append(word)
    return found[:MAX_KEYWORDS]


class OpenAIBackend:
    """Whisper through the OpenAI audio API, or any server that speaks it.

    When the service says our default model is gone (404 model_not_found), its successor takes
    over for the rest of the process: the refused chunk is sent again at once, `notify` says so
    (once per process), and `model`, `timestamps` and `cache_params` change with it, from the
    worker thread that learned it. A model the user chose is never swapped: `explain` says what
    to set instead.
    """

    name = "openai"
    starts_at_voice = False  # the server's segments may start before the voice
    max_in_flight = None  # as many as TRANSCRIBE_CONCURRENCY and the service's rate limit allow

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None, *, download: bool = True):
        """`download` is for the local backend: the service's models need none."""
        self.settings = settings
        self.notify = notify or (lambda message: None)
        self._switching = threading.Lock()
        self._use(model_in_force(settings))
        check_key(settings)  # no key is said now, not at the first chunk
        sdk.start()  # imported beside the hashing and decoding, not before them: see `client`
        self._client = None
        self._making = threading.Lock()
        # Told what is left of the account's requests a minute, with each answer (InFlight.budget).
        self.on_budget: Callable[[Budget], None] | None = None

    @property
    def client(self):
        """The openai client, made at the first request: the openai package is imported beside the
        job's first work (`sdk.start`), and the decoder need not wait for it. Retries are ours (per
        chunk, with Retry-After); the client must not retry on top."""
        with self._making:
            if self._client is None:
                self._client = make_client(self.settings, max_retries=0)
            return self._client

    def ready(self) -> None:
        """Wait until requests can be made (the openai package imported, the client made). The job
        calls it once its first chunk is handed out: the first answer, the first text, comes sooner
        (0.3-0.5 s of 3 s, measured) for the same wall time within 0.2 s."""
        self.client  # noqa: B018 - made here, on first reading

    def warm(self) -> None:
        """Get ready to encode before the first chunk is cut (an encoder process starting)."""
        from ...audio import encode

        encode.warm()

    def _use(self, model: str) -> None:
        self.model = model
        self.timestamps = model_has_timestamps(model)  # False: text only, one segment per chunk

    def cache_params(self) -> dict:
        """With the model in force: what a successor transcribed is never taken for its predecessor's."""
        s = self.settings
        lossy = {} if s.upload.lossless else {"upload": s.upload_format}  # lossless keeps the keys of before
        return {"backend": self.name, "model": self.model, "language": s.language,
                "prompt": s.prompt, "server": s.base_url or "openai", **lossy}

    def prepare(self, chunk: Chunk) -> Chunk:
        """Encode the upload up front and drop the PCM: a chunk in flight holds only what it sends."""
        return replace(chunk, encoded=chunk.encode(self.settings.upload), pcm=b"")

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        audio = chunk.encode(self.settings.upload)
        if len(audio) > self.settings.max_upload_bytes:  # cannot happen: chunks are sized for the format
            raise AppError("Internal error: a {size} byte chunk is over the upload limit.", size=len(audio))
        model = self.model
        try:
            while True:  # ends: a second refusal (the successor's) raises in `_take_over`
                if not model_has_timestamps(model) and chunk.duration > chunking.PIECE_MAX_SECONDS + 0.01:
                    # A successor without times took over after this chunk was cut (another
                    # chunk's refusal, while this one waited for its turn): never sent whole.
                    raise TimesLost(model)
                try:
                    segments, language = self._send(chunk, audio, model)
                    break
                except openai.NotFoundError as e:
                    model = self._take_over(e, model)  # a successor without times: TimesLost above
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # a body that is not the API's
            raise BadResponse(type(e).__name__) from e
        return drop_hallucinations(segments, chunk), language

    def _take_over(self, exc: openai.NotFoundError, refused: str) -> str:
        """The model to send the chunk to now that `refused` was refused; re-raises `exc` when
        nothing takes over. Chunks in flight may all be refused: one switch, one announcement."""
        with self._switching:
            if self.model != refused:  # another chunk's refusal switched already
                return self.model
            taken = take_over(exc, self.settings, refused)
            if taken is None:
                raise exc
            model, announcement = taken
            self._use(model)
        if announcement:
            log.info("%s", announcement)
            self.notify(announcement)
        return model

    def _args(self, chunk: Chunk, audio: bytes, model: str) -> dict:
        """The request for `model`: gpt-transcribe takes the hint as keywords and the language as
        a candidate (it refuses timestamps); the others take prompt and language as they are."""
        s = self.settings
        args: dict = {
            "model": model,
            "file": (f"chunk-{chunk.index:04d}.{s.upload.extension}", audio, s.upload.mime),
        }
        if model_takes_hints(model):
            args["response_format"] = "json"
            if s.language:
                args["languages"] = [s.language]  # never with `language`, which it refuses alongside
            if words := keywords(s.prompt):
                args["keywords"] = words
            return args
        timestamps = model_has_timestamps(model)
        args["response_format"] = "verbose_json" if timestamps else "json"
        if timestamps:
            args["timestamp_granularities"] = ["segment"]
        if s.language:
            args["language"] = s.language
        if s.prompt:
            args["prompt"] = s.prompt
        return args

    def _send(self, chunk: Chunk, audio: bytes, model: str) -> tuple[list[Segment], str | None]:
        """One request, and its response read into segments relative to the chunk."""
        raw = self.client.audio.transcriptions.with_raw_response.create(**self._args(chunk, audio, model))
        seen = budget(raw.headers)
        if seen is not None and self.on_budget is not None:
            self.on_budget(seen)
        result = raw.parse()
        if not model_has_timestamps(model):
            text = result.text.strip()
            return ([Segment(0.0, chunk.duration, text)] if text else []), _heard(result)
        segments = [Segment(float(s.start), float(s.end), s.text.strip()) for s in result.segments or []
                    if not _no_speech(s)]
        if not segments and result.text.strip() and not result.segments:  # text without segments
            segments = [Segment(0.0, chunk.duration, result.text.strip())]
        return segments, getattr(result, "language", None)


def _heard(result) -> str | None:
    """The language gpt-transcribe heard: the first of its `languages` (none when it is unsure)."""
    heard = getattr(result, "languages", None)
    return (getattr(heard[0], "code", None) or None) if heard else None


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
            a = decode.pcm_bytes(max(0.0, seg.start))
            b = decode.pcm_bytes(min(chunk.duration, max(seg.end, seg.start + 1.0)))
            if not voice.has_speech(chunk.audio()[a:b]):
                log.info("dropped %r at %.1f s: no voice under it", seg.text, chunk.start + seg.start)
                continue
        kept.append(seg)
    return kept
