"""The page's handlers: each calls `core`, and maps what it returns to the page's components.

`PageHandlers` holds the job path and the components (`Page`), so a handler can be called in a
plain test with a built page and no browser. Handlers return `{component: value}` for the
components they change; an error becomes the status line, and the rest of the page stays usable.
"""

from __future__ import annotations

import gradio as gr

from core.answer import summary as summaries
from core.answer.answering import Answer, Reading
from core.job import Done, Event, Failed, Jobs, Progressed, Source, Stage, Ticket, job_settings, visitor_settings
from core import render
from core.i18n import piece_to_visitor, to_visitor, tr
from core.service import models

from . import views
from .labels import I18N
from .layout import Page
from .state import Session, forget, plain_history, recent_entries, remember, sealed
from .status import describe, failure, lang_of, language_choices, loaded_line, status_html, summary_line
from .visitor import user_of, visitor_of


def session_of(request: gr.Request | None) -> str | None:
    """The browser session's id (None outside a request, in tests)."""
    return getattr(request, "session_hash", None)


class PageHandlers:
    def __init__(self, jobs: Jobs, page: Page):
        self.jobs, self.base, self.page = jobs, jobs.base, page

    def show(self, done: Done, current: Session | None, lang: str, history: list[dict] | None = None,
             message: str | None = None, speakers: str | None = None, session: str | None = None) -> dict:
        """The page for a transcript: player, paragraphs, speakers, downloads, and the chat ready.
        The downloads' folder belongs to the browser `session`: it goes when the tab closes."""
        p, t = self.page, done.transcript
        forget(current)
        folder = self.jobs.folders.new("session-", owner=session)
        files = self.jobs.exports(t, folder)
        subtitles = self.jobs.captions(t) if done.media and done.media.kind == "video" else None
        return {
            p.state: Session(t, folder, done.media, speakers=speakers or self.base.diarization),
            **dict(zip(p.speaker_parts, views.speaker_parts(t))),
            p.summary_view: "",
            p.status: status_html(message or summary_line(t, lang), "done"),
            p.loaded: loaded_line(t, lang),
            p.player: views.player(done.media, subtitles, lang),
            p.transcript_view: render.transcript_html(t),
            **views.downloads(p.downloads, files),
            p.question: gr.update(interactive=True, placeholder=I18N("question_ready")),
            p.chatbot: views.linked_history(history or [], t),
            p.process: gr.update(interactive=True),
            p.results: gr.update(visible=True),
            p.input_panel: gr.update(open=False),
        }

    def failed(self, error: Exception, lang: str) -> dict:
        """The message in the status line; the rest of the page stays as it was, and usable."""
        return {self.page.status: status_html(failure(error, lang), "error"), self.page.process: gr.update(interactive=True)}

    def begin(self, file, recording, url, chosen, language_code, speakers, vocabulary_hint, api_key, current,
              remembered, request: gr.Request):
        """Check the input and the cache at once, before waiting for a job slot: a recording that
        is already transcribed is shown without queueing behind other visitors' jobs."""
        lang = lang_of(request)
        try:
            settings = job_settings(self.base, api_key, language_code, vocabulary_hint, speakers)
            work = self.jobs.prepare(Source.chosen(chosen, file, recording, url), settings,
                                     visitor=visitor_of(request, self.base))
        except Exception as e:
            return self.failed(e, lang)
        if isinstance(work, Done):
            message = f"{tr(lang, 'Loaded from the cache.')} {summary_line(work.transcript, lang)}"
            return {**self.show(work, current, lang, message=message, speakers=settings.diarization,
                                session=session_of(request)),
                    self.page.recent: remember(self.jobs, remembered, work.transcript, work.media,
                                               speakers=settings.diarization, user=user_of(request))}
        return {self.page.ticket: work, self.page.process: gr.update(interactive=False),
                self.page.status: status_html(tr(lang, "Waiting for a free slot…"), "progress")}

    async def run(self, ticket: Ticket | None, current, remembered, request: gr.Request):
        """A transcription in one of the MAX_CONCURRENT_JOBS slots of Gradio's queue."""
        if not ticket:
            return
        lang = lang_of(request)
        try:
            async for event in self.jobs.run(ticket, session=session_of(request), visitor=visitor_of(request, self.base)):
                yield self.on_event(event, current, remembered, lang, ticket.settings.diarization, session_of(request),
                                    user_of(request))
        except Exception as e:
            yield self.failed(e, lang)

    def on_event(self, event: Event, current, remembered, lang: str, speakers: str | None = None,
                 session: str | None = None, user: str | None = None) -> dict:
        p = self.page
        if isinstance(event, Done):
            speakers = speakers or self.base.diarization
            return {**self.show(event, current, lang, speakers=speakers, session=session),
                    p.recent: remember(self.jobs, remembered, event.transcript, event.media, speakers=speakers,
                                       user=user)}
        if isinstance(event, Failed):
            return self.failed(event.error, lang)
        if isinstance(event, Stage):
            return {p.status: status_html(to_visitor(event.text, lang), "progress", event.fraction)}
        return self.progressed(event, lang)

    def progressed(self, event: Progressed, lang: str) -> dict:
        """The status line, and the transcript so far while it grows."""
        p, pr = self.page, event.progress
        line = status_html(describe(pr, event.left, lang), "progress",
                           pr.fraction if pr.stage in ("sending", "transcribing") else None)
        if event.live is None:
            return {p.status: line}
        return {p.status: line, p.transcript_view: render.transcript_html(event.live),
                p.results: gr.update(visible=True)}

    def changed(self, chosen_value, current: Session | None, request: gr.Request):
        """A new input chosen: the results on screen are said to belong to the previous one."""
        if not current or not chosen_value:
            return gr.update(), gr.update()
        lang = lang_of(request)
        return (loaded_line(current.transcript, lang, stale=True),
                status_html(tr(lang, "New recording chosen: press Process to transcribe it."), "info"))

    def restore(self, remembered, request: gr.Request):
        """A reload (or a server restart): the visitor's last recording and conversation, from
        the sealed ids in their own browser and the server's cache. What their browser holds that
        does not unseal (forged, edited, from an older version) is replaced by an empty list."""
        lang = lang_of(request)
        idle = {self.page.status: status_html(tr(lang, "Choose a recording and press Process."), "info")}
        user = user_of(request)
        entries = recent_entries(self.jobs, remembered, user)
        if not entries:
            return {**idle, self.page.recent: sealed(self.jobs, [], user)}
        last = entries[-1]
        done = self.jobs.reopen(last.id, last.media, last.speakers)
        if done is None:  # gone from the cache (evicted, or another server)
            return {**idle, self.page.recent: sealed(self.jobs, entries[:-1], user)}
        return self.show(done, None, lang, history=list(last.chat), speakers=last.speakers or None,
                         session=session_of(request),
                         message=tr(lang, "Your last recording is back: ask away, or choose another above."))

    def respeak(self, speakers: str, current: Session | None, remembered, request: gr.Request):
        """Another count of speakers for the recording shown: found again from its cached voice
        prints (nothing is decoded or sent); the chat stays."""
        if not current or not speakers or speakers == current.speakers:
            return {}
        t = self.jobs.relabel(current.transcript, speakers)
        return {**self.relabelled(current, t, speakers, lang_of(request)),
                self.page.recent: remember(self.jobs, remembered, t, current.media, speakers=speakers,
                                           user=user_of(request))}

    def picked(self, label: str | None, current: Session | None):
        """A speaker chosen for renaming: their name, ready to edit."""
        return gr.update(value=current.transcript.meta.speakers.get(label, "") if current and label else "")

    def renamed(self, label: str | None, name: str, current: Session | None, request: gr.Request):
        """A speaker named everywhere: transcript, talking times, downloads, and what the chat sends."""
        if not current or not label:
            return {}
        t = self.jobs.rename(current.transcript, current.speakers, label, name)
        return self.relabelled(current, t, current.speakers, lang_of(request), selected=label)

    def relabelled(self, current: Session, t, speakers: str, lang: str, selected: str | None = None) -> dict:
        """The page after the speakers changed: transcript, talking times, summary, downloads (the chat stays)."""
        p = self.page
        current.transcript, current.speakers = t, speakers
        files = self.jobs.exports(t, current.folder)
        summary = summaries.current(t)
        return {p.state: current, p.transcript_view: render.transcript_html(t),
                p.summary_view: views.linked(summaries.as_markdown(summary, lang), t) if summary else gr.update(),
                **dict(zip(p.speaker_parts, views.speaker_parts(t, selected))),
                **views.downloads(p.downloads, files)}

    def cleared(self, current: Session | None, remembered, request: gr.Request):
        if not current:
            return gr.update()
        return remember(self.jobs, remembered, current.transcript, current.media, [], user=user_of(request))

    def language_menu(self, key, chosen):
        """A pasted key brings the API, and with it every language (an English-only local model has two)."""
        choices = language_choices(visitor_settings(self.base, key))
        return gr.update(choices=choices, value=chosen if chosen in {c for _, c in choices} else "")

    def notice(self, request: gr.Request):
        """The notice of the server's models that shut down soon (a visitor's key changes only the
        key), as a visitor is told it: no setting, no server named."""
        lang = lang_of(request)
        text, visible = views.models_notice([to_visitor(line, lang) for line in models.warnings(self.base)])
        return gr.update(value=text, visible=visible)

    def stop(self, request: gr.Request) -> None:
        """The tab was closed or reloaded: its job stops sending (what is in flight is still saved)."""
        self.jobs.stop(session_of(request))

    def summarize(self, current: Session | None, wanted, api_key, request: gr.Request):
        """Summary and chapters of the transcript just shown, streamed as they are written (once
        per transcript; cached with it). Off, or without a model: chapters by time and keywords."""
        p = self.page
        if not current or current.summarized:
            yield {p.summary_view: gr.update()}  # nothing new (a generator that yields nothing clears its outputs)
            return
        lang, t = lang_of(request), current.transcript
        current.summarized = True
        settings = visitor_settings(self.base, api_key, **({} if wanted else {"summary": "off"}))
        written = ""
        try:
            self.jobs.asking(visitor_of(request, self.base), settings, summary_of=t)
            for piece in summaries.stream(t, settings):
                if isinstance(piece, str):
                    written += piece
                    yield {p.summary_view: render.safe_markdown(written)}
                else:
                    files = self.jobs.exports(t, current.folder)  # now with it
                    yield {p.summary_view: views.linked(summaries.as_markdown(piece, lang), t),
                           **views.downloads(p.downloads, files)}
        except Exception as e:  # the transcript and the chat still work without it
            yield {p.summary_view: "", p.status: status_html(failure(e, lang), "error")}

    def ask(self, question_text, history, current: Session | None, api_key, remembered, request: gr.Request):
        """Answer a question from the transcript; yields the conversation as the answer streams.
        On an error the question stays in the box, to send again."""
        lang, history = lang_of(request), list(history or [])
        if not current:
            yield history, question_text, status_html(tr(lang, "Process a recording first, then ask about it."),
                                                      "error"), gr.update()
            return
        t = current.transcript
        turn = [{"role": "user", "content": render.safe_markdown((question_text or "").strip())},
                {"role": "assistant", "content": ""}]
        try:
            settings = visitor_settings(self.base, api_key)
            self.jobs.asking(visitor_of(request, self.base), settings, question_text)
            answer = Answer(t, question_text, plain_history(history), settings)
            text, shown = "", status_html(summary_line(t, lang), "done")  # an earlier error is over
            for item in answer:
                if isinstance(item, Reading):  # a question about all of it: every part is read first
                    yield history + turn, "", self.reading(item, lang), gr.update()
                    continue
                text += piece_to_visitor(item, lang)
                turn[1]["content"] = views.linked(text, t)
                yield history + turn, "", shown, gr.update()
            if notice := answer.notice_in(lang):
                turn[1]["content"] = views.linked(f"{text}\n\n*{notice}*", t)
            yield history + turn, "", shown, remember(self.jobs, remembered, t, current.media, history + turn,
                                                      user=user_of(request))
        except Exception as e:
            yield history, question_text, status_html(failure(e, lang), "error"), gr.update()

    @staticmethod
    def reading(item: Reading, lang: str) -> str:
        text = tr(lang, "Reading the whole recording for this question: part {done} of {parts}…",
                  done=item.done, parts=item.parts)
        return status_html(text, "progress", item.done / max(1, item.parts))
