"""Who a request comes from, for the budget (`core.service.budget`): a page's session, or an API
or tool caller's address (behind TRUSTED_PROXIES proxies, as X-Forwarded-For says).

Gradio runs an MCP tool call as a second request from this machine that copies the caller's
headers, and uvicorn takes X-Forwarded-For from a request from this machine as the caller's
address: left alone, every agent would be 127.0.0.1, or whatever address it wrote into the
header. `McpCaller` therefore writes the caller's address, found by our own rule, into that
header of the MCP request itself, which the tool's request then carries.
"""

from __future__ import annotations

import gradio as gr

from core.config import Settings
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
