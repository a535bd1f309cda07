"""Talk to your Audio, in the browser: builds the page (`ui`) and launches it. The work is done in `core`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from core.config import Settings
from core import signin
from core.errors import AppError
from core.i18n import LANGUAGES, tr
from core.job import Jobs
from core.service import budget, models, sdk
from ui.bodies import limited_bodies
from ui.labels import I18N
from core.library.owners import single_user
from ui.page import build_app, media_routes
from ui.sessions import forgetting_sessions
from ui.visitor import McpCaller

ASSETS = Path(__file__).parent / "assets"


def launch_options(settings: Settings, jobs: Jobs) -> dict:
    """What `launch()` needs besides the address: the page's language, its player script and
    style, the upload limit, the route the players' files are served from, an MCP caller's
    address kept for its tool calls (`McpCaller`), request bodies within bounds, and API
    clients' idle sessions forgotten."""
    script = (ASSETS / "player.js").read_text(encoding="utf-8")
    return {"i18n": I18N, "theme": gr.themes.Soft(), "head": f"<script>{script}</script>",
            "css": "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("player.css", "app.css")),
            "max_file_size": int(settings.max_file_mb * 1024 * 1024),  # refused before it reaches the disk
            "app_kwargs": {"routes": media_routes(settings),
                           "middleware": [Middleware(McpCaller, trusted_proxies=settings.trusted_proxies or 0),
                                          limited_bodies(settings, jobs.folders)],
                           "lifespan": forgetting_sessions(settings.session_ttl_minutes * 60)}}


def sign_in_options(settings: Settings) -> dict:
    """`launch()`'s sign-in: APP_USERS' accounts through Gradio's login page (its message in
    every language of the page); Hugging Face's needs nothing here (the page's LoginButton),
    but an `AppError` when it cannot work on this machine."""
    if settings.sign_in == "huggingface":
        signin.huggingface_ready()
    if not settings.users_file:
        return {}
    message = "".join(f'<p lang="{lang}">{tr(lang, "Sign in to reach your library of recordings.")}</p>'
                      for lang in LANGUAGES)
    return {"auth": signin.checker(signin.read_users(settings.users_file)), "auth_message": message}


def quiet_loggers() -> None:
    """Requests to the service are not worth a line each (the OpenAI client logs through `httpx2`)."""
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Talk to your Audio, in the browser.")
    parser.add_argument("--share", action="store_true", help="also make a temporary public link")
    parser.add_argument("--host", help="address to listen on (GRADIO_SERVER_NAME, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (GRADIO_SERVER_PORT, default 7860)")
    parser.add_argument("--mcp", action="store_true", help="also serve the tools to AI agents over MCP "
                                                            "(or GRADIO_MCP_SERVER=true), at /gradio_api/mcp/")
    args = parser.parse_args(argv)
    sdk.start()  # the openai package imports while the page is built (about a second)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_loggers()
    try:
        settings = budget.resolved(Settings.from_env(), args.host or os.environ.get("GRADIO_SERVER_NAME"), os.environ)
        signed = sign_in_options(settings)
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    logging.getLogger("app").info("visitors' budget %s (BUDGET=%s)", settings.budget,
                                  os.environ.get("BUDGET", "auto") or "auto")
    models.prefetch(settings)  # the first visitor's notice need not wait for the lookups
    jobs = Jobs(settings)
    demo = build_app(settings, jobs, single_user(args.host, args.share))  # whose library: this machine's, or each visitor's
    _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                          mcp_server=True if args.mcp else None,  # None: GRADIO_MCP_SERVER
                                          prevent_thread_lock=True, **launch_options(settings, jobs), **signed)
    if args.share and not share_url:
        print("Could not create a public link (no internet access, or the tunnel is blocked). "
              f"The app is still running locally at {local_url}", file=sys.stderr, flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
