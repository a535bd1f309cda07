"""The page: layout (`layout.lay_out`), then wiring: which handler each event calls, with which
components, in which queue. The handlers are in `handlers` (the page) and `api` (programs)."""

from __future__ import annotations

import gradio as gr

from core.cache import kept_secret
from core.config import Settings
from core.job import Jobs

from .api import ApiHandlers, Tools
from .handlers import PageHandlers
from .layout import Page, lay_out

PRIVATE = {"api_visibility": "private"}  # the page's own events: not offered to API clients


def build_app(base: Settings, jobs: Jobs | None = None) -> gr.Blocks:
    """The page over `jobs` (made from `base` if not given). Gradio's copies of uploads and
    downloads go once SESSION_TTL_MINUTES old, like the work folder's files."""
    jobs = jobs or Jobs(base)
    jobs.folders.start()
    gr.set_static_paths([str(jobs.cache.media_folder)])  # the players' copies and captions, by content name
    ttl = max(1, int(base.session_ttl_minutes * 60))
    with gr.Blocks(title="Talk to your Audio", delete_cache=(min(60, ttl), ttl)) as demo:
        page = lay_out(base, kept_secret(base.cache_dir))
        handlers = PageHandlers(jobs, page)
        _offer_tools(Tools(jobs), base.max_jobs)
        _wire_input(page, handlers)
        _wire_processing(page, handlers, base.max_jobs)
        _wire_api(page, ApiHandlers(jobs), base.max_jobs)
        demo.unload(handlers.stop)
        demo.load(handlers.notice, None, page.notice, queue=False, show_progress="hidden", **PRIVATE)
        demo.load(handlers.restore, [page.recent], page.shown, show_progress="hidden", **PRIVATE
                  ).then(**_summary_step(page, handlers))
        _wire_chat(page, handlers)
        _wire_speakers(page, handlers)
    return demo


def _wire_input(page: Page, h: PageHandlers) -> None:
    for name, tab in page.tabs.items():
        tab.select(lambda name=name: name, None, page.source, queue=False, **PRIVATE)
    for chosen in (page.upload, page.recording, page.link):
        chosen.change(h.changed, [chosen, page.state], [page.loaded, page.status], queue=False,
                      show_progress="hidden", **PRIVATE)
    page.user_key.change(h.language_menu, [page.user_key, page.language], page.language, queue=False,
                         show_progress="hidden", **PRIVATE)


def _summary_step(page: Page, h: PageHandlers) -> dict:
    return {"fn": h.summarize, "inputs": [page.state, page.summarize, page.user_key],
            "outputs": [page.summary_view, page.status, *page.downloads], "show_progress": "hidden",
            "concurrency_limit": None, **PRIVATE}


def _wire_processing(page: Page, h: PageHandlers, max_jobs: int) -> None:
    """A click checks the cache at once (no limit); only a recording that needs work sets the
    ticket, whose job then waits in Gradio's queue for one of MAX_CONCURRENT_JOBS slots (waiting
    visitors see their place; a waiting job holds no thread). `trigger_mode="once"`: a click while
    it runs starts nothing."""
    inputs = [page.upload, page.recording, page.link, page.source, page.language, page.speakers, page.vocabulary,
              page.user_key, page.state, page.recent]
    page.process.click(h.begin, inputs, [*page.shown, page.ticket], concurrency_limit=None, show_progress="hidden",
                       trigger_mode="once", **PRIVATE).then(**_summary_step(page, h))
    page.ticket.change(h.run, [page.ticket, page.state, page.recent], page.shown, concurrency_limit=max_jobs,
                       concurrency_id="transcribe", show_progress="minimal", show_progress_on=[page.status],
                       **PRIVATE).then(**_summary_step(page, h))


def _wire_speakers(page: Page, h: PageHandlers) -> None:
    """A count chosen after the transcript is made finds the speakers again from the cached voice
    prints; a speaker picked (in the list, or by a click on their name in the transcript: see
    `assets/player.js`) can be renamed."""
    relabelled = [page.state, page.transcript_view, page.summary_view, *page.speaker_parts, *page.downloads]
    page.speakers.change(h.respeak, [page.speakers, page.state, page.recent], [*relabelled, page.recent],
                         concurrency_limit=None, show_progress="hidden", **PRIVATE)
    page.speaker_pick.change(h.picked, [page.speaker_pick, page.state], page.speaker_name, queue=False,
                             show_progress="hidden", **PRIVATE)
    for trigger in (page.rename.click, page.speaker_name.submit):
        trigger(h.renamed, [page.speaker_pick, page.speaker_name, page.state], relabelled, concurrency_limit=None,
                show_progress="hidden", **PRIVATE)


def _wire_chat(page: Page, h: PageHandlers) -> None:
    page.question.submit(h.ask, [page.question, page.chatbot, page.state, page.user_key, page.recent],
                         [page.chatbot, page.question, page.status, page.recent], concurrency_limit=None,
                         show_progress="hidden", **PRIVATE)
    page.clear.click(h.cleared, [page.state, page.recent], [page.recent], queue=False, **PRIVATE)


def _offer_tools(tools: Tools, max_jobs: int) -> None:
    """Tools for AI agents (MCP, and any API client): stateless, the recording's id carries the context."""
    gr.api(tools.transcribe_recording, api_name="transcribe_recording", concurrency_limit=max_jobs,
           concurrency_id="transcribe")
    gr.api(tools.ask_about_recording, api_name="ask_about_recording", concurrency_limit=None)
    gr.api(tools.summary_of_recording, api_name="summary_of_recording", concurrency_limit=None)
    gr.api(tools.rename_speaker, api_name="rename_speaker", concurrency_limit=None)


def _wire_api(page: Page, api: ApiHandlers, max_jobs: int) -> None:
    """`/transcribe` and `/ask` keep a client's session (gradio_client); undocumented: callable,
    but not offered as MCP tools, whose calls share no session."""
    a = page.api
    a.transcribe.click(api.transcribe, [page.upload, page.link, page.language, page.vocabulary, page.user_key,
                                        a.state], [a.state, a.status, a.text, a.files], api_name="transcribe",
                       api_visibility="undocumented", concurrency_limit=max_jobs, concurrency_id="transcribe")
    a.ask.click(api.ask, [a.question, page.user_key, a.state], [a.state, a.answer], api_name="ask",
                api_visibility="undocumented", concurrency_limit=None)
