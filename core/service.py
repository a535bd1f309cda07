"""The OpenAI(-compatible) client, and service errors turned into messages a user can act on."""

from __future__ import annotations

from urllib.parse import urlsplit

import openai

from .config import Settings
from .errors import MissingApiKey, ServiceError

MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is not waited for


class BadResponse(Exception):
    """The server answered, but not with what the API returns (a proxy's error page, say)."""


NO_KEY = "not-needed"  # sent to self-hosted servers that take no key (Ollama, llama.cpp)


def _endpoint(settings: Settings, chat: bool) -> tuple[str | None, str | None]:
    """Server and key for transcription, or with `chat` for answers (CHAT_BASE_URL/CHAT_API_KEY first)."""
    if chat:
        return settings.chat_base_url or settings.base_url, settings.chat_api_key or settings.api_key
    return settings.base_url, settings.api_key


def make_client(settings: Settings, *, max_retries: int, chat: bool = False) -> openai.OpenAI:
    base_url, key = _endpoint(settings, chat)
    if not key and not base_url:
        raise MissingApiKey(
            "No OpenAI API key: set the OPENAI_API_KEY environment variable "
            "(export OPENAI_API_KEY=sk-...) and try again."
        )
    return openai.OpenAI(
        api_key=key or NO_KEY,
        base_url=base_url or None,
        timeout=settings.request_timeout,
        max_retries=max_retries,
    )


def service_name(settings: Settings, *, chat: bool = False) -> str:
    base_url, _ = _endpoint(settings, chat)
    if not base_url:
        return "the OpenAI API"
    return f"the server at {urlsplit(base_url).netloc or base_url}"


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


def _code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(err.get("code") or err.get("type") or "")


def explain(exc: Exception, settings: Settings, *, model: str, what: str, chat: bool = False) -> ServiceError:
    """A `ServiceError` for an exception of the openai client; `retryable` says if trying again may help."""
    where = service_name(settings, chat=chat)
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ServiceError(f"{what}: {where} did not answer within {settings.request_timeout:g} s "
                            "(REQUEST_TIMEOUT).", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ServiceError(f"{what}: could not connect to {where}. Check your network "
                            "connection and OPENAI_BASE_URL.", retryable=True)
    if isinstance(exc, openai.AuthenticationError):
        return ServiceError(f"{what}: {where} refused the API key (401). Check OPENAI_API_KEY.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ServiceError(f"{what}: the API key has no access to this ({exc.status_code}). "
                            "Check the key's project and permissions.")
    if isinstance(exc, openai.RateLimitError):
        if _code(exc) == "insufficient_quota":
            return ServiceError(f"{what}: the OpenAI account has no credit or quota left. "
                                "Add credit or raise the limit in the billing settings, then retry.")
        return ServiceError(f"{what}: {where} is rate limiting requests (429). Wait a minute, "
                            "or lower TRANSCRIBE_CONCURRENCY.", retryable=True, retry_after=retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = _code(exc)
        if status == 404 or code == "model_not_found":
            return ServiceError(f"{what}: {where} does not know the model '{model}'. Set "
                                "TRANSCRIBE_MODEL or CHAT_MODEL to a model it serves.")
        if status == 413:
            return ServiceError(f"{what}: {where} refused the upload as too large (413). "
                                "Lower MAX_UPLOAD_MB.")
        if status in (408, 409) or status >= 500:
            return ServiceError(f"{what}: {where} had an error ({status}). It is usually temporary: "
                                "try again in a minute.", retryable=True, retry_after=retry_after(exc))
        detail = _message(exc)
        return ServiceError(f"{what}: {where} refused the request ({status}){': ' + detail if detail else ''}.")
    if isinstance(exc, (BadResponse, ValueError, TypeError, AttributeError, KeyError)):
        return ServiceError(f"{what}: {where} sent a response that could not be read. "
                            "Check that OPENAI_BASE_URL points to an OpenAI-compatible server.",
                            retryable=True)
    return ServiceError(f"{what}: unexpected error ({type(exc).__name__}).")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body)
    message = err.get("message") if isinstance(err, dict) else None
    return str(message or "")[:300].rstrip(".")
