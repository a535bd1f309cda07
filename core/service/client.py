"""The OpenAI(-compatible) client: which server and key, the service in words, and what its
answers' headers say about waiting (Retry-After) and the account's rate limit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import MissingApiKey, redact
from ..i18n import Text, visitor_forms
from .sdk import openai

MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is not waited for
NO_KEY = "not-needed"  # sent to self-hosted servers that take no key (Ollama, llama.cpp)


def endpoint(settings: Settings, chat: bool) -> tuple[str | None, str | None]:
    """Server and key for transcription, or with `chat` for answers (CHAT_BASE_URL/CHAT_API_KEY first)."""
    if chat:
        return settings.chat_base_url or settings.base_url, settings.chat_api_key or settings.api_key
    return settings.base_url, settings.api_key


def model_setting(chat: bool) -> str:
    """The setting that names the model: the chat model's, or the transcription model's."""
    return "chat_model" if chat else "transcribe_model"


NO_KEY_MESSAGE = ("No OpenAI API key: set the OPENAI_API_KEY environment variable (export OPENAI_API_KEY=sk-...) "
                  "and try again.")
visitor_forms({NO_KEY_MESSAGE: "This server has no OpenAI API key: paste yours in the key field to use it for your "
                               "requests."})


def check_key(settings: Settings, *, chat: bool = False) -> None:
    """Raise `MissingApiKey` when there is neither a key nor a server of one's own to send to."""
    base_url, key = endpoint(settings, chat)
    if not key and not base_url:
        raise MissingApiKey(NO_KEY_MESSAGE)


def make_client(settings: Settings, *, max_retries: int, chat: bool = False) -> openai.OpenAI:
    check_key(settings, chat=chat)
    base_url, key = endpoint(settings, chat)
    return openai.OpenAI(
        api_key=key or NO_KEY,
        base_url=base_url or None,
        timeout=settings.request_timeout,
        max_retries=max_retries,
    )


def service_name(settings: Settings, *, chat: bool = False) -> str:
    return str(service_text(settings, chat))


def server_address(base_url: str) -> str:
    """Where a server is, for its owner: "127.0.0.1:8000", with any user name and password in
    the URL masked ("***@127.0.0.1:8000"), so they reach no message and no log."""
    parts = urlsplit(base_url)
    host = parts.netloc.rpartition("@")[2] or redact(base_url)
    return f"***@{host}" if "@" in parts.netloc else host


def service_text(settings: Settings, chat: bool) -> Text:
    """`service_name`, to translate."""
    base_url, _ = endpoint(settings, chat)
    if not base_url:
        return Text("the OpenAI API")
    return Text("the server at {host}", host=server_address(base_url))


def service_text_first(settings: Settings, chat: bool) -> Text:
    """`service_name` to start a sentence with ("The server at …", "The OpenAI API")."""
    base_url, _ = endpoint(settings, chat)
    if not base_url:
        return Text("The OpenAI API")
    return Text("The server at {host}", host=server_address(base_url))


def by_whom(settings: Settings, chat: bool) -> Text:
    """Who shut a model down: "by OpenAI", or "on the server at …"."""
    base_url, _ = endpoint(settings, chat)
    host = (urlsplit(base_url).hostname or "") if base_url else "api.openai.com"
    if host.endswith("openai.com"):
        return Text("by OpenAI")
    return Text("on {where}", where=service_text(settings, chat))


def retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


@dataclass(frozen=True)
class Budget:
    """What the service says is left of the account's requests a minute, with every answer."""

    limit: int
    remaining: int
    reset: float  # seconds until the limit is back to its initial state


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def budget(headers) -> Budget | None:
    """The x-ratelimit-*-requests headers ("limit 500, remaining 499, reset 120ms"), if a server
    sends them (OpenAI does; most self-hosted servers do not)."""
    try:
        limit, remaining = int(headers["x-ratelimit-limit-requests"]), int(headers["x-ratelimit-remaining-requests"])
        reset = headers.get("x-ratelimit-reset-requests") or ""
    except (KeyError, TypeError, ValueError):
        return None
    parts = _DURATION.findall(reset)
    if not parts or "".join(n + u for n, u in parts) != reset.strip():
        seconds = 0.0  # not in the service's notation ("1m30.5s"): not trusted
    else:
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return Budget(limit, remaining, min(seconds, MAX_RETRY_AFTER))
