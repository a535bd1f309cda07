"""An answer as one stream of events, for a caller that shows it while it is made: `Reading`
while the parts of a long recording are read (a question about all of it), then the answer's
text piece by piece.

The answer's own stream blocks while the parts are read; it is iterated in a thread, so the
caller hears of each part as it is done.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Union

from ..config import Settings
from ..transcript import Transcript
from .chat import Reply, ask

_END = object()


@dataclass(frozen=True)
class Reading:
    """`done` of `parts` of the transcript read, before the answer is written."""

    done: int
    parts: int


class Answer:
    """Iterate it for `Reading` events and the answer's pieces (str); errors are raised there.
    The request is sent when it is made (see `chat.ask`)."""

    def __init__(self, transcript: Transcript, question: str, history: Iterable[dict] | None, settings: Settings):
        self._events: queue.Queue = queue.Queue()
        self.reply: Reply = ask(transcript, question, history, settings,
                                on_progress=lambda done, parts: self._events.put(Reading(done, parts)))

    def __iter__(self) -> Iterator[Union[Reading, str]]:
        threading.Thread(target=self._pump, daemon=True).start()
        while (item := self._events.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _pump(self) -> None:
        try:
            for piece in self.reply.stream:
                self._events.put(piece)
        except BaseException as e:
            self._events.put(e)
        self._events.put(_END)

    def notice_in(self, lang: str | None) -> str | None:
        """What to say with the answer (read once the answer is done), in the visitor's language."""
        return self.reply.notice_in(lang)
