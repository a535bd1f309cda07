"""Who a request comes from, for the budget (`core.service.budget`): a page's session, or an API
or tool caller's address (behind TRUSTED_PROXIES proxies, as X-Forwarded-For says)."""

from __future__ import annotations

import gradio as gr

from core.config import Settings
from core.service.budget import Visitor, client_address


def visitor_of(request: gr.Request | None, base: Settings, *, page: bool = True) -> Visitor:
    """The page's visitor is their session (and their address); an API or tool caller, whose
    client chooses its session at will, is their address alone."""
    client = getattr(request, "client", None)
    headers = getattr(request, "headers", None)
    address = client_address(getattr(client, "host", None), headers.get("x-forwarded-for") if headers else None,
                             base.trusted_proxies or 0)
    return Visitor(getattr(request, "session_hash", None) if page else None, address)
