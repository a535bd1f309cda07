"""Request bodies within bounds, in front of the whole web app (an ASGI middleware).

Every body is limited (MAX_REQUEST_MB): one whose Content-Length says more, or that brings more
while it streams in, is refused with a 413 and a plain sentence, before the app reads it.

A large JSON body (an MCP call or an API call carrying a recording as a data URL) is read here,
a piece at a time: each long `data:...;base64,` string in it is decoded into a file of the work
folder as it arrives, and the app gets the body with a short reference in its place
(`core.audio.dataurl`), which the tool turns back into the file. The base64 text is never whole
in memory: memory stays within a few pieces, whatever the file's size.
"""

from __future__ import annotations

import json
import re
from starlette.middleware import Middleware

from core.audio.dataurl import Base64File, not_base64, spooled
from core.i18n import language_of, tr
from core.config import Settings
from core.service.housekeeping import WorkFolders

READ_WHOLE_ABOVE = 1 << 20  # bytes: a JSON body this big, or of unknown length, is read here
SPOOL_ABOVE = 1 << 16  # characters of base64 that make a data URL worth a file
INLINE_LIMIT = 16 << 20  # bytes of such a body kept in memory besides its data URLs
MAX_HEADER = 256  # characters of a data URL's header ("data:audio/mpeg;base64")
_START = b'"data:'
_HEADER_END = re.compile(rb'[,"\\]')
_PAYLOAD_END = re.compile(rb"[^A-Za-z0-9+/=]")
_STRING_END = re.compile(rb'["\\]')
TOO_LARGE = "This request is over the server's limit of {limit:g} MB."


class Oversized(Exception):
    """The body is over a limit: refuse it."""


class DataUrls:
    """A JSON body fed in pieces, given back (`close`) with each long base64 data URL string
    replaced by a reference to the file it was decoded into (in a folder of `folders`)."""

    def __init__(self, folders: WorkFolders, max_file_bytes: int):
        self.folders, self.max_file_bytes = folders, max_file_bytes
        self.body = bytearray()
        self._carry = b""  # the end of a piece that may begin what the next one ends
        self._state = self._outside
        self._header = bytearray()
        self._small = bytearray()  # a data URL's text until it is long enough for a file
        self._sink: Base64File | None = None

    def feed(self, piece: bytes) -> None:
        data, self._carry = self._carry + piece, b""
        pos = 0
        while pos < len(data) and not self._carry:
            pos = self._state(data, pos)
        if len(self.body) + len(self._small) > INLINE_LIMIT:
            raise Oversized

    def close(self) -> bytes:
        """The body for the app. One that ends inside a data URL is not JSON: the app is given
        what it can refuse as such (the file being written goes)."""
        if self._state != self._outside:
            self.abort()
            self.body += self._header + self._small
        self.body += self._carry
        return bytes(self.body)

    def abort(self) -> None:
        """The body is refused: the file being written goes."""
        if self._sink is not None:
            self._sink.close()
            self.folders.remove(self._sink.path.parent)
            self._sink = None

    def _outside(self, data: bytes, pos: int) -> int:
        i = data.find(_START, pos)
        if i < 0:
            keep = max(pos, len(data) - len(_START) + 1)
            self.body += data[pos:keep]
            self._carry = data[keep:]
            return len(data)
        self.body += data[pos:i + 1]
        self._header = bytearray(b"data:")
        self._state = self._in_header
        return i + len(_START)

    def _in_header(self, data: bytes, pos: int) -> int:
        m = _HEADER_END.search(data, pos)
        end = m.start() if m else len(data)
        self._header += data[pos:end]
        mark = data[end:end + 1]
        if mark == b"\\" and end + 1 == len(data):
            self._carry = data[end:]
            return len(data)
        if mark == b"\\" and data[end + 1:end + 2] == b"/":  # JSON may write "/" as "\/"
            self._header += b"/"
            return end + 2
        if len(self._header) > MAX_HEADER or mark in (b'"', b"\\"):
            self.body += self._header  # not a data URL of ours: as it was
            self._state = self._outside
            return end
        if m is None:
            return end
        self._header += b","
        self._state = self._in_payload if b";base64" in self._header else self._outside
        if self._state == self._outside:
            self.body += self._header
        return end + 1

    def _in_payload(self, data: bytes, pos: int) -> int:
        m = _PAYLOAD_END.search(data, pos)
        end = m.start() if m else len(data)
        self._take(data[pos:end])
        if m is None:
            return end
        if data[end:end + 1] == b'"':
            self._finish()
            return end + 1
        if data[end:end + 1] == b"\\":  # JSON may write "/" as "\/"
            if end + 1 == len(data):
                self._carry = data[end:]
                return len(data)
            if data[end + 1:end + 2] == b"/":
                self._take(b"/")
                return end + 2
        self._fail()  # not base64: the rest of the string is kept (small) or skipped (in a file)
        return end

    def _rest(self, data: bytes, pos: int) -> int:
        """The rest of a string that is not base64, escapes and all."""
        m = _STRING_END.search(data, pos)
        end = m.start() if m else len(data)
        if self._sink is None:
            self._small += data[pos:end]
        if m is None:
            return end
        if data[end:end + 1] == b"\\":
            if end + 1 == len(data):
                self._carry = data[end:]
                return len(data)
            if self._sink is None:
                self._small += data[end:end + 2]
            return end + 2
        self._finish()
        return end + 1

    def _take(self, text: bytes) -> None:
        if self._sink is not None:
            self._sink.feed(text)
            return
        self._small += text
        if len(self._small) > SPOOL_ABOVE:
            folder = self.folders.new("spool-", held=True)
            self._sink = Base64File(folder / "data", self.max_file_bytes)
            self._sink.feed(bytes(self._small))
            self._small = bytearray()

    def _fail(self) -> None:
        if self._sink is not None:
            self._sink.fail(not_base64())
        self._state = self._rest

    def _finish(self) -> None:
        if self._sink is None:
            self.body += self._header + self._small + b'"'
        else:
            error = self._sink.close()
            self.body += spooled(self._sink.path, error).encode() + b'"'
            self.folders.release(self._sink.path.parent)
            self._sink = None
        self._header, self._small = bytearray(), bytearray()
        self._state = self._outside


class LimitedBodies:
    """The ASGI middleware: `limit` bytes per request body, large JSON bodies read here."""

    def __init__(self, app, limit: int, max_file_bytes: int, folders: WorkFolders):
        self.app, self.limit, self.max_file_bytes, self.folders = app, limit, max_file_bytes, folders

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        try:
            length = int(headers.get(b"content-length", b"") or -1)
        except ValueError:
            length = -1
        if length > self.limit:
            return await self._refuse(headers, send)
        json_body = headers.get(b"content-type", b"").split(b";")[0].strip() in (b"application/json", b"")
        if json_body and (length < 0 or length > READ_WHOLE_ABOVE):
            return await self._read_here(scope, receive, send, headers)
        return await self._counted(scope, receive, send, headers)

    async def _counted(self, scope, receive, send, headers):
        """The app reads the body itself; past the limit it sees the client leave, and the
        client gets the refusal."""
        seen, refused = 0, False

        async def counting():
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    await self._refuse(headers, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not refused:
                await send(message)

        await self.app(scope, counting, guarded)

    async def _read_here(self, scope, receive, send, headers):
        reader = DataUrls(self.folders, self.max_file_bytes)
        seen = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    reader.abort()
                    return  # the client left
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise Oversized
                reader.feed(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = reader.close()
        except Oversized:
            reader.abort()
            return await self._refuse(headers, send)
        new_headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        new_headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": new_headers}, replay, send)

    async def _refuse(self, headers, send):
        lang = language_of(headers.get(b"accept-language", b"").decode("latin-1"))
        text = tr(lang, TOO_LARGE, limit=round(self.limit / 2**20, 1))
        body = json.dumps({"error": text}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def limited_bodies(settings: Settings, folders: WorkFolders) -> Middleware:
    """The middleware for `launch(app_kwargs={"middleware": [...]})`: Gradio adds its own around it."""
    return Middleware(LimitedBodies, limit=settings.max_request_bytes,
                      max_file_bytes=int(settings.max_file_mb * 2**20), folders=folders)

