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
from .i18n import Text, visitor_forms
from .service.catalogue import (CHAT_SUCCESSOR, DURATION_SAFETY_SECONDS, MAX_UPLOAD_BYTES,
                                 model_duration_cap)

APP_NAME = "talk-to-your-audio"

BACKEND_CHOICES = ("auto", "openai", "local")
SUMMARY_CHOICES = ("auto", "off")  # SUMMARY: "off" spends nothing on a summary nobody asked for
SIGN_IN_CHOICES = ("off", "huggingface")  # SIGN_IN: Hugging Face accounts on a Space (APP_USERS: this server's own)
BUDGET_CHOICES = ("auto", "on", "off")  # BUDGET: auto is on when the app is open to others (budget.shared)


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
    "max_request_mb": "MAX_REQUEST_MB",
    "session_ttl_minutes": "SESSION_TTL_MINUTES",
    "max_session_mb": "MAX_SESSION_MB",
    "max_duration_minutes": "MAX_DURATION_MINUTES",
    "max_jobs": "MAX_CONCURRENT_JOBS",
    "url_timeout": "URL_TIMEOUT",
    "allow_private_urls": "ALLOW_PRIVATE_URLS",
    "budget": "BUDGET",
    "budget_minutes_hour": "BUDGET_MINUTES_PER_HOUR",
    "budget_minutes_day": "BUDGET_MINUTES_PER_DAY",
    "budget_questions_hour": "BUDGET_QUESTIONS_PER_HOUR",
    "budget_per_address": "BUDGET_PER_ADDRESS",
    "budget_total_minutes_day": "BUDGET_TOTAL_MINUTES_PER_DAY",
    "budget_total_questions_day": "BUDGET_TOTAL_QUESTIONS_PER_DAY",
    "jobs_per_visitor": "JOBS_PER_VISITOR",
    "trusted_proxies": "TRUSTED_PROXIES",
    "max_asks": "MAX_CONCURRENT_ASKS",
    "queue_size": "QUEUE_SIZE",
    "users_file": "APP_USERS",
    "sign_in": "SIGN_IN",
}


# A setting a visitor chose (the speakers to find), or the server's own, as a visitor is told it.
SERVER_SETTINGS = "This server's settings are not valid; try again later."
visitor_forms({
    "{var} must be auto, off, a number of speakers or a range like 2-4.":
        "The speakers to find must be auto, off, a number of speakers or a range like 2-4.",
    **{template: SERVER_SETTINGS for template in (
        "{var} cannot be negative.", "{var} must be at least {minimum}.", "{var} must be between {low} and {high}.",
        "{var} must be one of {choices}.", "{var} must be positive.", "{var} must be true or false, not {raw!r}.",
        "Choose one way to sign in: {var} or {other}.",
        "{var} must be a number, not {raw!r}.")},
})

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
    max_request_mb: float | None = None  # largest request body; None: a file as base64 (4/3 of MAX_FILE_MB) and 1 MB
    session_ttl_minutes: float = 60.0  # a session's files (and an API session) go when unused this long
    max_session_mb: float = 5120.0  # the work folder's cap (sessions' exports, links, tool uploads); oldest go first
    max_duration_minutes: float = 600.0  # longest recording accepted, checked before anything is paid
    max_jobs: int = 4  # transcriptions running at once in the app; more wait for a slot
    url_timeout: float = 600.0  # seconds a media URL may take to download
    allow_private_urls: bool = False  # let URLs reach loopback/private hosts (self-hosting, tests)
    # What each visitor may spend of the server's work (core/service/budget.py). "auto" is resolved
    # by the app: on when it listens beyond this machine or runs on a Space; the CLI has none.
    budget: str = "auto"
    budget_minutes_hour: float = 60.0  # audio a visitor may have transcribed in a clock hour
    budget_minutes_day: float = 180.0  # and in a UTC day
    budget_questions_hour: int = 30  # answers (and summaries not cached yet) a visitor may ask for in an hour
    budget_per_address: float = 3.0  # one address, however many sessions it opens: this many visitors' worth
    budget_total_minutes_day: float = 1440.0  # the server's key as a whole, a UTC day; 0: no total
    budget_total_questions_day: int = 2000  # likewise for questions; 0: no total
    jobs_per_visitor: int = 1  # transcriptions one visitor runs at once (with the budget on)
    trusted_proxies: int | None = None  # proxies in front that add to X-Forwarded-For; None: 1 on a Space, else 0
    max_asks: int = 8  # answers and summaries being written at once in the app; more wait in the queue
    queue_size: int = 100  # requests waiting in the app's queue at most; more are turned away
    users_file: Path | None = None  # name:password lines: sign-in through Gradio's login page (core/signin.py)
    sign_in: str = "off"  # "huggingface": a Sign-in button for Hugging Face accounts, on a Space
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
            (self.max_request_mb is None or self.max_request_mb > 0, positive("MAX_REQUEST_MB")),
            (self.session_ttl_minutes > 0, positive("SESSION_TTL_MINUTES")),
            (self.max_session_mb > 0, positive("MAX_SESSION_MB")),
            (self.cache_max_mb > 0, positive("CACHE_MAX_MB")),
            (self.max_duration_minutes > 0, positive("MAX_DURATION_MINUTES")),
            (self.max_jobs >= 1, at_least("MAX_CONCURRENT_JOBS", 1)),
            (self.url_timeout > 0, positive("URL_TIMEOUT")),
            (self.budget in BUDGET_CHOICES,
             Text("{var} must be one of {choices}.", var="BUDGET", choices=", ".join(BUDGET_CHOICES))),
            (self.budget_minutes_hour > 0, positive("BUDGET_MINUTES_PER_HOUR")),
            (self.budget_minutes_day > 0, positive("BUDGET_MINUTES_PER_DAY")),
            (self.budget_questions_hour >= 1, at_least("BUDGET_QUESTIONS_PER_HOUR", 1)),
            (self.budget_per_address >= 1, at_least("BUDGET_PER_ADDRESS", 1)),
            (self.budget_total_minutes_day >= 0, Text("{var} cannot be negative.", var="BUDGET_TOTAL_MINUTES_PER_DAY")),
            (self.budget_total_questions_day >= 0,
             Text("{var} cannot be negative.", var="BUDGET_TOTAL_QUESTIONS_PER_DAY")),
            (self.jobs_per_visitor >= 1, at_least("JOBS_PER_VISITOR", 1)),
            (self.trusted_proxies is None or self.trusted_proxies >= 0,
             Text("{var} cannot be negative.", var="TRUSTED_PROXIES")),
            (self.max_asks >= 1, at_least("MAX_CONCURRENT_ASKS", 1)),
            (self.queue_size >= 1, at_least("QUEUE_SIZE", 1)),
            (self.sign_in in SIGN_IN_CHOICES,
             Text("{var} must be one of {choices}.", var="SIGN_IN", choices=", ".join(SIGN_IN_CHOICES))),
            (not (self.users_file and self.sign_in != "off"),
             Text("Choose one way to sign in: {var} or {other}.", var="APP_USERS", other="SIGN_IN")),
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
    def max_request_bytes(self) -> int:
        """The largest request body: by default, room for a file of MAX_FILE_MB sent as base64
        (4 characters for every 3 bytes) and 1 MB for the rest of the request."""
        if self.max_request_mb is not None:
            return int(self.max_request_mb * 2**20)
        return int(self.max_file_mb * 2**20 * 4 / 3) + 2**20

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
