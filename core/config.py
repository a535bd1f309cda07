"""Settings, read once from the environment into a frozen dataclass.

Precedence: CLI flag > environment variable > default. Tests build `Settings(...)` directly.
The models are the exception to "a default is a default": a model the user never set is marked
`Default`, so that when the service shuts it down its successor can take over (`successor`),
while a model the user chose is never swapped behind their back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import platformdirs

from .errors import AppError
from .i18n import Text
from .service.catalogue import (CHAT_SUCCESSOR, DURATION_SAFETY_SECONDS, MAX_UPLOAD_BYTES,
                                 model_duration_cap)

APP_NAME = "talk-to-your-audio"

BACKEND_CHOICES = ("auto", "openai", "local")
SUMMARY_CHOICES = ("auto", "off")  # SUMMARY: "off" spends nothing on a summary nobody asked for


class Default(str):
    """A model name that is our default, not the user's choice. It is the plain string in every
    use (comparisons, requests, cache keys); only `Settings.chose` tells it apart. A value from the
    environment, a CLI flag, a constructor argument or `replace` is a plain `str`: chosen."""

    __slots__ = ()


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


# Environment variable for each setting; the README documents them in this order.
ENV = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "backend": "TRANSCRIBE_BACKEND",
    "transcribe_model": "TRANSCRIBE_MODEL",
    "local_model": "LOCAL_WHISPER_MODEL",
    "chat_model": "CHAT_MODEL",
    "chat_fallback_model": "CHAT_FALLBACK_MODEL",
    "chat_base_url": "CHAT_BASE_URL",
    "chat_api_key": "CHAT_API_KEY",
    "cache_dir": "CACHE_DIR",
    "cache_max_mb": "CACHE_MAX_MB",
    "database_url": "DATABASE_URL",
    "language": "TRANSCRIBE_LANGUAGE",
    "prompt": "TRANSCRIBE_PROMPT",
    "concurrency": "TRANSCRIBE_CONCURRENCY",
    "chunk_seconds": "CHUNK_SECONDS",
    "max_upload_mb": "MAX_UPLOAD_MB",
    "upload_format": "UPLOAD_FORMAT",
    "max_retries": "MAX_RETRIES",
    "request_timeout": "REQUEST_TIMEOUT",
    "context_tokens": "CONTEXT_TOKEN_BUDGET",
    "summary": "SUMMARY",
    "diarization": "DIARIZATION",
    "summary_concurrency": "SUMMARY_CONCURRENCY",
    "max_file_mb": "MAX_FILE_MB",
    "max_duration_minutes": "MAX_DURATION_MINUTES",
    "max_jobs": "MAX_CONCURRENT_JOBS",
    "url_timeout": "URL_TIMEOUT",
    "allow_private_urls": "ALLOW_PRIVATE_URLS",
}


def _speaker_count_ok(text: str) -> bool:
    from .speakers.cluster import Count

    try:
        Count.parse(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Settings:
    # The key is never printed: repr=False keeps it out of logs and tracebacks.
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    backend: str = "auto"  # "openai", "local" (faster-whisper), or "auto": openai when a key is set
    transcribe_model: str = Default("whisper-1")  # a retired default gives way to its successor
    local_model: str = "base"  # faster-whisper size name or model folder; multilingual, laptop-fast
    chat_model: str = Default("gpt-4o")  # "none": no language model, answers are the best passages
    chat_fallback_model: str = CHAT_SUCCESSOR  # takes over from a retired default chat model
    chat_base_url: str | None = None  # another server for answers (Ollama, llama.cpp, vLLM)
    chat_api_key: str | None = field(default=None, repr=False)
    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_max_mb: float = 1024.0  # the cache's size cap; the least recently used entries go first
    database_url: str | None = field(default=None, repr=False)  # postgresql://...: the library there, not in SQLite
    language: str | None = None  # ISO-639-1 code; None lets the model detect it
    prompt: str | None = None  # vocabulary hint: names, jargon, spelling
    concurrency: int = 32  # chunk requests in flight at once (OpenAI tier 1 allows 500 a minute)
    chunk_seconds: float = 180.0  # target chunk length: short chunks finish together, in parallel
    max_upload_mb: float = 24.0  # per request, under the service's 25 MB
    upload_format: str = "opus-24k"  # how chunks are sent (encode.UPLOAD_FORMATS): bench/upload_format.py chose it; "flac": lossless
    max_retries: int = 8  # per chunk, after the first attempt: with backoff, rides out ~3 min outages
    request_timeout: float = 300.0  # seconds per request
    context_tokens: int = 60_000  # transcript tokens sent with a question at most
    summary: str = "auto"  # "off": no summary by a language model (chapters by time and keywords only)
    diarization: str = "auto"  # speakers to find: "auto", "off", a count ("3") or a range ("2-4")
    summary_concurrency: int = 4  # requests in flight at once when a long transcript is read in parts
    max_file_mb: float = 2048.0  # largest input file accepted (uploads, URLs, CLI)
    max_duration_minutes: float = 600.0  # longest recording accepted, checked before anything is paid
    max_jobs: int = 4  # transcriptions running at once in the app; more wait for a slot
    url_timeout: float = 600.0  # seconds a media URL may take to download
    allow_private_urls: bool = False  # let URLs reach loopback/private hosts (self-hosting, tests)
    silence_window: float = 30.0  # seconds before a cut point searched for a pause
    min_silence_ms: int = 300  # a pause at least this long is a place to cut
    overlap_seconds: float = 5.0  # kept on both sides of a hard cut (no pause found)
    retry_base_delay: float = 1.0  # seconds, first backoff; doubles each attempt

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        types = {f.name: f.type for f in fields(cls)}
        values: dict = {}
        for name, var in ENV.items():
            raw = env.get(var, "").strip()
            if raw:
                values[name] = _parse(var, raw, types[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def replace(self, **changes) -> "Settings":
        """A copy with `changes`, None included: `replace(language=None)` means "detect it"."""
        return replace(self, **changes).validated()

    def validated(self) -> "Settings":
        def at_least(var: str, minimum: int) -> Text:
            return Text("{var} must be at least {minimum}.", var=var, minimum=minimum)

        def positive(var: str) -> Text:
            return Text("{var} must be positive.", var=var)

        checks = [
            (self.backend in BACKEND_CHOICES,
             Text("{var} must be one of {choices}.", var="TRANSCRIBE_BACKEND", choices=", ".join(BACKEND_CHOICES))),
            (self.concurrency >= 1, at_least("TRANSCRIBE_CONCURRENCY", 1)),
            (self.chunk_seconds >= 10, at_least("CHUNK_SECONDS", 10)),
            (0 < self.max_upload_mb <= 25,
             Text("{var} must be between {low} and {high}.", var="MAX_UPLOAD_MB", low=0, high=25)),
            (self.upload_format in _upload_formats(),
             Text("{var} must be one of {choices}.", var="UPLOAD_FORMAT", choices=", ".join(_upload_formats()))),
            (self.max_retries >= 0, Text("{var} cannot be negative.", var="MAX_RETRIES")),
            (self.request_timeout > 0, positive("REQUEST_TIMEOUT")),
            (self.context_tokens >= 500, at_least("CONTEXT_TOKEN_BUDGET", 500)),
            (self.summary in SUMMARY_CHOICES,
             Text("{var} must be one of {choices}.", var="SUMMARY", choices=", ".join(SUMMARY_CHOICES))),
            (_speaker_count_ok(self.diarization),
             Text("{var} must be auto, off, a number of speakers or a range like 2-4.", var="DIARIZATION")),
            (self.summary_concurrency >= 1, at_least("SUMMARY_CONCURRENCY", 1)),
            (self.max_file_mb > 0, positive("MAX_FILE_MB")),
            (self.cache_max_mb > 0, positive("CACHE_MAX_MB")),
            (self.max_duration_minutes > 0, positive("MAX_DURATION_MINUTES")),
            (self.max_jobs >= 1, at_least("MAX_CONCURRENT_JOBS", 1)),
            (self.url_timeout > 0, positive("URL_TIMEOUT")),
        ]
        for ok, message in checks:
            if not ok:
                raise AppError(message)
        return self

    def chose(self, name: str) -> bool:
        """Whether the user set this setting (environment, flag, argument) rather than leaving
        our default: only a default model may be replaced when the service retires it."""
        return not isinstance(getattr(self, name), Default)

    @property
    def transcribe_backend(self) -> str:
        """The backend in force: `auto` means OpenAI when there is a key, else the local Whisper."""
        if self.backend != "auto":
            return self.backend
        return "openai" if self.api_key else "local"

    @property
    def chat_enabled(self) -> bool:
        """Whether a language model can be reached; without one, answers are transcript passages."""
        return self.chat_model.lower() != "none" and bool(
            self.chat_api_key or self.api_key or self.chat_base_url or self.base_url)

    @property
    def max_upload_bytes(self) -> int:
        return min(int(self.max_upload_mb * 1024 * 1024), MAX_UPLOAD_BYTES)

    @property
    def upload(self):
        """The upload format in force (an `encode.UploadFormat`)."""
        from .audio.encode import UPLOAD_FORMATS

        return UPLOAD_FORMATS[self.upload_format]

    @property
    def max_chunk_seconds(self) -> float:
        """Longest audio one request may carry: the model's duration cap, and what fits in the
        byte limit at the upload format's most bytes a second (uncompressed 16 kHz mono for
        lossless FLAC: about 760 s in 24 MB; hours for Opus, so the duration caps decide)."""
        by_size = (self.max_upload_bytes - 4096) / self.upload.max_bytes_per_second
        cap = model_duration_cap(self.transcribe_model)
        return min(by_size, cap - DURATION_SAFETY_SECONDS) if cap else by_size

    @property
    def chunk_overlap_seconds(self) -> float:
        """Overlap at hard cuts; at most a fifth of a chunk when limits make chunks short."""
        return min(self.overlap_seconds, self.max_chunk_seconds / 5)

    @property
    def target_chunk_seconds(self) -> float:
        return min(self.chunk_seconds, self.max_chunk_seconds - self.chunk_overlap_seconds)


def _upload_formats() -> tuple[str, ...]:
    from .audio.encode import UPLOAD_FORMATS

    return tuple(UPLOAD_FORMATS)


def _parse(var: str, raw: str, kind) -> object:
    kind = str(kind)
    if "bool" in kind:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise AppError("{var} must be true or false, not {raw!r}.", var=var, raw=raw)
    try:
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError:
        raise AppError("{var} must be a number, not {raw!r}.", var=var, raw=raw) from None
    if "Path" in kind:
        return Path(raw).expanduser()
    return raw
