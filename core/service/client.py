"""The OpenAI(-compatible) client, and service errors turned into messages a user can act on.

It also remembers, for the process, what a server has said about models: which of our default
models it no longer serves (their successor takes over, announced once: `take_over`), and which
parameters a model refuses (sent no more: `refuse_param`). Errors are read whatever their shape:
OpenAI's `{"error": {...}}`, FastAPI's `{"detail": ...}` (faster-whisper-server), vLLM's flat one.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai

from ..config import ENV, Settings
from .catalogue import SHUTDOWN_DATES, successor
from ..errors import MissingApiKey, ServiceError
from ..i18n import Text

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
    return str(_where(settings, chat))


def _where(settings: Settings, chat: bool) -> Text:
    """`service_name`, to translate."""
    base_url, _ = _endpoint(settings, chat)
    if not base_url:
        return Text("the OpenAI API")
    return Text("the server at {host}", host=urlsplit(base_url).netloc or base_url)


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


MESSAGE_CHARS = 300  # of a server's own error message shown to the user; the rest is noise


def _find(body: object, keys: tuple[str, ...]) -> str:
    """The first value under one of `keys` in an error body, whatever its nesting: OpenAI's
    {"error": {"message"}}, FastAPI's {"detail": {"error": {"message"}}}, {"detail": "..."} and
    {"detail": [{"msg"}]}, vLLM's flat {"message", "code"}. A plain string is the message itself."""
    if isinstance(body, str):
        return "" if body.lstrip().startswith("<") else body.strip()  # an HTML error page says nothing
    if isinstance(body, list):
        return "; ".join(found for found in (_find(item, keys) for item in body[:3]) if found)
    if isinstance(body, dict):
        for key in keys:
            value = body.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
        for nested in ("error", "detail"):
            if isinstance(body.get(nested), (dict, list)) and (found := _find(body[nested], keys)):
                return found
    return ""


def _code(exc: openai.APIStatusError) -> str:
    return _find(exc.body, ("code", "type")) if isinstance(exc.body, (dict, list)) else ""


def _message(exc: openai.APIStatusError) -> str:
    """The server's own words, whatever the shape of its error body."""
    return _find(exc.body, ("message", "msg", "error", "detail"))[:MESSAGE_CHARS].rstrip(".")


def model_gone(exc: Exception) -> bool:
    """The service's answer for a model it does not serve, shut down or never offered: 404 model_not_found."""
    return isinstance(exc, openai.NotFoundError) and _code(exc) == "model_not_found"


# How the service words a shut-down model ("The model `whisper-1` has been deprecated").
_RETIRED_WORDS = re.compile(r"deprecat|shut ?down|retired|decommission", re.IGNORECASE)


def _retired(exc: openai.APIStatusError, model: str) -> bool:
    """A refused model that was shut down (the service says so, or its shutdown date is past),
    rather than one that never existed or that the key may not use."""
    date = SHUTDOWN_DATES.get(model)
    return bool(_RETIRED_WORDS.search(_message(exc))) or bool(
        date and datetime.date.today().isoformat() >= date)


def _by_whom(settings: Settings, chat: bool) -> Text:
    base_url, _ = _endpoint(settings, chat)
    host = (urlsplit(base_url).hostname or "") if base_url else "api.openai.com"
    return Text("by OpenAI") if host.endswith("openai.com") else Text("on {where}", where=_where(settings, chat))


def _service_name_first(settings: Settings, chat: bool) -> Text:
    """`service_name` to start a sentence with ("The server at …", "The OpenAI API")."""
    base_url, _ = _endpoint(settings, chat)
    if not base_url:
        return Text("The OpenAI API")
    return Text("The server at {host}", host=urlsplit(base_url).netloc or base_url)


def _setting(chat: bool) -> str:
    return "chat_model" if chat else "transcribe_model"


def retired_message(settings: Settings, model: str, *, chat: bool) -> Text:
    """One sentence for a model the user chose and the service shut down: what to set instead."""
    var = ENV[_setting(chat)]
    new = successor(model, settings.chat_fallback_model)
    fix = (Text("set {var}={new} (the model that replaces it)", var=var, new=new) if new
           else Text("set {var} to a model it serves", var=var))
    return Text("{model} has been shut down {by_whom}; {fix}.", model=model, by_whom=_by_whom(settings, chat),
                fix=fix)


# What the process knows about models: (server, model) pairs no longer served, and the
# parameters each model refuses. Shared by every job and conversation, so that nothing is sent
# twice to be refused twice; `forget_models` clears it (tests).
_gone: set[tuple[str, str]] = set()
_refused: dict[tuple[str, str], set[str]] = {}
_known_lock = threading.Lock()


def _server(settings: Settings, chat: bool) -> str:
    return _endpoint(settings, chat)[0] or "openai"


def forget_models() -> None:
    """Forget what servers said about models (for tests, whose server changes its mind)."""
    with _known_lock:
        _gone.clear()
        _refused.clear()


def model_in_force(settings: Settings, *, chat: bool = False) -> str:
    """The model to send: the configured one, or, when it is our default and its server no
    longer serves it, its successor (no failed request first)."""
    setting = _setting(chat)
    model = getattr(settings, setting)
    with _known_lock:
        gone = (_server(settings, chat), model) in _gone
    if not gone or settings.chose(setting):
        return model
    return successor(model, settings.chat_fallback_model) or model


def take_over(exc: Exception, settings: Settings, refused: str, *, chat: bool = False
              ) -> tuple[str, str | None] | None:
    """After the service refused the model `refused` (404 model_not_found): the successor to use
    instead, and the words announcing it (None once the process has announced it already).

    Only our own default gives way, and only to its known successor: None when the user chose
    the model or it has no successor (the caller raises, and `explain` says what to set). When
    the successor is refused too, a `ServiceError` naming both.
    """
    setting = _setting(chat)
    model = getattr(settings, setting)
    new = successor(model, settings.chat_fallback_model)
    if not model_gone(exc) or settings.chose(setting) or not new or new == model:
        return None
    if refused != model:  # the successor itself: nothing else takes over
        raise ServiceError("{service} serves neither {model} nor {new}, which replaces it; set {var} to a "
                           "model it serves.", service=_service_name_first(settings, chat), model=model,
                           new=new, var=ENV[setting])
    key = (_server(settings, chat), model)
    with _known_lock:
        first = key not in _gone
        _gone.add(key)
    if not first:
        return new, None
    why = (f"{model} has been shut down {_by_whom(settings, chat)}" if _retired(exc, model)
           else f"{_service_name_first(settings, chat)} does not offer {model}")
    doing = "answers" if chat else "transcribes"
    return new, f"{why}, so {new} {doing} instead (set {ENV[setting]} to choose another model)."


def refused_params(settings: Settings, model: str) -> frozenset[str]:
    """The chat parameters this model has refused in this process: they are not sent again."""
    with _known_lock:
        return frozenset(_refused.get((_server(settings, chat=True), model), ()))


def refuse_param(settings: Settings, model: str, param: str) -> None:
    with _known_lock:
        _refused.setdefault((_server(settings, chat=True), model), set()).add(param)


_UNSUPPORTED = re.compile(r"unsupported|not supported|does not support", re.IGNORECASE)


def unsupported_param(exc: Exception, sent: Iterable[str]) -> str | None:
    """Which of the parameters `sent` a 400 says the model does not take (newer models take only
    the default temperature): the error's `param`, or a name quoted in its message."""
    if not isinstance(exc, openai.BadRequestError):
        return None
    message = _message(exc)
    if not (_UNSUPPORTED.search(message) or _code(exc).startswith("unsupported")):
        return None
    named = [exc.param] if isinstance(exc.param, str) else []
    named += re.findall(r"['`\"](\w+)['`\"]", message)
    sent = set(sent)
    return next((name for name in named if name in sent), None)


def explain(exc: Exception, settings: Settings, *, model: str, what: str | Text, chat: bool = False
            ) -> ServiceError:
    """A `ServiceError` for an exception of the openai client; `retryable` says if trying again may help.

    `what` starts the message ("Answering"): a `Text`, so that it is translated with the rest."""
    where = _where(settings, chat)
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ServiceError("{what}: {where} did not answer within {timeout:g} s (REQUEST_TIMEOUT).",
                            what=what, where=where, timeout=settings.request_timeout, retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ServiceError("{what}: could not connect to {where}. Check your network connection and "
                            "OPENAI_BASE_URL.", what=what, where=where, retryable=True)
    if isinstance(exc, openai.AuthenticationError):
        return ServiceError("{what}: {where} refused the API key (401). Check OPENAI_API_KEY.",
                            what=what, where=where)
    if isinstance(exc, openai.PermissionDeniedError):
        return ServiceError("{what}: the API key has no access to this ({status}). Check the key's project "
                            "and permissions.", what=what, status=exc.status_code)
    if isinstance(exc, openai.RateLimitError):
        if _code(exc) == "insufficient_quota":
            return ServiceError("{what}: the OpenAI account has no credit or quota left. Add credit or raise "
                                "the limit in the billing settings, then retry.", what=what)
        return ServiceError("{what}: {where} is rate limiting requests (429). Wait a minute, or lower "
                            "TRANSCRIBE_CONCURRENCY.", what=what, where=where, retryable=True,
                            retry_after=retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = _code(exc)
        if code == "model_not_found" or status == 404 and "model" in _message(exc).lower():
            if _retired(exc, model):
                return ServiceError(retired_message(settings, model, chat=chat))
            return ServiceError("{what}: {where} does not know the model '{model}'. Set {var} to a model "
                                "it serves.", what=what, where=where, model=model, var=ENV[_setting(chat)])
        if status == 404:
            return ServiceError(_no_endpoint(what, where, chat))
        if status == 413:
            return ServiceError("{what}: {where} refused the upload as too large (413). Lower MAX_UPLOAD_MB.",
                                what=what, where=where)
        if status in (408, 409) or status >= 500:
            return ServiceError("{what}: {where} had an error ({status}). It is usually temporary: try again "
                                "in a minute.", what=what, where=where, status=status, retryable=True,
                                retry_after=retry_after(exc))
        if detail := _message(exc):  # the server's own words, as it said them
            return ServiceError("{what}: {where} refused the request ({status}): {detail}.",
                                what=what, where=where, status=status, detail=detail)
        return ServiceError("{what}: {where} refused the request ({status}).", what=what, where=where,
                            status=status)
    if isinstance(exc, (BadResponse, ValueError, TypeError, AttributeError, KeyError)):
        return ServiceError("{what}: {where} sent a response that could not be read. Check that "
                            "OPENAI_BASE_URL points to an OpenAI-compatible server.", what=what, where=where,
                            retryable=True)
    return ServiceError("{what}: unexpected error ({error}).", what=what, error=type(exc).__name__)


def _no_endpoint(what: str | Text, where: Text, chat: bool) -> Text:
    """A 404 that is not about a model: the server lacks the endpoint (a transcription-only
    Whisper server asked for answers, a chat-only server asked for transcripts)."""
    if chat:
        return Text("{what}: {where} has no chat endpoint (404 on /chat/completions). Set CHAT_BASE_URL to "
                    "a server that answers questions (Ollama, llama.cpp, vLLM, OpenAI), or CHAT_MODEL=none "
                    "to get the transcript's best passages instead.", what=what, where=where)
    return Text("{what}: {where} has no transcription endpoint (404 on /audio/transcriptions). Set "
                "OPENAI_BASE_URL to a server that transcribes, or TRANSCRIBE_BACKEND=local to transcribe "
                "on this machine.", what=what, where=where)
