"""Who a request comes from: for the budget (`core.service.budget`), a page's session, or an API
or tool caller's address (behind TRUSTED_PROXIES proxies, as X-Forwarded-For says); for the
library, the name they signed in with, if they did (`signed_in`).

Gradio runs an MCP tool call as a second request from this machine that copies the caller's
headers, and uvicorn takes X-Forwarded-For from a request from this machine as the caller's
address: left alone, every agent would be 127.0.0.1, or whatever address it wrote into the
header. `McpCaller` therefore writes the caller's address, found by our own rule, into that
header of the MCP request itself, which the tool's request then carries.
"""

from __future__ import annotations

import time

import gradio as gr

from core.config import Settings
from core.library.owners import user_owner
from core.service.budget import Visitor, client_address

MCP_PATH = "/gradio_api/mcp"


def visitor_of(request: gr.Request | None, base: Settings, *, page: bool = True) -> Visitor:
    """The page's visitor is their session (and their address); an API or tool caller, whose
    client chooses its session at will, is their address alone."""
    client = getattr(request, "client", None)
    headers = getattr(request, "headers", None)
    address = client_address(getattr(client, "host", None), headers.get("x-forwarded-for") if headers else None,
                             base.trusted_proxies or 0)
    return Visitor(getattr(request, "session_hash", None) if page else None, address)


def signed_in(request: gr.Request | None) -> str | None:
    """The name the request's user signed in with: at Gradio's login page (`launch(auth=...)`,
    API clients too), or with Hugging Face (the LoginButton's session, until it expires, read
    as Gradio reads it for a `gr.OAuthProfile`); None when they did not."""
    if request is None:
        return None
    if name := getattr(request, "username", None):
        return name
    scope = getattr(getattr(request, "request", None), "scope", None)
    session = scope.get("session") if isinstance(scope, dict) else None
    info = session.get("oauth_info") if isinstance(session, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("userinfo"), dict):
        return None
    expires = info.get("expires_at")
    if isinstance(expires, (int, float)) and expires < time.time():
        return None
    return info["userinfo"].get("preferred_username")


def user_of(request: gr.Request | None) -> str | None:
    """The owner id of the signed-in user's library (`owners.user_owner`); None when anonymous."""
    return user_owner(signed_in(request))


class McpCaller:
    """ASGI middleware: an MCP request's X-Forwarded-For becomes its caller's address alone."""

    def __init__(self, app, trusted_proxies: int = 0):
        self.app, self.trusted_proxies = app, trusted_proxies

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith(MCP_PATH):
            headers = [(k, v) for k, v in scope["headers"] if k != b"x-forwarded-for"]
            written = b", ".join(v for k, v in scope["headers"] if k == b"x-forwarded-for").decode("latin-1")
            address = client_address((scope.get("client") or (None,))[0], written, self.trusted_proxies)
            if address:
                headers.append((b"x-forwarded-for", address.encode("latin-1")))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
