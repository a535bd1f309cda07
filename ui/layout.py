"""The page's components, laid out: the input panel, the status line, the results (player,
summary, transcript, downloads) beside the chat, and hidden components for API clients.
`lay_out` is called inside `gr.Blocks` and returns them as a `Page`, for the handlers and the wiring."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core.answer.chat import MAX_QUESTION_CHARS
from core.config import Settings

from .labels import EXAMPLE_QUESTIONS, EXPORT_KINDS, I18N, MEDIA_TYPES, SPEAKER_CHOICES
from . import views
from .state import forget
from .status import language_choices

RECENT_KEY = "talk-to-your-audio-recent"  # the browser's storage key for the visitor's recent recordings
# What Gradio's BrowserState "encrypts" with in the browser. Gradio sends it to every visitor (the
# page's /config), so it protects nothing and is no secret: the value it wraps is already sealed
# by the server (`state.sealed`, with a key that never leaves the server). Fixed, so that after a
# restart the browser still unwraps what it holds.
BROWSER_WRAPPING = "not-a-secret: the value is sealed by the server"


@dataclass
class Page:
    state: gr.State  # the tab's `Session`
    recent: gr.BrowserState  # the visitor's recent recordings, in their browser
    source: gr.State  # the input tab chosen: "upload", "record" or "link"
    ticket: gr.State  # a transcription to run: set only when the cache does not have it
    notice: gr.Markdown
    input_panel: gr.Accordion
    tabs: dict[str, gr.Tab]
    upload: gr.File
    recording: gr.Audio
    link: gr.Textbox
    language: gr.Dropdown
    speakers: gr.Dropdown  # how many speakers to find
    vocabulary: gr.Textbox
    user_key: gr.Textbox
    summarize: gr.Checkbox
    process: gr.Button
    status: gr.HTML  # the one place for progress and errors
    results: gr.Row
    loaded: gr.Markdown
    player: gr.HTML
    summary_view: gr.Markdown
    transcript_view: gr.HTML
    speakers_view: gr.HTML  # each speaker's talking time
    speaker_pick: gr.Radio  # the speaker to rename
    speaker_name: gr.Textbox
    rename: gr.Button
    downloads: list[gr.DownloadButton]
    chatbot: gr.Chatbot
    question: gr.Textbox
    clear: gr.ClearButton
    api: "ApiComponents"

    @property
    def speaker_parts(self) -> list:
        """What a change of speakers (a count, a name) changes besides the transcript."""
        return [self.speakers_view, self.speaker_pick, self.speaker_name, self.rename]

    @property
    def shown(self) -> list:
        """Everything showing a recording changes."""
        return [self.state, self.status, self.loaded, self.player, self.summary_view, self.transcript_view,
                *self.speaker_parts, *self.downloads, self.question, self.chatbot, self.process, self.results, self.input_panel, self.recent]


@dataclass
class ApiComponents:
    """Plain values for API clients (gradio_client) instead of the page's HTML."""

    state: gr.State  # an API client's `Session`: it never closes a tab, so it goes once unused for a while
    transcribe: gr.Button
    ask: gr.Button
    question: gr.Textbox
    status: gr.Textbox
    text: gr.Textbox
    answer: gr.Textbox
    files: gr.File


def lay_out(base: Settings) -> Page:
    state = gr.State(None, delete_callback=forget)  # the tab's exports go with it
    recent = gr.BrowserState("", storage_key=RECENT_KEY, secret=BROWSER_WRAPPING)
    source, ticket = gr.State("upload"), gr.State(None)
    gr.Markdown(I18N("title"))
    notice = gr.Markdown(visible=False, elem_id="models-notice")  # filled on load
    with gr.Accordion(I18N("input"), open=True, elem_id="input-panel") as input_panel:
        inputs = _inputs(base)
        process = gr.Button(I18N("process"), variant="primary", elem_id="process")
    status = gr.HTML("", elem_id="status")
    with gr.Row(visible=False, elem_id="results", equal_height=False) as results:
        with gr.Column(scale=1, min_width=320):
            shown = _recording_column()
        with gr.Column(scale=1, min_width=320):
            talk = _chat_column()
    return Page(state=state, recent=recent, source=source, ticket=ticket, notice=notice, input_panel=input_panel,
                process=process, status=status, results=results, **inputs, **shown, **talk, api=_api(base))


def _inputs(base: Settings) -> dict:
    with gr.Tabs():
        with gr.Tab(I18N("upload_tab")) as upload_tab:
            upload = gr.File(label=I18N("upload"), file_types=MEDIA_TYPES, type="filepath", elem_id="upload",
                             height=120)
        with gr.Tab(I18N("record_tab")) as record_tab:
            recording = gr.Audio(label=I18N("record"), sources=["microphone"], type="filepath", elem_id="recording")
        with gr.Tab(I18N("link_tab")) as link_tab:
            link = gr.Textbox(label=I18N("link"), placeholder="https://…", info=I18N("link_info"), max_length=2000,
                              elem_id="link")
    with gr.Row():
        language = gr.Dropdown(language_choices(base), value="", label=I18N("language"), elem_id="language",
                               min_width=200)
        speakers = gr.Dropdown(SPEAKER_CHOICES, value=views.speaker_choice(base.diarization),
                               allow_custom_value=True, label=I18N("speakers"), info=I18N("speakers_info"), elem_id="speakers", min_width=120)
        vocabulary = gr.Textbox(label=I18N("vocabulary"), info=I18N("vocabulary_info"), max_length=800,
                                elem_id="vocabulary", min_width=200)
    user_key = gr.Textbox(label=I18N("key"), info=I18N("key_info" if not base.api_key else "key_info_budget"),
                          type="password", visible=not base.api_key or base.budget == "on", elem_id="user-key")
    summarize = gr.Checkbox(base.summary != "off", label=I18N("summarize"), info=I18N("summarize_info"),
                            elem_id="summarize")
    return {"tabs": {"upload": upload_tab, "record": record_tab, "link": link_tab}, "upload": upload,
            "recording": recording, "link": link, "language": language, "speakers": speakers, "vocabulary": vocabulary,
            "user_key": user_key, "summarize": summarize}


def _recording_column() -> dict:
    loaded = gr.Markdown(elem_id="loaded")
    player = gr.HTML(elem_id="player")
    with gr.Accordion(I18N("summary"), open=True, elem_id="summary-panel"):
        summary_view = gr.Markdown(elem_id="summary", sanitize_html=True)
    transcript_view = gr.HTML(elem_id="transcript-panel")
    speakers_view = gr.HTML(elem_id="speakers-view")
    with gr.Row(elem_id="speaker-row", equal_height=True):
        speaker_pick = gr.Radio([], label=I18N("speaker_pick"), elem_id="speaker-pick", visible=False, scale=3)
        speaker_name = gr.Textbox(label=I18N("speaker_name"), max_length=60, elem_id="speaker-name", visible=False,
                                  scale=2, min_width=140)
        rename = gr.Button(I18N("rename"), size="sm", elem_id="rename", visible=False, scale=0, min_width=90)
    with gr.Row(elem_id="downloads"):
        downloads = [gr.DownloadButton(f".{kind}", size="sm", variant="secondary", min_width=60,
                                       elem_id=f"download-{kind}") for kind in EXPORT_KINDS]
    return {"loaded": loaded, "player": player, "summary_view": summary_view, "transcript_view": transcript_view,
            "speakers_view": speakers_view, "speaker_pick": speaker_pick, "speaker_name": speaker_name,
            "rename": rename, "downloads": downloads}


def _chat_column() -> dict:
    # What it shows is made safe first (views.linked); Gradio's own sanitizing, and no custom tags, besides.
    chatbot = gr.Chatbot(label=I18N("chat"), height=460, elem_id="chatbot", buttons=["copy", "copy_all"],
                         sanitize_html=True, allow_tags=False)
    question = gr.Textbox(label=I18N("question"), placeholder=I18N("question_locked"), interactive=False,
                          max_length=MAX_QUESTION_CHARS, submit_btn=True, elem_id="question")
    clear = gr.ClearButton([question, chatbot], value=I18N("clear"), elem_id="clear", size="sm")
    gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label=I18N("examples"))
    return {"chatbot": chatbot, "question": question, "clear": clear}


def _api(base: Settings) -> ApiComponents:
    state = gr.State(None, time_to_live=base.session_ttl_minutes * 60, delete_callback=forget)
    return ApiComponents(state=state, transcribe=gr.Button(visible=False), ask=gr.Button(visible=False),
                         question=gr.Textbox(visible=False), status=gr.Textbox(visible=False),
                         text=gr.Textbox(visible=False), answer=gr.Textbox(visible=False),
                         files=gr.File(visible=False, file_count="multiple"))
