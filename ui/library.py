"""The Library tab: the visitor's recordings listed, opened, renamed and removed; searched and
asked across, each result and citation opening its recording at its moment, playing.

Whose library (`core.library.owners`): a signed-in user's own, from any browser; else, on a
single-user app, this machine's; on a shared server, the visitor's own, under an owner id their
browser keeps sealed (`owner`). A recording
joins it when the page shows it (`held`, chained after every event that shows one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import gradio as gr

from core.job import Jobs, visitor_settings
from core.library import LOCAL
from core.library.owners import SORTS, SPANS, TOOLS, Shelf, single_user, visitor_owner
from core.library.sync import open_library
from core.i18n import to_visitor, tr
from core.transcript import format_timestamp

from . import library_views as views
from .handlers import PageHandlers
from .labels import I18N
from .layout import BROWSER_WRAPPING, Page
from .state import recent_entries, remember, sealed
from .status import failure, lang_of, status_html
from .views import file_url
from .visitor import user_of, visitor_of

OWNER_KEY = "talk-to-your-audio-library"  # the browser's storage key for the visitor's sealed owner id
PRIVATE = {"api_visibility": "private"}


@dataclass
class LibraryTab:
    owner: gr.BrowserState
    filter: gr.Textbox
    sort: gr.Dropdown
    listing: gr.HTML
    pick: gr.Dropdown  # the recording to rename or remove
    title: gr.Textbox
    rename: gr.Button
    remove: gr.Button
    chosen: gr.Dropdown  # the recordings a search or a question covers (none: all)
    span: gr.Dropdown  # when they were added (`owners.SPANS`)
    query: gr.Textbox
    hits: gr.HTML
    question: gr.Textbox
    answer: gr.HTML
    status: gr.HTML
    seek: gr.Textbox  # {"src", "t"}: where the recording just opened should play from


def owner_state() -> gr.BrowserState:
    """Where the visitor's browser keeps their sealed owner id. Outside every tab: a browser
    state in a tab not yet shown is neither read from nor written to the browser's storage."""
    return gr.BrowserState("", storage_key=OWNER_KEY, secret=BROWSER_WRAPPING)


def lay_out(owner: gr.BrowserState) -> LibraryTab:
    """The tab's components (called inside its `gr.Tab`)."""
    status = gr.HTML("", elem_id="library-status")
    with gr.Row(equal_height=True, elem_id="library-scope-row"):
        chosen = gr.Dropdown([], value=[], multiselect=True, label=I18N("library_scope"), elem_id="library-scope",
                             scale=3)
        span = gr.Dropdown([(I18N(f"library_span_{s}"), s) for s in SPANS], value="any", label=I18N("library_span"),
                           elem_id="library-span", scale=1, min_width=160)
    with gr.Row(equal_height=True):
        query = gr.Textbox(label=I18N("library_search"), max_length=500, submit_btn=True, elem_id="library-search",
                           scale=1)
        question = gr.Textbox(label=I18N("library_ask"), max_length=2000, submit_btn=True, elem_id="library-ask",
                              scale=1)
    with gr.Row(equal_height=False):
        hits = gr.HTML("", elem_id="library-hits", js_on_load=views.OPEN_JS)
        answer = gr.HTML("", elem_id="library-answer", js_on_load=views.OPEN_JS)
    with gr.Row(equal_height=True):
        filter_ = gr.Textbox(label=I18N("library_filter"), max_length=200, elem_id="library-filter", scale=3)
        sort = gr.Dropdown([(I18N(f"library_sort_{s}"), s) for s in SORTS], value="newest",
                           label=I18N("library_sort"), elem_id="library-sort", scale=1, min_width=140)
    listing = gr.HTML("", elem_id="library-list", js_on_load=views.OPEN_JS)
    with gr.Row(equal_height=False, elem_id="library-edit"):
        pick = gr.Dropdown([], label=I18N("library_pick"), elem_id="library-pick", scale=3)
        title = gr.Textbox(label=I18N("library_title"), max_length=200, elem_id="library-title", scale=2)
        rename = gr.Button(I18N("rename"), size="sm", elem_id="library-rename", scale=0, min_width=90)
        remove = gr.Button(I18N("library_remove"), size="sm", variant="stop", elem_id="library-remove", scale=0,
                           min_width=90)
    seek = gr.Textbox(visible=False)
    return LibraryTab(owner, filter_, sort, listing, pick, title, rename, remove, chosen, span, query, hits, question,
                      answer, status, seek)


class LibraryHandlers:
    def __init__(self, jobs: Jobs, page: Page, tab: LibraryTab, tabs: gr.Tabs, shown: PageHandlers,
                 local: bool | None = None):
        self.jobs, self.page, self.tab, self.tabs, self.shown = jobs, page, tab, tabs, shown
        self.local = single_user() if local is None else local
        jobs.library_owner = LOCAL if self.local else None  # what the API and tools transcribe joins it too
        self.library = open_library(jobs.base)

    def shelf(self, owner_value, request: gr.Request | None) -> tuple[Shelf, str | None]:
        """The visitor's library, and the sealed owner id to keep in their browser when it is new.
        Signed in, theirs wherever they sign in (on a single-user app too: sign-in means several
        people); the sealed id of an anonymous visitor is kept for when they are one again."""
        if user := user_of(request):
            return Shelf(self.jobs, user, self.library), None
        if self.local:
            return Shelf(self.jobs, LOCAL, self.library), None
        owner, new = visitor_owner(self.jobs.key, owner_value)
        return Shelf(self.jobs, owner, self.library), new

    def listed(self, shelf: Shelf, text: str, sort: str, lang: str, chosen=None) -> dict:
        """The recordings as listed, and the menus that name them (those `chosen` still there stay chosen)."""
        entries = shelf.entries(text, sort if sort in SORTS else "newest")
        everything = entries if not (text or "").strip() else shelf.entries()
        menu = views.choices(everything)
        return {self.tab.listing: views.listing(entries, lang, filtered=bool((text or "").strip())),
                self.tab.pick: gr.update(choices=menu, value=None), self.tab.title: "",
                self.tab.chosen: gr.update(choices=menu, value=views.still_there(chosen, everything))}

    def held(self, current, remembered, owner_value, text, sort, chosen, request: gr.Request):
        """The recording the page shows joins the visitor's library, titled by its file's name,
        with its player's copy: when it is the last of their recent recordings (one removed from
        the library is no longer there); then the library as listed."""
        shelf, new = self.shelf(owner_value, request)
        entries = recent_entries(self.jobs, remembered, user_of(request))
        if current is not None and entries and self.jobs.public_id(current.transcript) == entries[-1].id:
            shelf.hold(current.transcript, media=current.media.path.name if current.media else entries[-1].media)
        return {**self.listed(shelf, text, sort, lang_of(request), chosen), **({self.tab.owner: new} if new else {})}

    def refresh(self, owner_value, text, sort, chosen, request: gr.Request):
        shelf, new = self.shelf(owner_value, request)
        return {**self.listed(shelf, text, sort, lang_of(request), chosen), **({self.tab.owner: new} if new else {})}

    def opened(self, owner_value, remembered, current, evt: gr.EventData, request: gr.Request):
        """A recording opened from the library (a title, a sentence found, a citation): its player,
        transcript, summary and chat on the Recording tab, playing from the moment clicked."""
        lang, data = lang_of(request), getattr(evt, "_data", None) or {}
        shelf, _ = self.shelf(owner_value, request)
        rec = data.get("rec") if isinstance(data, dict) else None
        if (listed := shelf.recording(rec)) is None:
            return {self.tab.status: status_html(tr(lang, "That recording is not in your library."), "error")}
        entry = next((e for e in recent_entries(self.jobs, remembered, user_of(request)) if e.id == rec), None)
        done = self.jobs.reopen(rec, (entry and entry.media) or shelf.player(rec), entry.speakers if entry else None)
        if done is None:
            return {self.tab.status: status_html(tr(lang, "That recording is no longer on this server."), "error")}
        done = replace(done, transcript=replace(done.transcript, source=listed.title))  # named as listed
        try:
            seconds = max(0.0, float(data.get("t") or 0))
        except (TypeError, ValueError):
            seconds = 0.0
        speakers = (entry.speakers or None) if entry else None
        return {**self.shown.show(done, current, lang, history=list(entry.chat) if entry else [], speakers=speakers),
                self.page.recent: remember(self.jobs, remembered, done.transcript, done.media, user=user_of(request)),
                self.tabs: gr.Tabs(selected="recording"), self.tab.status: "",
                self.tab.seek: json.dumps({"src": file_url(done.media.path) if done.media else "", "t": seconds})}

    def search(self, text, chosen, span, owner_value, request: gr.Request):
        """The sentences found in the recordings chosen (none: all) added in the span chosen."""
        lang = lang_of(request)
        if not (text or "").strip():
            return ""
        shelf, _ = self.shelf(owner_value, request)
        return views.hits(shelf.search(text, **shelf.scope(chosen, span)), lang, text, bool(chosen) or span != "any")

    def ask(self, question, chosen, span, owner_value, api_key, request: gr.Request):
        """An answer from the visitor's recordings in scope (as for `search`), streamed, citing
        recording and moment."""
        lang = lang_of(request)
        shelf, _ = self.shelf(owner_value, request)
        try:
            settings = visitor_settings(self.jobs.base, api_key)
            self.jobs.asking(visitor_of(request, self.jobs.base), settings, question)  # the visitor's budget
            reply = shelf.ask(question, settings, **shelf.scope(chosen, span))
            text = ""
            for piece in reply.stream:
                text += piece
                yield {self.tab.answer: views.answer(text, reply.sources), self.tab.status: ""}
            notices = [to_visitor(n, lang) for n in reply.notices]
            yield {self.tab.answer: views.answer(text, reply.sources, notices)}
        except Exception as e:
            yield {self.tab.status: status_html(failure(e, lang), "error")}

    def picked(self, public_id, owner_value, request: gr.Request):
        shelf, _ = self.shelf(owner_value, request)
        return next((e.recording.title for e in shelf.entries() if e.id == public_id), "")

    def retitled(self, public_id, title, owner_value, text, sort, chosen, request: gr.Request):
        lang = lang_of(request)
        shelf, _ = self.shelf(owner_value, request)
        try:
            shelf.rename(public_id, title)
        except Exception as e:
            return {self.tab.status: status_html(failure(e, lang), "error")}
        return {**self.listed(shelf, text, sort, lang, chosen), self.tab.status: ""}

    def removed(self, public_id, owner_value, remembered, text, sort, chosen, request: gr.Request):
        """Out of the visitor's library (and of their recent recordings, so that a reload does
        not bring it back); its cached files go when no one else's library holds it."""
        lang = lang_of(request)
        shelf, _ = self.shelf(owner_value, request)
        if not public_id or not shelf.remove(public_id):
            return {self.tab.status: status_html(tr(lang, "Choose a recording of your library first."), "error")}
        kept = [e for e in recent_entries(self.jobs, remembered, user_of(request)) if e.id != public_id]
        return {**self.listed(shelf, text, sort, lang, chosen), self.page.recent: sealed(self.jobs, kept,
                                                                                           user_of(request)),
                self.tab.status: status_html(tr(lang, "Removed from your library."), "done")}


def held_step(h: LibraryHandlers) -> dict:
    """The step chained after each event that shows a recording (see `page.build_app`)."""
    t = h.tab
    return {"fn": h.held, "inputs": [h.page.state, h.page.recent, t.owner, t.filter, t.sort, t.chosen],
            "outputs": [t.owner, t.listing, t.pick, t.title, t.chosen], "show_progress": "hidden",
            "concurrency_limit": None,
            **PRIVATE}


def wire(h: LibraryHandlers, tab_item: gr.Tab, summary_step: dict, asking: dict) -> None:
    """The tab's events; opening a recording also runs the page's summary step; a question
    waits for one of the `asking` places (MAX_CONCURRENT_ASKS)."""
    t, p = h.tab, h.page
    listed = [t.listing, t.pick, t.title, t.chosen, t.owner]
    for trigger in (tab_item.select, t.filter.change, t.sort.change):
        trigger(h.refresh, [t.owner, t.filter, t.sort, t.chosen], listed, concurrency_limit=None,
                show_progress="hidden", **PRIVATE)
    for html_view in (t.listing, t.hits, t.answer):
        html_view.click(h.opened, [t.owner, p.recent, p.state],
                        [*p.shown, h.tabs, t.status, t.seek], concurrency_limit=None,
                        show_progress="hidden", **PRIVATE
                        ).then(None, [t.seek], None, js=views.SEEK_JS, **PRIVATE).then(**summary_step)
    for trigger in (t.query.submit, t.chosen.input, t.span.input):  # a new scope: the words searched again
        trigger(h.search, [t.query, t.chosen, t.span, t.owner], t.hits, concurrency_limit=None,
                show_progress="minimal", **PRIVATE)
    t.question.submit(h.ask, [t.question, t.chosen, t.span, t.owner, p.user_key], [t.answer, t.status], **asking,
                      show_progress="minimal", **PRIVATE)
    t.pick.change(h.picked, [t.pick, t.owner], t.title, queue=False, show_progress="hidden", **PRIVATE)
    for trigger in (t.rename.click, t.title.submit):
        trigger(h.retitled, [t.pick, t.title, t.owner, t.filter, t.sort, t.chosen],
                [t.listing, t.pick, t.title, t.chosen, t.status], concurrency_limit=None, show_progress="hidden",
                **PRIVATE)
    t.remove.click(h.removed, [t.pick, t.owner, p.recent, t.filter, t.sort, t.chosen],
                   [t.listing, t.pick, t.title, t.chosen, t.status, p.recent], concurrency_limit=None,
                   show_progress="hidden", **PRIVATE)


class LibraryTools:
    """Search and ask across recordings, for AI agents: scoped to the recordings whose ids the
    caller gives (those `transcribe_recording` returned); no ids means a signed-in caller's own
    library, or on a single-user app this machine's. Their docstrings are what the agents read."""

    def __init__(self, jobs: Jobs, local: bool):
        self.jobs, self.local = jobs, local
        self.library = open_library(jobs.base)

    def _scope(self, recording_ids, request, lang: str) -> tuple[Shelf, list[str] | None]:
        """A signed-in caller's own library (the ids given join it); else the local one on a
        single-user app when no ids are given; else only the recordings of the ids given."""
        ids = [recording_ids] if isinstance(recording_ids, str) else list(recording_ids or [])
        user = user_of(request)
        if not ids and (user or self.local):
            return Shelf(self.jobs, user or LOCAL, self.library), None
        if not ids:
            raise gr.Error(tr(lang, "Give the ids of the recordings to search (transcribe_recording returns them)."))
        shelf = Shelf(self.jobs, user or TOOLS, self.library)
        try:
            return shelf, shelf.reach(ids)
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None

    def search_recordings(self, query: str, recording_ids: list[str] = [], request: gr.Request = None) -> str:  # noqa: B006
        """Find the sentences of several transcribed recordings that say something: the words
        (ranked; "quoted words" for a phrase), and, where the server can, what they mean.

        Args:
            query: the words to look for, in any language.
            recording_ids: the ids transcribe_recording returned, of the recordings to search.

        Returns:
            JSON: a list, best first, of {"recording_id", "title", "seconds" (where the sentence
            starts), "time" ("mm:ss"), "speaker" (or null), "text"}.
        """
        lang = lang_of(request)
        shelf, ids = self._scope(recording_ids, request, lang)
        return json.dumps([{"recording_id": f.id, "title": f.hit.title, "seconds": round(f.hit.start, 2),
                            "time": format_timestamp(f.hit.start), "speaker": f.hit.speaker, "text": f.hit.text}
                           for f in shelf.search(query or "", ids)], ensure_ascii=False)

    def ask_across_recordings(self, question: str, recording_ids: list[str] = [],  # noqa: B006
                              request: gr.Request = None) -> str:
        """Answer a question from several transcribed recordings, only from what was said in them.

        Args:
            question: the question, in any language.
            recording_ids: the ids transcribe_recording returned, of the recordings to ask.

        Returns:
            JSON: {"answer": the answer, citing the moments it used as [title · mm:ss],
            "sources": {each title cited: its recording_id}}.
        """
        lang = lang_of(request)
        shelf, ids = self._scope(recording_ids, request, lang)
        try:
            self.jobs.asking(visitor_of(request, self.jobs.base, page=False), self.jobs.base, question)
            reply = shelf.ask(question, self.jobs.base, ids)
            text = "".join(reply.stream)
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None
        notices = " ".join(f"({to_visitor(n, lang)})" for n in reply.notices)
        return json.dumps({"answer": f"{text}\n\n{notices}" if notices else text, "sources": reply.sources},
                          ensure_ascii=False)
