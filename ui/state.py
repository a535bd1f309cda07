"""What the page keeps per browser tab (`Session`, on the server), and what a visitor's own browser
keeps of their recent recordings (`Recent`: public ids and conversations only). The browser holds
them sealed by the server (`core.seal`, with a key the page never sees): it can neither read nor
change them, and a value that does not unseal counts as nothing. What unseals is still checked.
A signed-in user's list is sealed for them (`user`): on a browser people share, one user's
recent recordings do not open for the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.answer import chat
from core.audio.playback import Playback
from core.job import Jobs, remove_folder
from core.render import unlink_citations
from core.seal import is_keyed
from core.speakers.attach import count_of
from core.transcript import Transcript

RECENT_KEEP = 5  # recordings remembered in a visitor's browser (ids only, and their conversation)
RECENT_CHAT_TURNS = 40  # messages kept per recording in the browser
RECENT_CHAT_CHARS = 6000  # characters kept per message there (localStorage holds ~5 MB per site)
RECENT_PURPOSE = "recent"  # what the browser's value is sealed for (a value sealed for another use does not open)


@dataclass
class Session:
    """The recording a tab shows: its transcript, the folder of its exports (removed with the
    session), the player's copy, the conversation of API clients, and whether its summary ran."""

    transcript: Transcript
    folder: Path
    media: Playback | None = None
    api_history: list[dict] = field(default_factory=list)
    summarized: bool = False
    speakers: str = "auto"  # the speakers asked for: "auto", "off", a count


def forget(session: Session | None) -> None:
    """The session is over (or shows another recording): its exports go."""
    if session is not None:
        remove_folder(session.folder)


@dataclass(frozen=True)
class Recent:
    """One recording in a visitor's browser: its public id, the name of the player's copy, the chat."""

    id: str
    media: str = ""
    chat: tuple[dict, ...] = ()
    speakers: str = ""  # the speakers asked for ("auto", "3", "off"); "" for the server's setting

    def to_json(self) -> dict:
        return {"id": self.id, "media": self.media, "chat": list(self.chat), "speakers": self.speakers}


def _purpose(user: str | None) -> str:
    """What the list is sealed for: a signed-in user's (their owner id), or an anonymous visitor's."""
    return f"{RECENT_PURPOSE}\0{user}" if user else RECENT_PURPOSE


def recent_entries(jobs: Jobs, value, user: str | None = None) -> list[Recent]:
    """What the browser sent, unsealed and checked; nothing when it does not unseal (forged,
    edited, from another server or another signed-in user, or from a version that did not seal it)."""
    entries = []
    value = jobs.key.unseal(value, _purpose(user))
    for e in value if isinstance(value, list) else []:
        if isinstance(e, dict) and is_keyed(e.get("id")):
            turns = [m for m in e.get("chat") or [] if isinstance(m, dict) and m.get("role") in
                     ("user", "assistant") and isinstance(m.get("content"), str)]
            speakers = str(e.get("speakers") or "")[:8]
            entries.append(Recent(e["id"], str(e.get("media") or "")[:200], tuple(turns[-RECENT_CHAT_TURNS:]),
                                  speakers if count_of(speakers) or speakers == "off" else ""))
    return entries[-RECENT_KEEP:]


def sealed(jobs: Jobs, entries: list[Recent], user: str | None = None) -> str:
    """The value the browser keeps: the entries sealed by the server (for `user`, signed in)."""
    return jobs.key.seal([e.to_json() for e in entries], _purpose(user))


def remember(jobs: Jobs, value, transcript: Transcript, media: Playback | None, history=None,
             speakers: str | None = None, user: str | None = None) -> str:
    """The browser's list with this recording last (and its conversation, when given), sealed."""
    entries = recent_entries(jobs, value, user)
    tid = jobs.public_id(transcript)
    if not tid:
        return sealed(jobs, entries, user)
    old = next((e for e in entries if e.id == tid), None)
    turns = old.chat if old else ()
    if history is not None:
        turns = tuple({"role": m["role"], "content": m["content"][:RECENT_CHAT_CHARS]}
                      for m in plain_history(history))[-RECENT_CHAT_TURNS:]
    entry = Recent(tid, media.path.name if media else (old.media if old else ""), turns,
                   speakers if speakers is not None else (old.speakers if old else ""))
    return sealed(jobs, [e for e in entries if e.id != tid][-(RECENT_KEEP - 1):] + [entry], user)


def plain_history(history) -> list[dict]:
    """The conversation as plain messages, citations unlinked (as the model wrote them)."""
    return [{"role": m["role"], "content": unlink_citations(m["content"])} for m in chat.flatten_history(history)]
