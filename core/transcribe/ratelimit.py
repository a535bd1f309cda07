"""How many requests one job may have on the service at once: `InFlight` follows the service's
rate limit (its x-ratelimit headers, its 429s and their Retry-After), so a job on a small account
is slowed down instead of refused."""

from __future__ import annotations

import heapq
import logging
import threading
import time

from ..service.client import Budget, MAX_RETRY_AFTER

log = logging.getLogger(__name__)

CANCEL_POLL = 0.25  # seconds between two looks at the cancel flag while waiting


class InFlight:
    """The requests one job has on the service, abandoned ones included, and how many it may have.

    A request that timed out on our side is most likely still being worked on by a slow server:
    it keeps its place for another `linger` seconds, so its retry (or the next chunk) does not
    pile a second request on a server that is still busy with the first. A job never has more
    than `limit` requests on the server, retries included.

    The limit follows the service's rate limit (additive increase, multiplicative decrease, as TCP
    does with a congested link): a 429 halves it, once for all the requests that were already on
    their way when it came (their 429s are the same news), and holds every request of the job, not
    only the refused one, for as long as Retry-After says. When that hold ends, one request goes
    alone, and the others only once it has succeeded: a burst into a window that has just room for
    one would be refused, and the service counts refused requests against the limit too.
    Better still, a service that says with each answer what is left of the account's requests a
    minute (OpenAI's x-ratelimit headers: `budget`) is not sent more than that: once it is used
    up, nothing goes until the limit is whole again, then one request asks and its count lets the
    others go, so the account's limit is met without a refusal after the first answers. Once a
    whole rate-limit window (the longest Retry-After seen) has passed without a 429, each `limit`
    successes raise the limit by one, up to `ceiling` (TRANSCRIBE_CONCURRENCY). Places are given in
    the order of the chunks, so a retry goes before later chunks and the transcript fills in from
    the start.
    """

    def __init__(self, limit: int, linger: float):
        self.ceiling = self.limit = self.lowest = limit
        self.linger = linger
        self.throttled_count = 0  # 429s seen
        self._busy = 0
        self._ghosts: list[float] = []  # when each abandoned request is assumed to be over
        self._hold_until = 0.0  # nothing is sent before this (time.monotonic()): Retry-After
        self._round = 0  # one more at each decrease or hold: a request remembers the round it was sent in
        self._successes = 0  # of requests sent in this round, since the limit last changed
        self._probing = False  # after a hold: one request at a time until one succeeds
        self._throttled_at = float("-inf")  # time.monotonic() of the last 429
        self._window = 0.0  # the service's rate-limit window, as far as its Retry-After tells (s)
        self._left: int | None = None  # requests the service's last word leaves us; None: not known
        self._whole: int | None = None  # the room expected once a hold for a used-up limit ends
        self._sent = 0  # requests sent so far: each is numbered, to know what was sent after which
        self._mine = threading.local()  # the number of the request this worker thread has on its way
        self._numbers: set[int] = set()  # of the requests on their way
        self._limit_seen: int | None = None  # the service's limit of requests, as its answers say
        self._counted = 0  # the number of the latest request whose answer gave the service's count
        self._waiting: list[tuple[int, int]] = []  # (order, arrival) of the requests waiting, a heap
        self._arrivals = 0
        self._cond = threading.Condition()

    def acquire(self, cancel: threading.Event, order: int = 0) -> int | None:
        """Wait for a place, the lowest `order` first; the round the request goes in, or None if
        the job was cancelled meanwhile."""
        with self._cond:
            me = (order, self._arrivals)
            self._arrivals += 1
            heapq.heappush(self._waiting, me)
            try:
                while not cancel.is_set():
                    now = time.monotonic()
                    self._ghosts = [t for t in self._ghosts if t > now]
                    if self._whole is not None and self._left == 0 and now >= self._hold_until:
                        # The limit should be whole again, but a request sent before the counted one
                        # may have reached the service after it: one goes alone and asks.
                        self._left, self._probing = None, True
                    free = self._busy + len(self._ghosts) < (1 if self._probing else self.limit)
                    if self._left is not None and self._left <= 0:
                        free = False  # the answers in flight will say more
                    if self._waiting[0] == me and free and now >= self._hold_until:
                        self._busy += 1
                        if self._left is not None:
                            self._left -= 1
                        self._sent += 1
                        self._mine.number = self._sent
                        self._numbers.add(self._sent)
                        return self._round
                    soonest = min(self._ghosts) - now if self._ghosts else CANCEL_POLL
                    if now < self._hold_until:
                        soonest = self._hold_until - now
                    self._cond.wait(max(0.0, min(soonest, CANCEL_POLL)))
                return None
            finally:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._cond.notify_all()

    def release(self, abandoned: bool) -> None:
        with self._cond:
            self._busy -= 1
            self._numbers.discard(getattr(self._mine, "number", None))
            if abandoned:
                self._ghosts.append(time.monotonic() + self.linger)
            if self._busy == 0 and self._whole is None and self._left is not None and self._left <= 0:
                self._left, self._probing = None, True  # no answer is left to tell: one goes to ask
            self._cond.notify_all()

    def budget(self, seen: Budget) -> None:
        """The service's count of the account's requests when the request this worker thread has
        on its way reached it, with its answer (the request still holds its place). What was
        sent after it is not in that count, nor perhaps what was sent before it and is still
        unanswered (requests sent together reach the service in any order): both are taken from
        what the count leaves. The count of the latest request answered is the one in force: an older
        request's answer, coming last, is older news (and a newer one may show room the window has
        freed since). Nothing left: nothing more is sent until the limit is whole again (`reset`);
        then the whole limit, less what was sent after the counted request, is expected, and one
        request goes alone first: its count lets the others go."""
        with self._cond:
            self._limit_seen = seen.limit
            mine = getattr(self._mine, "number", self._sent)
            if mine < self._counted:
                return
            self._counted = mine
            # Sent after it: not counted. Sent before it and still unanswered: maybe not counted
            # either, as requests sent together can reach the service in any order.
            later = self._sent - mine + sum(1 for n in self._numbers if n < mine)
            self._left = seen.remaining - later
            if self._left <= 0 and seen.reset > 0:
                now = time.monotonic()
                if now >= self._hold_until:  # said once a hold
                    log.info("rate limit: the service's %d requests used up, next in %.1f s", seen.limit, seen.reset)
                self._hold_until = max(self._hold_until, now + seen.reset)
                self._left, self._whole = 0, max(1, seen.limit - later)
                self._round += 1  # answers to what was sent before this tell nothing new
            elif self._left <= 0 and self._busy <= 1:
                self._left = None  # used up, and no word of when: the service's 429 will say
            elif self._left > 0:
                self._whole = None  # room, as a later count says: no longer a guess
            self._cond.notify_all()

    def room(self) -> tuple[int, int] | None:
        """What the service has room for, as its answers say: the requests that may go now (or as
        soon as a hold ends) and are not already waiting for a place, and its whole limit. None
        when it has not said."""
        with self._cond:
            left = self._left if self._left is not None else self._whole
            if self._limit_seen is None or left is None:
                return None
            return left - len(self._waiting), self._limit_seen

    def succeeded(self, sent_in: int) -> None:
        """A request of round `sent_in` was answered (those sent before the last 429 tell nothing
        about the room the service has now)."""
        with self._cond:
            if sent_in != self._round:
                return
            if self._probing:
                self._probing = False
                self._cond.notify_all()
            self._successes += 1
            calm = time.monotonic() - self._throttled_at >= self._window
            if self._successes >= self.limit and calm and self.limit < self.ceiling:
                self.limit += 1
                self._successes = 0
                log.info("rate limit: up to %d requests at once", self.limit)
                self._cond.notify_all()

    def throttled(self, sent_in: int, retry_after: float | None) -> None:
        """The service answered a request of round `sent_in` with 429 (rate limited)."""
        with self._cond:
            self.throttled_count += 1
            self._successes = 0
            self._throttled_at = time.monotonic()
            if retry_after is not None and retry_after <= MAX_RETRY_AFTER:
                self._hold_until = max(self._hold_until, self._throttled_at + retry_after)
                self._window = max(self._window, retry_after)
                self._probing, self._left, self._whole = True, None, None
            if sent_in == self._round:  # the first news of this round: later ones are the same news
                self._round += 1
                self.limit = max(1, self.limit // 2)
                self.lowest = min(self.lowest, self.limit)
                log.info("rate limited (429): %d requests at once now, holding %.1f s", self.limit,
                         max(0.0, self._hold_until - time.monotonic()))
