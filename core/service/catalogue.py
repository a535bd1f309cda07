"""What the product knows about the service's models: limits per request, prices, announced
shutdowns and successors, and which request dialect each model speaks.

Plain data and pure functions: nothing here talks to a server (`models` asks the service itself).
"""

from __future__ import annotations

# Service limits (OpenAI audio API, checked 2026-11).
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # bytes per transcription request; more is refused with 413
GPT4O_TRANSCRIBE_MAX_SECONDS = 1400.0  # gpt-4o-*transcribe refuse longer audio per request
# gpt-transcribe documents no duration limit yet: its pieces stay within the gpt-4o limit it replaces.
GPT_TRANSCRIBE_MAX_SECONDS = GPT4O_TRANSCRIBE_MAX_SECONDS
DURATION_SAFETY_SECONDS = 20.0  # stay this far under a model's duration cap

# Price per audio minute in USD, for `info` estimates only (openai.com/api/pricing, 2026-11).
PRICE_PER_MINUTE = {
    "whisper-1": 0.006,
    "gpt-4o-transcribe": 0.006,
    "gpt-4o-mini-transcribe": 0.003,
    "gpt-transcribe": 0.0045,  # its model page, developers.openai.com (2026-11)
}


# Announced shutdown dates (openai SDK 3.57: the docstrings of `AudioModel` and `ChatModel`), for
# warnings before the service says so itself; the service's own `GET /v1/models/{id}` wins.
SHUTDOWN_DATES = {
    **dict.fromkeys(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                     "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize"], "2027-02-26"),
    **dict.fromkeys(["gpt-4o", "gpt-4o-2024-11-20", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                     "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14"], "2027-01-14"),
}
TRANSCRIBE_SUCCESSOR = "gpt-transcribe"  # what takes over every retiring transcription model, for files
# The chat model OpenAI recommends in place of gpt-4o and gpt-4o-mini; listed by the SDK's
# `ChatModel` with no shutdown date (checked in openai 3.57). CHAT_FALLBACK_MODEL changes it.
CHAT_SUCCESSOR = "gpt-6-luna"


def successor(model: str, chat_successor: str = CHAT_SUCCESSOR) -> str | None:
    """The model that takes over when `model` is shut down, or None if it is not retiring."""
    if model not in SHUTDOWN_DATES:
        return None
    return TRANSCRIBE_SUCCESSOR if "whisper" in model or "transcribe" in model else chat_successor


def model_takes_hints(model: str) -> bool:
    """gpt-transcribe (and its dated snapshots) take `keywords[]` and `languages[]` in place of
    `prompt` and `language`, and answer with the languages it heard."""
    return model == TRANSCRIBE_SUCCESSOR or model.startswith(TRANSCRIBE_SUCCESSOR + "-")


def model_duration_cap(model: str) -> float | None:
    """Seconds of audio one request may carry for this transcription model (None: no cap)."""
    if model.startswith("gpt-4o") and "transcribe" in model:
        return GPT4O_TRANSCRIBE_MAX_SECONDS
    if model_takes_hints(model):
        return GPT_TRANSCRIBE_MAX_SECONDS
    return None


def model_has_timestamps(model: str) -> bool:
    """Whether the model returns segment timestamps (`verbose_json`): whisper-1 and the Whisper
    servers that copy it do; the gpt-4o models and gpt-transcribe return text only."""
    return not (model.startswith("gpt-4o") and "transcribe" in model) and not model_takes_hints(model)
