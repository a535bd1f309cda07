"""Service errors turned into messages a user can act on (`explain`).

Errors are read whatever their shape: OpenAI's `{"error": {...}}`, FastAPI's `{"detail": ...}`
(faster-whisper-server), vLLM's flat one.
"""

from __future__ import annotations

import datetime
import re

from ..config import ENV, Settings
from ..errors import ServiceError
from ..i18n import Text, visitor_forms
from .catalogue import SHUTDOWN_DATES, successor
from .client import by_whom, model_setting, retry_after, service_text
from .sdk import openai


class BadResponse(Exception):
    """The server answered, but not with what the API returns (a proxy's error page, say)."""


MESSAGE_CHARS = 300  # of a server's own error message shown to the user; the rest is noise

NO_CHAT_ENDPOINT = ("{what}: {where} has no chat endpoint (404 on /chat/completions). Set CHAT_BASE_URL to a server "
                    "that answers questions (Ollama, llama.cpp, vLLM, OpenAI), or CHAT_MODEL=none to get the "
                    "transcript's best passages instead.")
NO_TRANSCRIPTION_ENDPOINT = ("{what}: {where} has no transcription endpoint (404 on /audio/transcriptions). Set "
                             "OPENAI_BASE_URL to a server that transcribes, or TRANSCRIBE_BACKEND=local to "
                             "transcribe on this machine.")


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


def error_code(exc: openai.APIStatusError) -> str:
    """The error's code (or else its type), whatever the shape of its body; "" if none."""
    return _find(exc.body, ("code", "type")) if isinstance(exc.body, (dict, list)) else ""


def error_message(exc: openai.APIStatusError) -> str:
    """The server's own words, whatever the shape of its error body."""
    return _find(exc.body, ("message", "msg", "error", "detail"))[:MESSAGE_CHARS].rstrip(".")


def model_gone(exc: Exception) -> bool:
    """The service's answer for a model it does not serve, shut down or never offered: 404 model_not_found."""
    return isinstance(exc, openai.NotFoundError) and error_code(exc) == "model_not_found"


# How the service words a shut-down model ("The model `whisper-1` has been deprecated").
_RETIRED_WORDS = re.compile(r"deprecat|shut ?down|retired|decommission", re.IGNORECASE)


def is_retired(exc: openai.APIStatusError, model: str) -> bool:
    """A refused model that was shut down (the service says so, or its shutdown date is past),
    rather than one that never existed or that the key may not use."""
    date = SHUTDOWN_DATES.get(model)
    return bool(_RETIRED_WORDS.search(error_message(exc))) or bool(
        date and datetime.date.today().isoformat() >= date)


def retired_message(settings: Settings, model: str, *, chat: bool) -> Text:
    """One sentence for a model the user chose and the service shut down: what to set instead."""
    var = ENV[model_setting(chat)]
    new = successor(model, settings.chat_fallback_model)
    fix = (Text("set {var}={new} (the model that replaces it)", var=var, new=new) if new
           else Text("set {var} to a model it serves", var=var))
    return Text("{model} has been shut down {by_whom}; {fix}.", model=model, by_whom=by_whom(settings, chat),
                fix=fix)


# What a web visitor is told instead of the owner's message (by its template, filled with the same
# values): no server address, no setting to change, nothing a visitor cannot act on. The messages
# not listed name nothing internal and are shown as they are.
SERVICE_UNREACHABLE = "{what}: the service could not be reached. Try again later."
VISITOR_WORDS = visitor_forms({
    "{what}: {where} did not answer within {timeout:g} s (REQUEST_TIMEOUT).":
        "{what}: the service did not answer in time. Try again later.",
    "{what}: could not connect to {where}. Check your network connection and OPENAI_BASE_URL.": SERVICE_UNREACHABLE,
    "{what}: {where} refused the API key (401). Check OPENAI_API_KEY.":
        "{what}: the service refused the API key (401). If you pasted a key, check it; otherwise try again later.",
    "{what}: {where} is rate limiting requests (429). Wait a minute, or lower TRANSCRIBE_CONCURRENCY.":
        "{what}: the service is busy (429). Wait a minute and try again.",
    "{model} has been shut down {by_whom}; {fix}.":
        "{model} has been shut down by its service, and this server still uses it. Try again later.",
    "{what}: {where} does not know the model '{model}'. Set {var} to a model it serves.":
        "{what}: the service does not know the model '{model}' this server uses. Try again later.",
    "{what}: {where} refused the upload as too large (413). Lower MAX_UPLOAD_MB.":
        "{what}: the service refused the upload as too large (413).",
    "{what}: {where} had an error ({status}). It is usually temporary: try again in a minute.":
        "{what}: the service had an error ({status}). It is usually temporary: try again in a minute.",
    "{what}: {where} refused the request ({status}): {detail}.": "{what}: the service refused the request ({status}).",
    "{what}: {where} refused the request ({status}).": "{what}: the service refused the request ({status}).",
    "{what}: {where} sent a response that could not be read. Check that OPENAI_BASE_URL points to an "
    "OpenAI-compatible server.": "{what}: the service sent a response that could not be read. Try again later.",
    NO_CHAT_ENDPOINT: "{what}: the service this server uses cannot answer questions (404).",
    NO_TRANSCRIPTION_ENDPOINT: "{what}: the service this server uses cannot transcribe (404).",
    "the server at {host}": "the service",
    "The server at {host}": "The service",
    "{service} serves neither {model} nor {new}, which replaces it; set {var} to a model it serves.":
        "{service} serves neither {model} nor {new}, which replaces it. Try again later.",
})


def explain(exc: Exception, settings: Settings, *, model: str, what: str | Text, chat: bool = False
            ) -> ServiceError:
    """A `ServiceError` for an exception of the openai client; `retryable` says if trying again may
    help. Its message names the server and the setting to change, for the owner (the CLI, the
    log); its `for_visitor` says it without them, for the page (`VISITOR_WORDS`).

    `what` starts the message ("Answering"): a `Text`, so that it is translated with the rest."""
    if isinstance(exc, ServiceError):
        return exc
    return _for_owner(exc, settings, model=model, what=what, chat=chat)


def _for_owner(exc: Exception, settings: Settings, *, model: str, what: str | Text, chat: bool) -> ServiceError:
    """`explain`'s message, with the server and the setting to change."""
    where = service_text(settings, chat)
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
        if error_code(exc) == "insufficient_quota":
            return ServiceError("{what}: the OpenAI account has no credit or quota left. Add credit or raise "
                                "the limit in the billing settings, then retry.", what=what)
        return ServiceError("{what}: {where} is rate limiting requests (429). Wait a minute, or lower "
                            "TRANSCRIBE_CONCURRENCY.", what=what, where=where, retryable=True,
                            retry_after=retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = error_code(exc)
        if code == "model_not_found" or status == 404 and "model" in error_message(exc).lower():
            if is_retired(exc, model):
                return ServiceError(retired_message(settings, model, chat=chat))
            return ServiceError("{what}: {where} does not know the model '{model}'. Set {var} to a model "
                                "it serves.", what=what, where=where, model=model, var=ENV[model_setting(chat)])
        if status == 404:
            return ServiceError(_no_endpoint(what, where, chat))
        if status == 413:
            return ServiceError("{what}: {where} refused the upload as too large (413). Lower MAX_UPLOAD_MB.",
                                what=what, where=where)
        if status in (408, 409) or status >= 500:
            return ServiceError("{what}: {where} had an error ({status}). It is usually temporary: try again "
                                "in a minute.", what=what, where=where, status=status, retryable=True,
                                retry_after=retry_after(exc))
        if detail := error_message(exc):  # the server's own words, as it said them
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
    return Text(NO_CHAT_ENDPOINT if chat else NO_TRANSCRIPTION_ENDPOINT, what=what, where=where)
