"""The page: layout (`layout.lay_out`), then wiring: which handler each event calls, with which
components, in which queue. The handlers are in `handlers` (the page) and `api` (programs)."""

from __future__ import annotations

import mimetypes

import gradio as gr
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from core.audio.playback import MIME
from core.cache import Cache
from core.config import Settings
from core.job import Jobs
from core.seal import is_served_name

from . import library
from .api import ApiHandlers, Tools
from .handlers import PageHandlers
from .labels import I18N
from .layout import Page, lay_out
from .views import MEDIA_ROUTE

PRIVATE = {"api_visibility": "private"}  # the page's own events: not offered to API clients
ASKING = "ask"  # answers and summaries share MAX_CONCURRENT_ASKS places (apart from the transcriptions)


def build_app(base: Settings, jobs: Jobs | None = None, single_user: bool | None = None) -> gr.Blocks:
    """The page over `jobs` (made from `base` if not given). Gradio's copies of uploads and
    downloads go once SESSION_TTL_MINUTES old, like the work folder's files, looked for every
    quarter of that (so none outlives it by more than a quarter). `single_user`: the
    library is this machine's, not each visitor's (None: when the app listens on the loopback
    only and is not a Space, `owners.single_user`)."""
    jobs = jobs or Jobs(base)
    jobs.folders.start()
    ttl = max(1, int(base.session_ttl_minutes * 60))
    with gr.Blocks(title="Talk to your Audio", delete_cache=(max(1, min(60, ttl // 4)), ttl)) as demo:
        owner = library.owner_state()
        _sign_in_row(base)
        with gr.Tabs(elem_id="main-tabs") as tabs:
            with gr.Tab(I18N("recording_tab"), id="recording", elem_id="recording-tab"):
                page = lay_out(base)
            with gr.Tab(I18N("library_tab"), id="library", elem_id="library-tab") as library_tab:
                shelf = library.lay_out(owner)
        handlers = PageHandlers(jobs, page)
        lib = library.LibraryHandlers(jobs, page, shelf, tabs, handlers, single_user)
        _offer_tools(Tools(jobs), base, library.LibraryTools(jobs, lib.local))
        _wire_input(page, handlers)
        _wire_processing(page, handlers, base, library.held_step(lib))
        _wire_api(page, ApiHandlers(jobs), base)
        demo.unload(handlers.stop)
        demo.load(handlers.notice, None, page.notice, queue=False, show_progress="hidden", **PRIVATE)
        demo.load(handlers.restore, [page.recent], page.shown, show_progress="hidden", **PRIVATE
                  ).then(**library.held_step(lib)).then(**_summary_step(page, handlers, base))
        library.wire(lib, library_tab, _summary_step(page, handlers, base), _asking(base))
        _wire_chat(page, handlers, base)
        _wire_speakers(page, handlers)
    return demo.queue(max_size=base.queue_size)  # more waiting than QUEUE_SIZE are turned away


def _sign_in_row(base: Settings) -> None:
    """With sign-in on (a signed-in user's library is theirs from any browser): Hugging Face's
    button, which signs in and out; or, after Gradio's login page (APP_USERS), a way out of this
    browser only (Gradio's /logout would sign the user out of every browser)."""
    if base.sign_in == "off" and not base.users_file:
        return
    with gr.Row(elem_id="sign-in-row"):
        if base.sign_in == "huggingface":
            gr.LoginButton(elem_id="sign-in", size="sm", scale=0, min_width=220)
        else:
            gr.Button(I18N("sign_out"), link="logout?all_session=false", size="sm", scale=0, min_width=120,
                      elem_id="sign-out")


def _wire_input(page: Page, h: PageHandlers) -> None:
    for name, tab in page.tabs.items():
        tab.select(lambda name=name: name, None, page.source, queue=False, **PRIVATE)
    for chosen in (page.upload, page.recording, page.link):
        chosen.change(h.changed, [chosen, page.state], [page.loaded, page.status], queue=False,
                      show_progress="hidden", **PRIVATE)
    page.user_key.change(h.language_menu, [page.user_key, page.language], page.language, queue=False,
                         show_progress="hidden", **PRIVATE)


def _asking(base: Settings) -> dict:
    return {"concurrency_limit": base.max_asks, "concurrency_id": ASKING}


def _summary_step(page: Page, h: PageHandlers, base: Settings) -> dict:
    return {"fn": h.summarize, "inputs": [page.state, page.summarize, page.user_key],
            "outputs": [page.summary_view, page.status, *page.downloads], "show_progress": "hidden",
            **_asking(base), **PRIVATE}


def _wire_processing(page: Page, h: PageHandlers, base: Settings, held: dict) -> None:
    """A click checks the cache at once (no limit); only a recording that needs work sets the
    ticket, whose job then waits in Gradio's queue for one of MAX_CONCURRENT_JOBS slots (waiting
    visitors see their place; a waiting job holds no thread). `trigger_mode="once"`: a click while
    it runs starts nothing."""
    inputs = [page.upload, page.recording, page.link, page.source, page.language, page.speakers, page.vocabulary,
              page.user_key, page.state, page.recent]
    page.process.click(h.begin, inputs, [*page.shown, page.ticket], concurrency_limit=None, show_progress="hidden",
                       trigger_mode="once", **PRIVATE).then(**held).then(**_summary_step(page, h, base))
    page.ticket.change(h.run, [page.ticket, page.state, page.recent], page.shown, concurrency_limit=base.max_jobs,
                       concurrency_id="transcribe", show_progress="minimal", show_progress_on=[page.status],
                       **PRIVATE).then(**held).then(**_summary_step(page, h, base))


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


def _wire_chat(page: Page, h: PageHandlers, base: Settings) -> None:
    page.question.submit(h.ask, [page.question, page.chatbot, page.state, page.user_key, page.recent],
                         [page.chatbot, page.question, page.status, page.recent], show_progress="hidden",
                         **_asking(base), **PRIVATE)
    page.clear.click(h.cleared, [page.state, page.recent], [page.recent], queue=False, **PRIVATE)


def _offer_tools(tools: Tools, base: Settings, across: "library.LibraryTools") -> None:
    """Tools for AI agents (MCP, and any API client): stateless, the recording's id carries the context."""
    gr.api(tools.transcribe_recording, api_name="transcribe_recording", concurrency_limit=base.max_jobs,
           concurrency_id="transcribe")
    gr.api(tools.ask_about_recording, api_name="ask_about_recording", **_asking(base))
    gr.api(tools.summary_of_recording, api_name="summary_of_recording", **_asking(base))
    gr.api(tools.rename_speaker, api_name="rename_speaker", concurrency_limit=None)
    gr.api(across.search_recordings, api_name="search_recordings", concurrency_limit=None)
    gr.api(across.ask_across_recordings, api_name="ask_across_recordings", **_asking(base))


def _wire_api(page: Page, api: ApiHandlers, base: Settings) -> None:
    """`/transcribe` and `/ask` keep a client's session (gradio_client); undocumented: callable,
    but not offered as MCP tools, whose calls share no session."""
    a = page.api
    a.transcribe.click(api.transcribe, [page.upload, page.link, page.language, page.vocabulary, page.user_key,
                                        a.state], [a.state, a.status, a.text, a.files], api_name="transcribe",
                       api_visibility="undocumented", concurrency_limit=base.max_jobs, concurrency_id="transcribe")
    a.ask.click(api.ask, [a.question, page.user_key, a.state], [a.state, a.answer], api_name="ask",
                api_visibility="undocumented", **_asking(base))


def media_routes(base: Settings) -> list[Route]:
    """The route of the players' copies and captions (`launch(app_kwargs={"routes": ...})`):
    `media/<name>` serves a file of the cache's media folder by its keyed name (`core.seal`), with
    range requests for seeking; any other name, and every other file of the cache, is not found.
    The URL holds no path of the server's disk and no hash a visitor could compute."""
    cache = Cache(base.cache_dir, max_bytes=int(base.cache_max_mb * 2**20))

    def serve(request: Request) -> Response:  # a plain function: Starlette runs it in a thread
        name = request.path_params["name"]
        path = cache.media(name) if is_served_name(name) else None
        if path is None:
            return PlainTextResponse("Not found", status_code=404)
        kind = "text/vtt" if path.suffix == ".vtt" else MIME.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        return FileResponse(path, media_type=kind, headers={"X-Content-Type-Options": "nosniff",
                                                            "Cache-Control": "private, max-age=3600"})

    return [Route(f"/{MEDIA_ROUTE}/{{name}}", serve, methods=["GET", "HEAD"])]
