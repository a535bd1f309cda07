"""Whose library, and one owner's library as the app shows it: recordings named by their
public ids (`core.seal`), never by their cache keys.

On a single-user app (listening on the loopback only, not a Space, no share link) the library
is `LOCAL`: everything this machine transcribed. On a server people share, each visitor's
browser keeps a random owner id sealed by the server (`visitor_owner`): nobody can read, guess
or change it, and the recordings their browser transcribes or opens are held under it. An agent
(MCP, gradio_client) has no owner: it reaches the recordings whose public ids it gives
(`Shelf.reach`), held under `TOOLS`, and only those; on a single-user app, no ids means the
local library. When the owner turns sign-in on, a signed-in user's library is theirs from any
browser or client (`user_owner`): on a single-user app too, since sign-in means several people.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from ..errors import AppError
from ..seal import ServerKey, is_keyed, is_served_name
from ..transcript import Transcript
from . import USER, ask, sync
from .store import Hit, Library, Recording

OWNER_PURPOSE = "library-owner"  # what a visitor's owner id is sealed for
VISITOR = "visitor:"  # a visitor's owner id: this, then 32 random hex digits
MAX_NAME = 128  # characters of a signed-in name; a longer one is no one's
TOOLS = "tools"  # the owner of what agents reached: read only through the ids they give
SORTS = ("newest", "oldest", "title", "longest")
SPANS = ("any", "today", "week", "month", "year")  # when the recordings a search or a question covers were added
NO_SUCH_ID = "No recording has that id here: transcribe it first."


def single_user(host: str | None = None, share: bool = False, environ=None) -> bool:
    """Whether the app serves one person: it listens on the loopback only (`host`, else
    GRADIO_SERVER_NAME, else Gradio's 127.0.0.1), is not a Hugging Face Space and makes no share link."""
    env = os.environ if environ is None else environ
    if share or env.get("SPACE_ID"):
        return False
    host = (host or env.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def user_owner(name) -> str | None:
    """The owner id of the library of whoever signed in as `name`: the same from every browser
    and client. The prefix keeps it apart from `LOCAL`, `TOOLS` and visitors' ids. None (not
    signed in) for anything a sign-in does not give: not a string, empty, over `MAX_NAME`
    characters, or with control characters."""
    if not isinstance(name, str):
        return None
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        return None
    return USER + name


def visitor_owner(key: ServerKey, value) -> tuple[str, str | None]:
    """The owner id sealed in a visitor's browser; or, when it holds none that unseals, a new
    random one with its sealed value for the browser to keep (else None)."""
    owner = key.unseal(value, OWNER_PURPOSE)
    if isinstance(owner, str) and owner.startswith(VISITOR) and len(owner) == len(VISITOR) + 32:
        return owner, None
    owner = VISITOR + secrets.token_hex(16)
    return owner, key.seal(owner, OWNER_PURPOSE)


def added_since(span: str, now: float | None = None) -> float | None:
    """The start (Unix time) of a span of `SPANS` that ends `now`, in this server's time zone
    (the one the listing's dates are in): today from midnight, the last 7 or the last 30 days,
    this year from 1 January; None for any time, or a span that is not one of them."""
    at = datetime.fromtimestamp(time.time() if now is None else now)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    start = {"today": midnight, "week": at - timedelta(days=7), "month": at - timedelta(days=30),
             "year": midnight.replace(month=1, day=1)}.get(span)
    return start.timestamp() if start else None


@dataclass(frozen=True)
class Entry:
    """A recording of the library, with the id its owner is given for it."""

    id: str  # public
    recording: Recording


@dataclass(frozen=True)
class Found:
    id: str  # public
    hit: Hit


class Shelf:
    """One owner's library through the app's cache and key (`core.job.Jobs`)."""

    def __init__(self, jobs, owner: str, library: Library | None = None):
        self.jobs, self.owner = jobs, owner
        self.library = library or sync.open_library(jobs.base)

    # Ids: public outside, cache keys inside

    def public(self, internal: str, keep: bool = True) -> str:
        """The public id of a recording; `keep`: recorded in the cache, so that `Jobs.recording`
        finds the transcript by it (a listing does not: `internal` records the one opened)."""
        public = self.jobs.key.public_id(internal)
        if keep:
            self.jobs.cache.put_alias(public, internal)
        return public

    def internal(self, public_id) -> str | None:
        """The cache key of a public id of a recording this owner holds; None for anything else."""
        if not is_keyed(public_id):
            return None
        key = self.jobs.cache.get_alias(public_id)
        if key is None or not hmac.compare_digest(self.jobs.key.public_id(key), public_id):
            key = next((r.id for r in self.library.recordings(self.owner)
                        if hmac.compare_digest(self.public(r.id, keep=False), public_id)), None)
            if key is None:
                return None
            self.jobs.cache.put_alias(public_id, key)
        return key if self.library.holds(self.owner, key) else None

    # Holding

    def hold(self, transcript: Transcript, title: str | None = None, media: str | None = None) -> None:
        """Put a cached transcript in this owner's library (indexed first if the index lacks it),
        and remember the name of its player's copy."""
        key = transcript.meta.id
        if not key:
            return
        title = title or transcript.source or f"Recording of {datetime.now():%Y-%m-%d %H:%M}"  # never its cache key
        sync.saved(self.jobs.base, transcript, self.owner, title, fresh=False)
        if media and is_served_name(media):
            self.jobs.cache.put_player(key, media)  # under the cache's cap, like aliases

    def recording(self, public_id: str) -> Recording | None:
        """The recording as this owner's library lists it (its title, their own)."""
        key = self.internal(public_id)
        return next(iter(self.library.recordings(self.owner, [key])), None) if key else None

    def player(self, public_id: str) -> str | None:
        """The name of the player's copy last made of the recording (it may have been evicted since)."""
        key = self.internal(public_id)
        name = self.jobs.cache.get_player(key) if key else None
        return name if name and is_served_name(name) else None

    def reach(self, public_ids: Iterable[str]) -> list[str]:
        """The cache keys of recordings an agent names by their public ids, held under this
        owner (their title: the public id, which the agent knows) so that they can be searched;
        an `AppError` for any id this server did not give."""
        keys = []
        for public in dict.fromkeys(p.strip() if isinstance(p, str) else "" for p in public_ids):
            transcript = self.jobs.recording(public)
            if transcript is None:
                raise AppError(NO_SUCH_ID)
            if not self.library.holds(self.owner, transcript.meta.id):
                self.hold(transcript, public)
            keys.append(transcript.meta.id)
        return keys

    # Reading

    def scope(self, public_ids: Iterable[str] | None = None, span: str = "any", now: float | None = None) -> dict:
        """What a search or a question of the page covers, as `search` and `ask` take it: the
        recordings chosen by their public ids (none chosen: all of them; an id this owner does
        not hold is left out, so a choice of none of theirs covers nothing), added in `span`."""
        chosen = [public_ids] if isinstance(public_ids, str) else list(public_ids or [])
        ids = [k for k in (self.internal(p) for p in dict.fromkeys(chosen)) if k] if chosen else None
        return {"ids": ids, "since": added_since(span, now), "until": None}

    def entries(self, text: str = "", sort: str = "newest") -> list[Entry]:
        """The owner's recordings whose title, summary, speakers or language hold `text`, sorted."""
        words = (text or "").casefold().split()
        found = [r for r in self._still_cached(self.library.recordings(self.owner))
                 if all(w in " ".join([r.title, r.summary, r.language or "", *r.speakers]).casefold()
                        for w in words)]
        order = {"oldest": lambda r: r.added, "title": lambda r: r.title.casefold(),
                 "longest": lambda r: -r.duration}.get(sort, lambda r: -r.added)
        return [Entry(self.public(r.id, keep=False), r) for r in sorted(found, key=order)]

    def _still_cached(self, recordings: list[Recording]) -> list[Recording]:
        """The recordings whose transcripts the cache still has; the others (evicted from an
        anonymous visitor's library, or deleted by hand) leave the index, having nothing to open."""
        kept = []
        for r in recordings:
            if self.jobs.cache.made(r.id) is None:
                self.library.forget(r.id)
            else:
                kept.append(r)
        return kept

    def search(self, text: str, ids: Iterable[str] | None = None, limit: int = 20, since: float | None = None,
               until: float | None = None) -> list[Found]:
        """The owner's sentences that match `text` (words, and meaning where the library has
        vectors), of the recordings `ids` (cache keys; None: all) added from `since` to `until`."""
        return [Found(self.public(h.recording), h)
                for h in sync.search(self.library, self.owner, text, limit, ids=ids, since=since, until=until)]

    def ask(self, question: str, settings, ids: Iterable[str] | None = None, since: float | None = None,
            until: float | None = None) -> ask.Answer:
        """The answer from the owner's recordings (in scope as for `search`); its `sources` name public ids."""
        answer = ask.ask(self.library, self.owner, question, settings, ids=ids, since=since, until=until)
        answer.sources = {title: self.public(key) for title, key in answer.sources.items()}
        return answer

    # Changing

    def rename(self, public_id: str, title: str) -> bool:
        key = self.internal(public_id)
        if not (title or "").strip():
            raise AppError("A title cannot be empty.")
        return bool(key) and self.library.retitle(self.owner, key, title.strip()[:200])

    def remove(self, public_id: str) -> bool:
        """Take a recording out of this owner's library; when no one else's holds it, what the
        server keeps of it goes too (`sync.forget`). False if the owner did not hold it."""
        key = self.internal(public_id)
        return key is not None and sync.remove(self.jobs.base, self.owner, key, self.library)
