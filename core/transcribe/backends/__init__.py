"""Transcription backends behind one small Protocol (`base.Backend`): the OpenAI audio API (or
any server that speaks it) and the local faster-whisper, chosen by name."""

from __future__ import annotations

from typing import Callable

from ...config import Settings
from .base import Backend
from .local import LocalBackend
from .openai_api import OpenAIBackend

# Each takes (settings, notify, *, download): `notify` tells the user something on the way (a
# download, a successor model), `download=False` refuses to fetch a model not on disk yet.
BACKENDS: dict[str, Callable[..., Backend]] = {"openai": OpenAIBackend, "local": LocalBackend}


def get_backend(settings: Settings, notify: Callable[[str], None] | None = None, *,
                download: bool = True) -> Backend:
    """The backend in force (TRANSCRIBE_BACKEND; `auto` is OpenAI with a key, else local).
    Without `download`, a local model not on disk yet raises `AppError` instead of being fetched:
    for a cheap look in the cache."""
    return BACKENDS[settings.transcribe_backend](settings, notify, download=download)
