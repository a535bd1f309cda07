"""Files given as base64 data URLs ("data:audio/mpeg;base64,..."), as the MCP tool takes them.

A data URL is decoded into a file a piece at a time (`Base64File`): memory holds one piece, never
the file. A large one arriving in a request body is decoded there, as the body streams in (by the
web server's body filter, `ui/bodies.py`), and the rest of the app is handed a short reference in
its place (`spooled`): an unguessable token that this process alone can turn back into the file
(`claim`), once.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shutil
import threading
from pathlib import Path

from ..errors import AppError, TooLarge

PIECE = 1 << 16  # characters of base64 decoded at a time
REFERENCE = "spooled-data-url:"  # what a data URL decoded by the body filter becomes
NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
NOT_BASE64_TEXT = "A file given as a data URL must be base64-encoded."


def not_base64() -> AppError:
    return AppError(NOT_BASE64_TEXT)


def over_limit(max_bytes: int) -> TooLarge:
    return TooLarge("The file is over the {limit:g} MB limit.", limit=round(max_bytes / 2**20, 1))


class Base64File:
    """Base64 text fed in pieces (`feed`), decoded into `path` as it comes, up to `max_bytes`.
    The first fault (not base64, a file over the limit) is kept in `error`: what comes after is
    ignored and the file removed, so that the caller can read the rest of its input and then say
    what was wrong."""

    def __init__(self, path: Path, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        self.size = 0
        self.error: AppError | None = None
        self._pending = b""  # fewer than 4 characters: the start of the next group
        self._padded = False  # "=" ended the text: nothing may follow
        self._out = open(path, "wb")

    def feed(self, text: bytes) -> None:
        if self.error is not None or not text:
            return
        data = self._pending + text
        cut = len(data) // 4 * 4
        group, self._pending = data[:cut], data[cut:]
        try:
            if self._padded or NOT_BASE64.search(data):
                raise ValueError
            decoded = base64.b64decode(group, validate=True)  # "=" only at a group's end
        except (ValueError, binascii.Error):
            return self.fail(not_base64())
        self._padded = group.endswith(b"=")
        self.size += len(decoded)
        if self.size > self.max_bytes:
            return self.fail(over_limit(self.max_bytes))
        self._out.write(decoded)

    def close(self) -> AppError | None:
        """Finish the file; the fault, if there was one (the file is then gone)."""
        if self.error is None and self._pending:
            self.fail(not_base64())
        self._out.close()
        return self.error

    def fail(self, error: AppError) -> None:
        """Give up with `error` (the first one stays): the file goes."""
        self.error = self.error or error
        self._out.close()
        self.path.unlink(missing_ok=True)


def split(media: str) -> tuple[str, str]:
    """A data URL's header ("data:audio/mpeg;base64") and its base64 text; an `AppError` when it
    is not base64."""
    header, _, payload = media.partition(",")
    if ";base64" not in header:
        raise not_base64()
    return header, payload


def decode_to_file(payload: str, path: Path, max_bytes: int) -> Path:
    """A data URL's base64 text decoded into `path` a piece at a time; an `AppError` when it is
    not base64 or decodes to more than `max_bytes`."""
    if len(payload) // 4 * 3 > max_bytes + 3:
        raise over_limit(max_bytes)
    sink = Base64File(path, max_bytes)
    for start in range(0, len(payload), PIECE):
        sink.feed(payload[start:start + PIECE].encode("ascii", "replace"))  # "?" is not base64
    if (error := sink.close()) is not None:
        raise error
    return path


# The files the body filter decoded, by token: this process's own, each claimed once.
_spooled: dict[str, tuple[Path, AppError | None]] = {}
_lock = threading.Lock()


def spooled(path: Path, error: AppError | None) -> str:
    """The reference that stands in a request for the data URL decoded into `path` (or that
    failed with `error`): an unguessable token that only this process can claim."""
    token = secrets.token_urlsafe(32)
    with _lock:
        for old in [t for t, (p, _) in _spooled.items() if not p.parent.exists()]:
            del _spooled[old]  # its folder expired unclaimed
        _spooled[token] = (path, error)
    return REFERENCE + token


def claim(reference: str, target: Path, max_bytes: int) -> Path:
    """The file a reference stands for, moved to `target` (its folder removed); an `AppError`
    for a reference this process did not make, or already claimed, or whose data URL failed or
    decoded to more than `max_bytes`."""
    with _lock:
        path, error = _spooled.pop(reference[len(REFERENCE):], (None, None))
    if error is not None:
        raise error
    if path is None or not path.exists():
        raise AppError("That file is no longer here: send it again.")
    too_big = path.stat().st_size > max_bytes
    if not too_big:
        os.replace(path, target)
    shutil.rmtree(path.parent, ignore_errors=True)
    if too_big:
        raise over_limit(max_bytes)
    return target
