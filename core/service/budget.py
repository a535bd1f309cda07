"""What each visitor may spend of the server's work, when the app is open to others.

On a shared server (BUDGET=on, or `auto` where `shared` says so: the app listens beyond this
machine, or runs on a Hugging Face Space) every visitor is charged for what is done with the
server's key or its own Whisper: seconds of audio sent for transcription (per clock hour and per
UTC day) and questions answered (per clock hour; a summary not cached yet counts as one).

A visitor is their page session, or, for API and tool callers (who share no session), their
address. An address may spend BUDGET_PER_ADDRESS visitors' worth however many sessions it opens
(a session is the client's to choose), and the server's key as a whole at most the
BUDGET_TOTAL_* of a day. A visitor who pastes their own key spends their own budget: nothing is
charged. Each visitor runs at most JOBS_PER_VISITOR transcriptions at once, and an address never
takes every job slot, so one client cannot keep everyone else waiting.

Cached work is free: the job path shows a cached transcript before the budget is asked. Audio is
charged as it is sent, chunk by chunk, from the decoded audio (`Allowance`), so a header that
lies about the length changes nothing: the job stops sending where the budget ends, and the
transcript says so.

The ledger is kept in memory: a restart renews every budget, and no address is written to disk.
The owner sees each charge and each refusal in the log (a session by the start of its id, never
a key).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from ..config import Settings
from ..errors import AppError
from ..i18n import Note, Text
from ..transcript import format_timestamp
from .client import endpoint

log = logging.getLogger(__name__)

HOUR, DAY = 3600, 86400
SLACK_SECONDS = 1.0  # rounding in the chunks' times: a recording just at what is left is not cut
SERVER = "server"
PRUNE_AT = 10_000  # accounts kept before those with nothing spent today (and no job) are dropped

# What a visitor over their budget is told: what is left, when more comes, and that their own key
# is theirs to spend (the page's key field, the API's key argument).
AUDIO_REFUSED = ("This recording is {needed} min long and {left} min of audio is left of what this server "
                 "transcribes for you; more in {wait}, or paste your own OpenAI API key, which this server "
                 "does not limit.")
AUDIO_USED_UP = ("You have used the audio this server transcribes for you ({left} min left); more in {wait}, or "
                 "paste your own OpenAI API key, which this server does not limit.")
AUDIO_CUT = ("{name} goes on past what is left of the audio this server transcribes for you: only the first "
             "{kept} were transcribed; more in {wait}, or paste your own OpenAI API key, which this server does "
             "not limit.")
QUESTIONS_USED_UP = ("You have used the questions this server answers for you for now; more in {wait}, or paste "
                     "your own OpenAI API key, which this server does not limit.")
BUSY = "You already have a transcription running here; wait for it to finish, then start the next one."


class OverBudget(AppError):
    """A visitor asked for more than their budget leaves: said with what is left and when it renews."""


class Busy(AppError):
    """A visitor already runs as many transcriptions as they may at once."""


@dataclass(frozen=True)
class Visitor:
    """Who is charged: a page's session, or (`session` None) an API or tool caller's address."""

    session: str | None = None
    address: str | None = None

    @property
    def account(self) -> str:
        return f"page {self.session[:8]}" if self.session else f"api {self.address or '?'}"

    @property
    def place(self) -> str:
        return f"address {self.address or '?'}"


def shared(mode: str, host: str | None, environ: Mapping[str, str]) -> bool:
    """Whether the budget is on: BUDGET=on, or `auto` on a Space (SPACE_ID) or listening on an
    address other than this machine's loopback (GRADIO_SERVER_NAME, --host)."""
    if mode != "auto":
        return mode == "on"
    if environ.get("SPACE_ID"):
        return True
    host = (host or "127.0.0.1").strip().strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: whoever can resolve it can reach it
        return True


def resolved(settings: Settings, host: str | None, environ: Mapping[str, str]) -> Settings:
    """The app's settings with BUDGET and TRUSTED_PROXIES decided for where it runs."""
    proxies = settings.trusted_proxies
    if proxies is None:
        proxies = 1 if environ.get("SPACE_ID") else 0
    return settings.replace(budget="on" if shared(settings.budget, host, environ) else "off",
                            trusted_proxies=proxies)


def client_address(host: str | None, forwarded_for: str | None, trusted_proxies: int) -> str | None:
    """The caller's address: the connection's, or, behind `trusted_proxies` proxies that each
    add the address they were reached from to X-Forwarded-For, the one that many hops from its
    end. Counted from the end: what a client writes into the header itself comes first, and is
    never taken for its address."""
    if trusted_proxies <= 0 or not forwarded_for:
        return host
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    return hops[-trusted_proxies] if len(hops) >= trusted_proxies else (hops[0] if hops else host)


def minutes(seconds: float) -> str:
    return f"{max(0.0, seconds) / 60:.0f}"


def wait_words(seconds: float) -> str:
    """How long until more comes: "12 min", "3 h 05 min" (alike in English and Spanish)."""
    whole = max(1, math.ceil(seconds / 60))
    return f"{whole} min" if whole < 60 else f"{whole // 60} h {whole % 60:02d} min"


class _Window:
    """What was spent in the current clock window (an hour, a UTC day); a new window starts at 0."""

    __slots__ = ("length", "index", "spent")

    def __init__(self, length: int):
        self.length, self.index, self.spent = length, -1, 0.0

    def current(self, now: float) -> float:
        if int(now // self.length) != self.index:
            self.index, self.spent = int(now // self.length), 0.0
        return self.spent

    def add(self, now: float, amount: float) -> None:
        self.current(now)
        self.spent += amount

    def renews_in(self, now: float) -> float:
        return (int(now // self.length) + 1) * self.length - now


class _Account:
    __slots__ = ("audio_hour", "audio_day", "asked_hour", "asked_day", "jobs")

    def __init__(self):
        self.audio_hour, self.audio_day = _Window(HOUR), _Window(DAY)
        self.asked_hour, self.asked_day = _Window(HOUR), _Window(DAY)
        self.jobs = 0


class Budget:
    """The ledger of one app: thread-safe; every method is a no-op with the budget off."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings, self.clock = settings, clock
        self.on = settings.budget == "on"
        self._accounts: dict[str, _Account] = {}  # only those that spent, or run a job
        self._prune_at = PRUNE_AT
        self._lock = threading.Lock()

    def charged(self, settings: Settings, *, chat: bool = False) -> bool:
        """Whether work with these settings is the server's to pay: not when the visitor's own
        key is in force (for answers, CHAT_API_KEY first, as `endpoint` says)."""
        if not self.on:
            return False
        key = endpoint(settings, chat)[1]
        return not key or key == endpoint(self.settings, chat)[1]

    def _limits(self, name: str) -> tuple[float | None, float | None, float | None, float | None]:
        """(audio seconds a clock hour, a day, questions an hour, a day) of an account; None: no limit."""
        s = self.settings
        if name == SERVER:
            return (None, s.budget_total_minutes_day * 60 or None, None, s.budget_total_questions_day or None)
        share = s.budget_per_address if name.startswith("address ") else 1.0
        return (s.budget_minutes_hour * 60 * share, s.budget_minutes_day * 60 * share,
                s.budget_questions_hour * share, None)

    def _account(self, name: str) -> _Account:
        """The account to charge, made on first use; past `_prune_at` accounts, those with
        nothing spent today and no job running are dropped first (a day's visitors are kept)."""
        if name not in self._accounts and len(self._accounts) >= self._prune_at:
            today = int(self.clock() // DAY)
            for old in [k for k, a in self._accounts.items() if not a.jobs and a.audio_day.index != today
                        and a.asked_day.index != today]:
                del self._accounts[old]
            self._prune_at = max(PRUNE_AT, 2 * len(self._accounts))
        return self._accounts.setdefault(name, _Account())

    def _left(self, visitor: Visitor, audio: bool) -> tuple[float, float]:
        """(what is left, seconds until more comes): the tightest of the visitor's, their
        address's and the server's limits, audio in seconds or questions."""
        now, best = self.clock(), (math.inf, 0.0)
        for name in (visitor.account, visitor.place, SERVER):
            account, limits = self._accounts.get(name) or _Account(), self._limits(name)  # a look: nothing kept
            windows = ((account.audio_hour, limits[0]), (account.audio_day, limits[1])) if audio else \
                ((account.asked_hour, limits[2]), (account.asked_day, limits[3]))
            for window, limit in windows:
                if limit is not None:
                    left = limit - window.current(now)
                    best = min(best, (left, -window.renews_in(now)))
        return best[0], -best[1]

    def _add(self, visitor: Visitor, audio: float = 0.0, asked: int = 0) -> None:
        now = self.clock()
        for name in (visitor.account, visitor.place, SERVER):
            account = self._account(name)
            account.audio_hour.add(now, audio)
            account.audio_day.add(now, audio)
            account.asked_hour.add(now, asked)
            account.asked_day.add(now, asked)
        me, server = self._account(visitor.account), self._account(SERVER)
        log.info("budget: %s (%s) %s: %.0f s of audio and %d question(s) this hour, %.0f s today; the server "
                 "%.0f s and %d question(s) today", visitor.account, visitor.place,
                 f"sent {audio:.0f} s of audio" if audio else "asked a question", me.audio_hour.spent,
                 me.asked_hour.spent, me.audio_day.spent, server.audio_day.spent, server.asked_day.spent)

    def audio_left(self, visitor: Visitor) -> tuple[float, float]:
        """Seconds of audio the visitor may still have transcribed, and seconds until more comes."""
        with self._lock:
            return self._left(visitor, audio=True)

    def ready(self, visitor: Visitor, settings: Settings) -> None:
        """Refuse a transcription before it waits for a slot when no audio at all is left."""
        if self.charged(settings):
            left, renews = self.audio_left(visitor)
            if left < SLACK_SECONDS:
                log.info("budget: %s (%s) refused: no audio left", visitor.account, visitor.place)
                raise OverBudget(AUDIO_USED_UP, left=minutes(left), wait=wait_words(renews))

    def spend(self, visitor: Visitor, seconds: float) -> bool:
        """Charge `seconds` of audio about to be sent; False (nothing charged) when over what is left."""
        with self._lock:
            if seconds > self._left(visitor, audio=True)[0] + SLACK_SECONDS:
                log.info("budget: %s (%s) stopped: %.0f s more is over what is left", visitor.account,
                         visitor.place, seconds)
                return False
            self._add(visitor, audio=seconds)
            return True

    def question(self, visitor: Visitor, settings: Settings) -> None:
        """Charge one question (or a summary) about to be sent, or raise `OverBudget`."""
        if not self.charged(settings, chat=True) or not settings.chat_enabled:
            return
        with self._lock:
            left, renews = self._left(visitor, audio=False)
            if left < 1:
                log.info("budget: %s (%s) refused a question: none left", visitor.account, visitor.place)
                raise OverBudget(QUESTIONS_USED_UP, wait=wait_words(renews))
            self._add(visitor, asked=1)

    @contextmanager
    def running(self, visitor: Visitor) -> Iterator[None]:
        """Hold one of the visitor's job places for a transcription, or raise `Busy`: a visitor
        runs JOBS_PER_VISITOR at once, an address BUDGET_PER_ADDRESS times that but never every
        one of MAX_CONCURRENT_JOBS (whatever key pays)."""
        if not self.on:
            yield
            return
        s = self.settings
        caps = {visitor.account: s.jobs_per_visitor,
                visitor.place: min(int(s.budget_per_address * s.jobs_per_visitor), max(1, s.max_jobs - 1))}
        with self._lock:
            if any(self._account(name).jobs >= cap for name, cap in caps.items()):
                log.info("budget: %s (%s) refused a job: one is running", visitor.account, visitor.place)
                raise Busy(BUSY)
            for name in caps:
                self._account(name).jobs += 1
        try:
            yield
        finally:
            with self._lock:
                for name in caps:
                    self._account(name).jobs -= 1

    def allowance(self, visitor: Visitor, settings: Settings) -> "Allowance | None":
        """What a transcription with these settings may send, for the pipeline; None when it is
        not charged (the budget off, or the visitor's own key)."""
        return Allowance(self, visitor) if self.charged(settings) else None


class Allowance:
    """A job's view of its visitor's budget, for the pipeline: `check` before anything is sent
    (the header's length), `spend` before each chunk is sent (the decoded audio)."""

    def __init__(self, budget: Budget, visitor: Visitor):
        self.budget, self.visitor = budget, visitor

    def check(self, seconds: float | None) -> None:
        """Refuse at once a recording whose header already says it is longer than what is left."""
        left, renews = self.budget.audio_left(self.visitor)
        if left < SLACK_SECONDS:
            raise OverBudget(AUDIO_USED_UP, left=minutes(left), wait=wait_words(renews))
        if seconds is not None and seconds > left + SLACK_SECONDS:
            log.info("budget: %s (%s) refused %.0f s of audio: %.0f s left", self.visitor.account,
                     self.visitor.place, seconds, left)
            raise OverBudget(AUDIO_REFUSED, needed=minutes(seconds), left=minutes(left), wait=wait_words(renews))

    def spend(self, seconds: float) -> bool:
        return self.budget.spend(self.visitor, seconds)

    def exhausted(self) -> OverBudget:
        """The error of a job that could send nothing at all."""
        left, renews = self.budget.audio_left(self.visitor)
        return OverBudget(AUDIO_USED_UP, left=minutes(left), wait=wait_words(renews))

    def cut_note(self, name: str, kept: float) -> Note:
        """The note of a transcript that stops where the budget did (its header said less)."""
        return Note(Text(AUDIO_CUT, name=name, kept=format_timestamp(kept, hours=True),
                         wait=wait_words(self.budget.audio_left(self.visitor)[1])))
