"""The models in use and when their service shuts them down: warnings before the day comes.

OpenAI announces a model's shutdown months ahead, and its catalogue says when
(`GET /v1/models/{id}` carries `shutdown_date`). Each model in use is looked up once per process
and server, with a short timeout and no retries: a warning is never worth a slow or failed job,
so any failure (no key, a server without `/models`, a time-out) just leaves the date unknown, or,
for OpenAI's own service, the date announced in the SDK (`catalogue.SHUTDOWN_DATES`).

What the warning says follows what will happen: our default model gives way to its successor by
itself (`retirement.take_over`), while a model the user chose must be changed by the user.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from urllib.parse import urlsplit

from ..config import ENV, Settings
from .catalogue import SHUTDOWN_DATES, successor
from ..i18n import Text, visitor_forms
from .client import endpoint, make_client, service_name
from .retirement import model_in_force
from .sdk import openai

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 3.0  # seconds for one catalogue lookup: a warning must not hold a job up
WARN_DAYS = 60  # days ahead of a shutdown that it is announced: time to try the successor
# Testing aid only: pretend today is this ISO date (the CLI and app tests run in subprocesses).
# Not a setting: nothing but the shutdown warnings reads it.
TODAY_ENV = "TALK_TODAY"


@dataclass(frozen=True)
class ModelStatus:
    model: str
    chat: bool  # the chat model (CHAT_MODEL), else the transcription model (TRANSCRIBE_MODEL)
    shutdown: date | None  # None: none announced, or not known (the server does not say)
    successor: str | None  # what replaces it, when it is one of the models being retired
    automatic: bool  # our default: the successor takes over by itself; else the user must act
    gone: bool = False  # the server already refuses it (404 model_not_found)
    source: str | None = None  # where the date comes from: "server" or "announced" (the SDK's)
    where: str = "the OpenAI API"  # the service it is sent to, in words

    @property
    def setting(self) -> str:
        return ENV["chat_model" if self.chat else "transcribe_model"]

    def days_left(self, today: date) -> int | None:
        return None if self.shutdown is None else (self.shutdown - today).days

    def due(self, today: date, within_days: int = WARN_DAYS) -> bool:
        """Whether it is worth a warning: refused already, or shutting down within `within_days`."""
        days = self.days_left(today)
        return self.gone or (days is not None and days <= within_days)


@dataclass(frozen=True)
class _Lookup:
    answered: bool  # the server described the model, with a `shutdown_date` field
    shutdown: date | None = None
    gone: bool = False


_looked_up: dict[tuple[str, str], _Lookup] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_guard = threading.Lock()


def forget() -> None:
    """Forget every lookup (tests: each sets up the server it wants to be asked)."""
    with _guard:
        _looked_up.clear()
        _locks.clear()


def current_date() -> date:
    """The date warnings count from: the real one, unless a test set TALK_TODAY."""
    fixed = os.environ.get(TODAY_ENV, "").strip()
    try:
        return date.fromisoformat(fixed) if fixed else date.today()
    except ValueError:
        log.warning("%s=%r is not an ISO date (YYYY-MM-DD); using today's date", TODAY_ENV, fixed)
        return date.today()


def _is_openai(settings: Settings, chat: bool) -> bool:
    """OpenAI's own service: only its models have the dates the SDK announces."""
    base_url, _ = endpoint(settings, chat)
    return not base_url or (urlsplit(base_url).hostname or "").endswith("openai.com")


def _as_date(value: object) -> date | None:
    """A catalogue date: ISO text ("2027-01-14", or with a time) or Unix seconds; else None."""
    try:
        if isinstance(value, str) and value.strip():
            return date.fromisoformat(value.strip()[:10])
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc).date()
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _ask_server(settings: Settings, model: str, chat: bool) -> _Lookup:
    """One `GET /models/{model}`; whatever goes wrong, an unanswered lookup (never an error)."""
    try:
        quick = settings.replace(request_timeout=LOOKUP_TIMEOUT)
        client = make_client(quick, max_retries=0, chat=chat)
        extra = client.models.retrieve(model).to_dict()  # `shutdown_date` is not in the SDK's type
    except openai.NotFoundError as e:
        gone = getattr(e, "code", None) == "model_not_found"  # not a server without /models
        log.info("model lookup for %s: %s", model, "no longer served" if gone else "no catalogue")
        return _Lookup(answered=False, gone=gone)
    except Exception as e:  # no key, no /models, time-out, a body that is not the API's
        log.info("model lookup for %s failed (%s): its shutdown date is not known", model, type(e).__name__)
        return _Lookup(answered=False)
    if "shutdown_date" not in extra:
        return _Lookup(answered=False)
    return _Lookup(answered=True, shutdown=_as_date(extra["shutdown_date"]))


def _lookup(settings: Settings, model: str, chat: bool) -> _Lookup:
    """The server's word on `model`, asked once per process and server (concurrent first
    callers wait for the one lookup)."""
    key = (endpoint(settings, chat)[0] or "openai", model)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _looked_up:
            _looked_up[key] = _ask_server(settings, model, chat)
        return _looked_up[key]


def status(settings: Settings, model: str, chat: bool = False) -> ModelStatus:
    """What is known about `model` on the server it is sent to (the chat server with `chat`)."""
    found = _lookup(settings, model, chat)
    shutdown, source = (found.shutdown, "server") if found.answered else (None, None)
    if not found.answered and _is_openai(settings, chat) and model in SHUTDOWN_DATES:
        shutdown, source = date.fromisoformat(SHUTDOWN_DATES[model]), "announced"
    new = successor(model, settings.chat_fallback_model) if chat else successor(model)
    new = None if new == model else new
    chosen = settings.chose("chat_model" if chat else "transcribe_model")
    return ModelStatus(model, chat, shutdown, new, automatic=bool(new) and not chosen, gone=found.gone,
                       source=source, where=service_name(settings, chat=chat))


def in_use(settings: Settings, *, chat: bool = True) -> list[ModelStatus]:
    """The transcription model when the OpenAI backend (or a server speaking its API) is in
    force, and, with `chat`, the chat model when one is configured."""
    used = []
    if settings.transcribe_backend == "openai":
        used.append(status(settings, settings.transcribe_model))
    if chat and settings.chat_enabled:
        used.append(status(settings, settings.chat_model, chat=True))
    return used


def prefetch(settings: Settings, *, chat: bool = True) -> None:
    """Start the lookups in the background, so that they are done by the time they are read."""
    threading.Thread(target=in_use, args=(settings,), kwargs={"chat": chat}, daemon=True,
                     name="model-lookup").start()


AUTOMATIC = "{model}, the default {role}, {when}; {new} {then}. Set {setting} to choose another model."
CHOSEN_GONE = "{model} ({setting}) {when}: requests with it fail. Set {setting} {instead}."
CHOSEN_PAST = "{model} ({setting}) {when}: requests with it will fail. Set {setting} {instead}."
CHOSEN_SOON = "{model} ({setting}) {when}. Set {setting} {instead}, before then."


def _when(s: ModelStatus, day: date) -> Text:
    days = s.days_left(day)
    if s.gone:
        return (Text("was shut down on {date}", date=s.shutdown) if days is not None and days <= 0
                else Text("is not served by {where}", where=s.where))
    if days is None:
        return Text("has no shutdown announced")
    if days > 1:
        return Text("shuts down on {date} (in {days} days)", date=s.shutdown, days=days)
    if days == 1:
        return Text("shuts down tomorrow ({date})", date=s.shutdown)
    if days == 0:
        return Text("shuts down today ({date})", date=s.shutdown)
    return Text("was due to shut down on {date}", date=s.shutdown)  # past the date, but still served as far as we know


# A model's shutdown for a visitor: what happens, without the setting that changes it or the server's address.
visitor_forms({
    "is not served by {where}": "is not served by its service",
    AUTOMATIC: "{model}, the default {role}, {when}; {new} {then}.",
    CHOSEN_GONE: "{model} {when}: requests with it fail.",
    CHOSEN_PAST: "{model} {when}: requests with it will fail.",
    CHOSEN_SOON: "{model}, the model this server uses, {when}.",
})


def warning(s: ModelStatus, day: date) -> Text:
    """One line: which model, when, and what happens then or what to set (`str()` of it: English)."""
    past = (s.days_left(day) or 0) < 0
    when = _when(s, day)
    if s.automatic:
        then = (Text("has taken over") if s.gone else Text("takes over as soon as it is refused") if past
                else Text("takes over automatically then"))
        role = Text("chat model") if s.chat else Text("transcription model")
        return Text(AUTOMATIC, model=s.model, role=role, when=when, new=s.successor, then=then, setting=s.setting)
    instead = (Text("to {new}, which replaces it", new=s.successor) if s.successor else Text("to another model"))
    template = CHOSEN_GONE if s.gone else CHOSEN_PAST if past else CHOSEN_SOON
    return Text(template, model=s.model, when=when, setting=s.setting, instead=instead)


def _announced_on_use(settings: Settings, s: ModelStatus) -> bool:
    """Our default that its server refuses already: its successor takes over at the first
    request, which says so (`retirement.take_over`), or did so earlier in this process."""
    return s.automatic and (s.gone or model_in_force(settings, chat=s.chat) != s.model)


def warnings(settings: Settings, today: date | None = None, within_days: int = WARN_DAYS, *,
             chat: bool = True, unannounced: bool = False) -> list[Text]:
    """A line for each model in use that shuts down within `within_days` or is gone already.
    With `unannounced`, none for a refused default, whose replacement is announced when it is
    used (the CLI, which uses the models it warns about)."""
    day = today or current_date()
    return [warning(s, day) for s in in_use(settings, chat=chat)
            if s.due(day, within_days) and not (unannounced and _announced_on_use(settings, s))]


def describe(s: ModelStatus, day: date) -> str:
    """The model with its shutdown date and successor, for `info`."""
    if s.shutdown is None and not s.gone:
        why = "no shutdown announced" if s.source else "shutdown date not known (the server does not say)"
        return f"{s.model}, {why}"
    source = ", as announced by OpenAI" if s.source == "announced" and not s.gone else ""
    past = (s.days_left(day) or 0) < 0
    if s.automatic:
        how = "has taken over" if s.gone else "takes over when it is refused" if past else "takes over then"
        then = f"{s.successor} {how}"
    else:
        then = f"set {s.setting} to {s.successor or 'another model'}"
    return f"{s.model}, {_when(s, day)}{source}; {then}"
