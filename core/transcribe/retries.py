"""One chunk sent to the backend, retried on its own: only what the service or the network did
wrong is retried, after the wait it asks for (Retry-After) or an exponential backoff, each attempt
holding a place in the job's `InFlight`."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from tenacity import (Retrying, retry_if_exception, stop_after_attempt, stop_when_event_set,
                      wait_exponential_jitter)

from ..audio.chunking import Chunk
from ..config import Settings
from ..errors import Cancelled, ServiceError
from ..i18n import Text
from ..service.client import MAX_RETRY_AFTER
from ..service.errors import BadResponse, explain
from ..service.sdk import openai
from ..transcript import Segment, format_timestamp
from .backends.base import Backend
from .ratelimit import InFlight

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0  # seconds between two attempts at most: 1, 2, 4 ... 60 s rides out a few minutes


def span(chunk: Chunk) -> str:
    """The part of the recording a chunk answers for, as in messages: "0:03:00–0:06:00"."""
    return f"{format_timestamp(chunk.keep_start, hours=True)}–{format_timestamp(chunk.keep_end, hours=True)}"


def transcribe_with_retries(backend: Backend, chunk: Chunk, settings: Settings, inflight: InFlight,
                            cancel: threading.Event, on_segment: Callable[[Segment], None] | None = None
                            ) -> tuple[list[Segment], str | None]:
    """One chunk, retried on its own. Only what the service or the network did wrong is retried
    (our own bugs are not paid for nine times), and nothing is retried once the job is cancelled."""
    where = span(chunk)
    backoff = wait_exponential_jitter(multiplier=settings.retry_base_delay, max=MAX_BACKOFF,
                                      jitter=settings.retry_base_delay)

    def wait_for(state) -> float:
        exc = state.outcome.exception()
        asked = getattr(exc, "retry_after", None)
        if asked is not None and asked <= MAX_RETRY_AFTER:
            return asked
        return backoff(state)

    def attempt():
        sent_in = inflight.acquire(cancel, chunk.index)
        if sent_in is None:
            raise Cancelled("Stopped before {span} was sent.", span=where)
        abandoned = False
        try:
            result = backend.transcribe_chunk(chunk, on_segment)
            inflight.succeeded(sent_in)
            return result
        except (openai.OpenAIError, BadResponse) as e:
            abandoned = isinstance(e, openai.APITimeoutError)
            model = backend.model  # the one in force, after a switch
            error = explain(e, settings, model=model, what=Text("Transcribing {span}", span=where))
            if isinstance(e, openai.RateLimitError) and error.retryable:  # not an exhausted quota
                inflight.throttled(sent_in, error.retry_after)
            raise error from e
        finally:
            inflight.release(abandoned)

    retrying = Retrying(
        stop=stop_after_attempt(settings.max_retries + 1) | stop_when_event_set(cancel),
        retry=retry_if_exception(lambda e: isinstance(e, ServiceError) and e.retryable),
        wait=wait_for,
        sleep=cancel.wait,  # a cancel ends the wait at once, and the next attempt sends nothing
        reraise=True,
        before_sleep=lambda s: log.info("retrying %s (attempt %d): %s", where, s.attempt_number,
                                        s.outcome.exception()),
    )
    return retrying(attempt)

