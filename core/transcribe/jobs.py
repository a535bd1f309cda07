"""Transcription jobs that stop when nobody is listening.

A `Job` runs `transcribe_file` in a worker thread and hands its progress to one consumer, like
faster-whisper's lazy segments: the work goes on only while the consumer keeps coming back for
more. When the consumer closes the job, or does not come back for `CONSUMER_TIMEOUT` seconds
(a browser tab closed, a client gone), the job is cancelled: no new chunk is sent, requests in
flight are not retried, and every chunk that finished is cached, so running again sends only
what is missing. `running()` counts the jobs whose work has not really stopped yet, so a server
can keep its job limit honest while an abandoned job winds down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Iterator

from ..config import Settings
from .pipeline import transcribe_file
from .progress import Progress
from ..transcript import Transcript

log = logging.getLogger(__name__)

CONSUMER_TIMEOUT = 2.0  # seconds a consumer may stay away before the job is cancelled
WATCH_INTERVAL = 0.2  # seconds between two looks at the consumer

_live: set["Job"] = set()
_live_lock = threading.Lock()
_DONE = object()


def running() -> int:
    """Jobs in this process whose work has not stopped (cancelled ones included, until they have)."""
    with _live_lock:
        return len(_live)


class Job:
    """`transcribe_file(path, settings, **kw)` in the background; iterate it, or `poll` it."""

    def __init__(self, path: Path, settings: Settings, *, consumer_timeout: float = CONSUMER_TIMEOUT, **kw):
        self.cancel = threading.Event()
        self.finished = threading.Event()  # set when the work has really stopped
        self._events: queue.Queue = queue.Queue()
        self._timeout = consumer_timeout
        self._seen = time.monotonic()  # when the consumer last asked for events
        self._waiting = 0  # consumers blocked in `next`: they are there, even if nothing comes
        self._over = False
        with _live_lock:
            _live.add(self)
        threading.Thread(target=self._work, args=(Path(path), settings, kw), name="job", daemon=True).start()
        threading.Thread(target=self._watch, name="job-watch", daemon=True).start()

    def _work(self, path: Path, settings: Settings, kw: dict) -> None:
        try:
            self._events.put(transcribe_file(path, settings, self._events.put, cancel=self.cancel, **kw))
        except BaseException as e:  # handed to the consumer
            self._events.put(e)
        finally:  # free the place first: a consumer may hand it on as soon as it has the result
            with _live_lock:
                _live.discard(self)
            self.finished.set()
            self._events.put(_DONE)

    def _watch(self) -> None:
        while not self.finished.wait(WATCH_INTERVAL):
            if not self._waiting and time.monotonic() - self._seen > self._timeout:
                log.info("the consumer of a job went away: stopping it")
                self.cancel.set()
                return

    def close(self) -> None:
        """Stop: nothing new is sent; what is in flight finishes and is cached."""
        self.cancel.set()

    def _take(self, item: object) -> Progress | Transcript | None:
        if item is _DONE:
            self._over = True
            return None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def poll(self) -> list[Progress | Transcript]:
        """What happened since the last call, without blocking (for an async consumer that
        polls); the last item is the transcript once it is done. Errors are raised here."""
        self._seen = time.monotonic()
        out = []
        while True:
            try:
                item = self._take(self._events.get_nowait())
            except queue.Empty:
                break
            if item is not None:
                out.append(item)
        return out

    @property
    def over(self) -> bool:
        """True once every event, the transcript or the error included, was handed out."""
        return self._over

    def __iter__(self) -> Iterator[Progress | Transcript]:
        try:
            while not self._over:
                self._waiting += 1
                try:
                    item = self._events.get()
                finally:
                    self._waiting -= 1
                    self._seen = time.monotonic()
                taken = self._take(item)
                if taken is not None:
                    yield taken
        finally:  # closed early (generator closed, garbage collected, an error in the consumer)
            if not self._over:
                self.close()
