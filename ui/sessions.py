"""Gradio's sessions of API clients, forgotten once idle: Gradio keeps a copy of the page's
components for every session until a tab closes, and a program calling the API never opens one."""

from __future__ import annotations

import asyncio
import datetime
import logging
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


def forgetting_sessions(ttl_seconds: float):
    """A lifespan for the app (`app_kwargs={"lifespan": ...}`): every quarter of the time to
    live, the sessions Gradio keeps (a copy of the page's components each) that have nothing left
    in them and were not used for the time to live are dropped: API clients never close a tab,
    and their sessions would otherwise stay until Gradio's 10,000th."""

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(_forget_sessions(app.state_holder, ttl_seconds))
        try:
            yield
        finally:
            task.cancel()

    return lifespan


async def _forget_sessions(holder, ttl_seconds: float) -> None:
    while True:
        await asyncio.sleep(max(1.0, ttl_seconds / 4))
        now = datetime.datetime.now()
        with holder.lock:
            idle = [sid for sid, state in holder.session_data.items() if not state.state_data
                    and (now - holder.time_last_used.get(sid, now)).total_seconds() > ttl_seconds]
            for sid in idle:
                del holder.session_data[sid]
                holder.time_last_used.pop(sid, None)
        if idle:
            log.info("forgot %d idle session(s)", len(idle))
