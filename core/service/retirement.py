"""What the process remembers of what servers said about models.

Which of our default models a server no longer serves (its successor takes over, announced
once: `take_over`), and which parameters a model refuses (sent no more: `refuse_param`). Shared
by every job and conversation, so that nothing is sent twice to be refused twice.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from ..config import ENV, Settings
from ..errors import ServiceError
from ..i18n import Note, Text, visitor_forms
from .catalogue import successor
from .client import by_whom, endpoint, model_setting, service_text_first
from .errors import error_code, error_message, is_retired, model_gone
from .sdk import openai

# (server, model) pairs no longer served, and the parameters each model refuses;
# `forget_models` clears them (tests).
_gone: set[tuple[str, str]] = set()
_refused: dict[tuple[str, str], set[str]] = {}
_known_lock = threading.Lock()


def _server(settings: Settings, chat: bool) -> str:
    """What the memory is keyed by: the server's address, or "openai" for OpenAI's own."""
    return endpoint(settings, chat)[0] or "openai"


def forget_models() -> None:
    """Forget what servers said about models (for tests, whose server changes its mind)."""
    with _known_lock:
        _gone.clear()
        _refused.clear()


def model_in_force(settings: Settings, *, chat: bool = False) -> str:
    """The model to send: the configured one, or, when it is our default and its server no
    longer serves it, its successor (no failed request first)."""
    setting = model_setting(chat)
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
    setting = model_setting(chat)
    model = getattr(settings, setting)
    new = successor(model, settings.chat_fallback_model)
    if not model_gone(exc) or settings.chose(setting) or not new or new == model:
        return None
    if refused != model:  # the successor itself: nothing else takes over
        raise ServiceError("{service} serves neither {model} nor {new}, which replaces it; set {var} to a "
                           "model it serves.", service=service_text_first(settings, chat), model=model,
                           new=new, var=ENV[setting])
    key = (_server(settings, chat), model)
    with _known_lock:
        first = key not in _gone
        _gone.add(key)
    if not first:
        return new, None
    why = (Text("{model} has been shut down {by_whom}", model=model, by_whom=by_whom(settings, chat))
           if is_retired(exc, model) else Text("{service} does not offer {model}",
                                               service=service_text_first(settings, chat), model=model))
    doing = Text(TOOK_OVER_CHAT if chat else TOOK_OVER, why=why, new=new, var=ENV[setting])
    return new, Note(doing)


TOOK_OVER_CHAT = "{why}, so {new} answers instead (set {var} to choose another model)."
TOOK_OVER = "{why}, so {new} transcribes instead (set {var} to choose another model)."
visitor_forms({TOOK_OVER_CHAT: "{why}, so {new} answers instead.", TOOK_OVER: "{why}, so {new} transcribes instead.",
               "{model} has been shut down {by_whom}": "{model} has been shut down by its service"})


def refused_params(settings: Settings, model: str) -> frozenset[str]:
    """The chat parameters this model has refused in this process: they are not sent again."""
    with _known_lock:
        return frozenset(_refused.get((_server(settings, chat=True), model), ()))


def refuse_param(settings: Settings, model: str, param: str) -> None:
    """Remember that `model` refused the chat parameter `param`, for the process."""
    with _known_lock:
        _refused.setdefault((_server(settings, chat=True), model), set()).add(param)


_UNSUPPORTED = re.compile(r"unsupported|not supported|does not support", re.IGNORECASE)


def unsupported_param(exc: Exception, sent: Iterable[str]) -> str | None:
    """Which of the parameters `sent` a 400 says the model does not take (newer models take only
    the default temperature): the error's `param`, or a name quoted in its message."""
    if not isinstance(exc, openai.BadRequestError):
        return None
    message = error_message(exc)
    if not (_UNSUPPORTED.search(message) or error_code(exc).startswith("unsupported")):
        return None
    named = [exc.param] if isinstance(exc.param, str) else []
    named += re.findall(r"['`\"](\w+)['`\"]", message)
    sent = set(sent)
    return next((name for name in named if name in sent), None)

