"""Talk to your Audio: the Gradio app. Layout and wiring only; the work is done in `core`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import json
import logging
import queue
import re
import secrets
import shutil
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import quote

import anyio
import gradio as gr

from core.answer import chat
from core.service import models
from core.audio import playback
from core import render
from core.answer import summary as summaries
from core.cache import Cache
from core.config import Settings
from core.errors import AppError, MissingApiKey, TooLarge, redact
from core.audio.fetch import download
from core.i18n import language_of, localized, tr
from core.transcribe.jobs import Eta, Job, running
from core.transcribe.backends.languages import language_name, languages
from core.transcribe.pipeline import by_id, lookup
from core.transcribe.progress import LiveTranscript, Progress
from core.exports import to_txt, write_exports
from core.transcript import Transcript, format_timestamp

log = logging.getLogger("app")

ASSETS = Path(__file__).parent / "assets"
SESSIONS_DIR = Path(tempfile.gettempdir()) / "talk-to-your-audio"
MEDIA_TYPES = ["audio", "video", ".mp3", ".m4a", ".wav", ".ogg", ".oga", ".opus", ".flac", ".webm",
               ".mp4", ".mov", ".mkv", ".avi", ".aac", ".wma"]
LANGUAGES = [("Auto", ""), ("English", "en"), ("Español", "es"), ("Français", "fr"), ("Deutsch", "de"),
             ("Italiano", "it"), ("Português", "pt"), ("Nederlands", "nl"), ("Polski", "pl"),
             ("Русский", "ru"), ("中文", "zh"), ("日本語", "ja"), ("한국어", "ko"), ("العربية", "ar"),
             ("हिन्दी", "hi"), ("Türkçe", "tr")]
EXPORT_KINDS = ("txt", "srt", "vtt", "json")  # the order of `write_exports`, one button each

I18N = gr.I18n(
    en={
        "title": "# Talk to your Audio\nDrop in a recording, get a timestamped transcript, then ask "
                 "questions answered only from what was said.",
        "input": "Recording",
        "upload_tab": "Upload", "record_tab": "Record", "link_tab": "Link",
        "upload": "Audio or video file", "record": "Record from the microphone",
        "link": "Media URL", "link_info": "A link to an audio or video file, or to a video site's page.",
        "language": "Spoken language", "vocabulary": "Vocabulary hint (optional)",
        "vocabulary_info": "Names, jargon and spellings that appear in the recording.",
        "key": "Your OpenAI API key (optional)", "key_info": "Used only for your requests in this tab; never "
               "stored or logged, and gone when you close the tab. Without it, a local Whisper model "
               "transcribes here and the chat shows the matching passages.",
        "process": "Process", "chat": "Chat with the recording", "question": "Your question",
        "question_locked": "Process a recording first, then ask about it here.",
        "question_ready": "Ask about the recording and press Enter",
        "clear": "Clear chat", "examples": "Examples",
        "summarize": "Summary and chapters when the transcript is ready",
        "summarize_info": "A few requests to the chat model (a cost on your key); off: chapters by time and keywords.",
        "summary": "Summary and chapters",
    },
    es={
        "title": "# Habla con tu audio\nSube una grabación, obtén una transcripción con marcas de tiempo y "
                 "haz preguntas que se responden solo con lo que se dijo.",
        "input": "Grabación",
        "upload_tab": "Subir", "record_tab": "Grabar", "link_tab": "Enlace",
        "upload": "Archivo de audio o vídeo", "record": "Grabar con el micrófono",
        "link": "URL del medio", "link_info": "Un enlace a un archivo de audio o vídeo, o a la página de un sitio de vídeo.",
        "language": "Idioma hablado", "vocabulary": "Vocabulario (opcional)",
        "vocabulary_info": "Nombres, jerga y grafías que aparecen en la grabación.",
        "key": "Tu clave de API de OpenAI (opcional)", "key_info": "Solo se usa para tus peticiones en esta "
               "pestaña; no se guarda ni se registra y desaparece al cerrar la pestaña. Sin ella, un modelo "
               "Whisper local transcribe aquí y el chat muestra los pasajes que coinciden.",
        "process": "Procesar", "chat": "Conversa con la grabación", "question": "Tu pregunta",
        "question_locked": "Primero procesa una grabación; luego pregunta aquí.",
        "question_ready": "Pregunta sobre la grabación y pulsa Intro",
        "clear": "Borrar chat", "examples": "Ejemplos",
        "summarize": "Resumen y capítulos cuando la transcripción esté lista",
        "summarize_info": "Unas pocas peticiones al modelo de chat (un coste en tu clave); sin ello: capítulos por "
                          "tiempo y palabras clave.",
        "summary": "Resumen y capítulos",
    },
)

EXAMPLE_QUESTIONS = [
    "Summarize the recording in five bullet points.",
    "What decisions were made, and when?",
    "¿Cuáles son las fechas y cifras que se mencionan?",
]

JOB_POLL = 0.1  # seconds between two looks at a running job's progress (no thread is held meanwhile)
RECENT_KEEP = 5  # recordings remembered in a visitor's browser (ids only, and their conversation)
RECENT_CHAT_TURNS = 40  # messages kept per recording in the browser
RECENT_CHAT_CHARS = 6000  # characters kept per message there (localStorage holds ~5 MB per site)
_session_jobs: dict[str, Job] = {}  # the running job of each browser session, stopped when it leaves
_copies = ThreadPoolExecutor(max_workers=2, thread_name_prefix="playback")  # players' copies, beside the jobs


# Messages: one place on the page (the status line), in the visitor's language.

def _lang(request: gr.Request | None) -> str:
    headers = getattr(request, "headers", None)
    return language_of(headers.get("accept-language") if headers else None)


def _status(text: str, kind: str = "info", fraction: float | None = None) -> str:
    """The status line's HTML; `text` is escaped (it may carry a visitor's file name)."""
    icon = "⚠️ " if kind == "error" else ""
    role = ' role="alert"' if kind == "error" else ' aria-live="polite"'
    bar = f'<progress max="1" value="{fraction:.3f}"></progress>' if fraction is not None else ""
    return f'<div class="status status-{kind}"{role}>{icon}{html.escape(text)}{bar}</div>'


def _failure(error: Exception, lang: str) -> str:
    """A message for the visitor, whatever went wrong; our own bugs are logged, not shown."""
    if isinstance(error, MissingApiKey):
        return tr(lang, "This server has no OpenAI API key: paste yours in the key field to use it for your requests.")
    if isinstance(error, AppError) and getattr(error, "visitor", None) is not None:
        return redact(error.visitor.localized(lang))  # what a visitor can do, not a setting to change
    if isinstance(error, AppError):
        return error.localized(lang)
    log.error("unexpected error: %s", redact(repr(error)), exc_info=error)
    return tr(lang, "Something went wrong on the server while doing that (an internal error). Please try again; "
                    "if it happens again, try another file or come back later.")


def _count(lang: str, n: int, one: str, many: str) -> str:
    return tr(lang, one if n == 1 else many, n=n)


def _summary(t: Transcript, lang: str) -> str:
    where = tr(lang, "a local Whisper model") if t.meta.backend == "local" else tr(lang, "the API")
    segments = _count(lang, len(t.segments), "{n} segment", "{n} segments")
    line = tr(lang, "Transcribed {minutes:.1f} min in {segments} with {where} ({model}). Ask away →",
              minutes=t.duration / 60, segments=segments, where=where, model=t.model or "?")
    return " ".join([line, *(f"⚠️ {localized(n, lang)}" for n in t.meta.notes)])


def _describe(p: Progress, left: float | None, lang: str) -> str:
    """One status line for a person: what is happening now, part k of n, and the time left once
    this run's own pace can tell it."""
    if p.message:
        return localized(p.message, lang)  # the notes core knows in Spanish too
    if p.stage == "decoding" or (p.stage == "preparing" and not p.sent):
        return tr(lang, "Reading the recording…")
    if p.stage == "done":
        return tr(lang, "Loaded from the cache.") if p.cached else tr(lang, "Done.")
    if not p.seconds_done and not p.chunks_done:  # "sending", or parts with nothing to hear
        return tr(lang, "Sent to the service; waiting for the first words…")
    if p.partial or p.seconds_total:
        line = tr(lang, "Transcribing: {done} of {total}", done=format_timestamp(p.seconds_done),
                  total=format_timestamp(p.seconds_total or 0))
    else:
        line = tr(lang, "Transcribing: {n} part(s) done", n=p.chunks_done)
    if left is not None and (p.fraction or 0) < 1:
        line += " · " + tr(lang, "about {left} left", left=_duration(left))
    return line + "…"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# What the page shows of a recording.

def _file_url(path: Path) -> str:
    """Served by Gradio from the media folder (`gr.set_static_paths`), relative to the page."""
    return "gradio_api/file=" + quote(str(path))


def _player(media: playback.Playback | None, subtitles: Path | None, lang: str) -> str:
    """Our own `<audio>`/`<video>` element (`assets/player.js` moves it to clicked moments): the
    browser streams it with range requests instead of decoding a whole waveform."""
    if media is None:
        gone = tr(lang, "The recording itself is no longer on this server: process it again to listen to it.")
        return f'<p class="player-missing">{html.escape(gone)}</p>'
    src = html.escape(_file_url(media.path))
    if media.kind == "video":
        label = html.escape(tr(lang, "Transcript"))
        track = (f'<track kind="subtitles" src="{html.escape(_file_url(subtitles))}" label="{label}" default>'
                 if subtitles else "")
        return (f'<video controls preload="metadata" playsinline src="{src}" type="{media.mime}">{track}</video>')
    return f'<audio controls preload="metadata" src="{src}" type="{media.mime}"></audio>'


def _subtitles(t: Transcript, cache: Cache, folder: Path) -> Path:
    """The transcript as WebVTT beside the media (the video's captions)."""
    vtt = next(p for p in write_exports(t, folder, "captions") if p.suffix == ".vtt")
    name = f"{t.meta.id or uuid.uuid4().hex}.vtt"
    target = cache.media_folder / name
    cache.media_folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vtt, target)
    cache.added_media(target)
    return target


def _loaded(t: Transcript, lang: str, stale: bool = False) -> str:
    bits = [f"**{t.source or tr(lang, 'Recording')}**", format_timestamp(t.duration),
            _count(lang, len(t.segments), "{n} segment", "{n} segments")]
    if t.language:  # the language heard: "en" from some models, "english" from others
        bits.append(_language_label(t.language, lang))
    line = " · ".join(bits)
    if stale:
        stale_note = tr(lang, "These results are for this recording, not the one chosen above: press Process.")
        line += f"  \n⚠️ {stale_note}"
    return line


def _language_label(code: str, lang: str) -> str:
    """"Spanish" / "Español" for "es"; a name a model gave ("english") as it is, capitalized."""
    name = language_name(code.lower()) if len(code) <= 3 else code.capitalize()
    if isinstance(name, str):  # a code we have no name for, or a model's own name
        return name
    text = name.localized(lang)
    return text[:1].upper() + text[1:]


def _language_choices(settings: Settings) -> list[tuple[str, str]]:
    """The language menu: what the transcription in force understands (Auto and English for an
    English-only local model; every language for a multilingual one and for the API)."""
    known = languages(settings)
    return [(label, code) for label, code in LANGUAGES if not code or known is None or code in known]


def _user_settings(base: Settings, user_key: str | None, **changes) -> Settings:
    """The server's settings, with this visitor's options; their key only if the server has none."""
    key = (user_key or "").strip()
    if key and not base.api_key:
        changes["api_key"] = key
    return base.replace(**changes)


def _models_notice(base: Settings) -> dict:
    """The page's notice of models in use that shut down soon (the server's settings: a visitor's
    key changes only the key); hidden when none does. Looked up once per process."""
    lines = models.warnings(base)
    return gr.update(value="\n\n".join(f"⚠️ {line}" for line in lines), visible=bool(lines))


# A visitor's recent recordings, kept in their own browser: ids and their conversation only.

def _recent_entries(value) -> list[dict]:
    """What the browser sent, checked: it may have been edited by hand."""
    entries = []
    for e in value if isinstance(value, list) else []:
        if isinstance(e, dict) and isinstance(e.get("id"), str) and re.fullmatch(r"[0-9a-f]{64}", e["id"]):
            chat_turns = [m for m in e.get("chat") or [] if isinstance(m, dict) and m.get("role") in
                          ("user", "assistant") and isinstance(m.get("content"), str)]
            entries.append({"id": e["id"], "media": str(e.get("media") or "")[:200],
                            "chat": chat_turns[-RECENT_CHAT_TURNS:]})
    return entries[-RECENT_KEEP:]


def _remember(value, transcript: Transcript, media: playback.Playback | None, history=None) -> list[dict]:
    entries = _recent_entries(value)
    tid = transcript.meta.id
    if not tid:
        return entries
    old = next((e for e in entries if e["id"] == tid), None)
    entry = {"id": tid, "media": media.path.name if media else (old or {}).get("media", ""),
             "chat": (old or {}).get("chat", [])}
    if history is not None:
        entry["chat"] = [{"role": m["role"], "content": m["content"][:RECENT_CHAT_CHARS]}
                         for m in _plain_history(history)][-RECENT_CHAT_TURNS:]
    return [e for e in entries if e["id"] != tid][-(RECENT_KEEP - 1):] + [entry]


def _plain_history(history) -> list[dict]:
    """The conversation as plain messages, citations unlinked (as the model wrote them)."""
    return [{"role": m["role"], "content": render.unlink_citations(m["content"])}
            for m in chat.flatten_history(history)]


def _linked(text: str, t: Transcript) -> str:
    """An answer with its cited moments as links to the sentences they cite."""
    return render.link_citations(text, t.duration, [s.start for s in t.segments])


def _linked_history(turns: list[dict], t: Transcript) -> list[dict]:
    return [{"role": m["role"], "content": _linked(m["content"], t) if m["role"] == "assistant" else m["content"]}
            for m in turns]


def _browser_secret(base: Settings) -> str:
    """The key `gr.BrowserState` encrypts with: kept in the cache folder, so a server restart still
    reads what visitors' browsers hold (a random one per start would lose it)."""
    path = Path(base.cache_dir) / "browser-secret"
    try:
        return path.read_text().strip() or _new_secret(path)
    except OSError:
        return _new_secret(path)


def _new_secret(path: Path) -> str:
    secret = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with open(fd, "w") as f:
            f.write(secret)
        Path(tmp).replace(path)
    except OSError:
        log.warning("could not keep the browser-state secret: visitors' recent recordings last until a restart")
    return secret


# Jobs.

def _stop_session_job(request: gr.Request) -> None:
    """The tab was closed or reloaded: its job stops sending (what is in flight is still saved)."""
    job = _session_jobs.pop(getattr(request, "session_hash", None) or "", None)
    if job:
        job.close()


def _when_finished(job: Job, cleanup) -> None:
    """Run `cleanup` once the job has really stopped (it may still read its file after a cancel)."""
    def wait_then_clean() -> None:
        job.finished.wait()
        cleanup()

    threading.Thread(target=wait_then_clean, daemon=True).start()


_END = object()


def _pump(stream, events: queue.Queue) -> None:
    """Hand a stream's pieces to a queue from a thread (so the handler can say what happens
    before the first piece), then `_END`, or the error."""
    try:
        for piece in stream:
            events.put(piece)
    except BaseException as e:
        events.put(e)
    events.put(_END)


def _remove_session_files(state: dict | None) -> None:
    if state and state.get("dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)


def _sessions_dir() -> Path:
    SESSIONS_DIR.mkdir(parents=True, exist_ok=True)
    return SESSIONS_DIR


def _playable(path: Path, cache: Cache, cancel: threading.Event | None = None) -> playback.Playback | None:
    """The browser's copy of a recording (kept in the cache's media folder); None if it cannot be
    made: the transcript is still worth having without a player."""
    try:
        media = playback.prepare(Path(path), cache.media_folder, cancel=cancel)
    except AppError as e:
        log.info("no player for %s: %s", Path(path).name, e)
        return None
    except Exception:
        log.warning("no player for %s", Path(path).name, exc_info=True)
        return None
    cache.added_media(media.path)
    return media


def _lines(t: Transcript) -> str:
    """The transcript for a program: one line per sentence, "[mm:ss] text" (citation format)."""
    hours = t.duration >= 3600 or None
    return "\n".join(f"[{format_timestamp(s.start, hours=hours)}] {s.text}" for s in t.segments)


def _tool_media(media: str, folder: Path, base: Settings) -> tuple[Path | None, str | None]:
    """A tool's `media`: (a file written from a data URL, None) or (None, the link to fetch)."""
    media = (media or "").strip()
    if not media.startswith("data:"):
        if not media:
            raise AppError("Paste a link to an audio or video file first.")
        return None, media
    header, _, payload = media.partition(",")
    if ";base64" not in header:
        raise AppError("A file given as a data URL must be base64-encoded.")
    limit = base.max_file_mb * 2**20
    if len(payload) * 3 / 4 > limit + 4:
        raise TooLarge("The file is over the {limit:g} MB limit.", limit=base.max_file_mb)
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        raise AppError("A file given as a data URL must be base64-encoded.") from None
    path = folder / "recording"
    path.write_bytes(data)
    return path, None


def build_app(base: Settings) -> gr.Blocks:
    cache = Cache(base.cache_dir, max_bytes=int(base.cache_max_mb * 2**20))
    cache.media_folder.mkdir(parents=True, exist_ok=True)
    gr.set_static_paths([str(cache.media_folder)])  # the players' copies and captions, by content name
    with gr.Blocks(title="Talk to your Audio", delete_cache=(900, 3600)) as demo:
        state = gr.State(None, delete_callback=_remove_session_files)  # {"transcript", "dir", "media"} per tab
        recent = gr.BrowserState([], storage_key="talk-to-your-audio-recent", secret=_browser_secret(base))
        source = gr.State("upload")
        ticket = gr.State(None)  # a transcription to run: set only when the cache does not have it
        gr.Markdown(I18N("title"))
        notice = gr.Markdown(visible=False, elem_id="models-notice")  # filled on load
        with gr.Accordion(I18N("input"), open=True, elem_id="input-panel") as input_panel:
            with gr.Tabs():
                with gr.Tab(I18N("upload_tab")) as upload_tab:
                    upload = gr.File(label=I18N("upload"), file_types=MEDIA_TYPES, type="filepath",
                                     elem_id="upload", height=120)
                with gr.Tab(I18N("record_tab")) as record_tab:
                    recording = gr.Audio(label=I18N("record"), sources=["microphone"], type="filepath",
                                         elem_id="recording")
                with gr.Tab(I18N("link_tab")) as link_tab:
                    link = gr.Textbox(label=I18N("link"), placeholder="https://…", info=I18N("link_info"),
                                      max_length=2000, elem_id="link")
            with gr.Row():
                language = gr.Dropdown(_language_choices(base), value="", label=I18N("language"), elem_id="language",
                                       min_width=200)
                vocabulary = gr.Textbox(label=I18N("vocabulary"), info=I18N("vocabulary_info"),
                                        max_length=800, elem_id="vocabulary", min_width=200)
            user_key = gr.Textbox(label=I18N("key"), info=I18N("key_info"), type="password",
                                  visible=not base.api_key, elem_id="user-key")
            summarize = gr.Checkbox(base.summary != "off", label=I18N("summarize"), info=I18N("summarize_info"),
                                    elem_id="summarize")
            process = gr.Button(I18N("process"), variant="primary", elem_id="process")
        status = gr.HTML("", elem_id="status")  # the one place for progress and errors
        with gr.Row(visible=False, elem_id="results", equal_height=False) as results:
            with gr.Column(scale=1, min_width=320):
                loaded = gr.Markdown(elem_id="loaded")
                player = gr.HTML(elem_id="player")
                with gr.Accordion(I18N("summary"), open=True, elem_id="summary-panel"):
                    summary_view = gr.Markdown(elem_id="summary")
                transcript_view = gr.HTML(elem_id="transcript-panel")
                with gr.Row(elem_id="downloads"):
                    downloads = [gr.DownloadButton(f".{kind}", size="sm", variant="secondary", min_width=60,
                                                   elem_id=f"download-{kind}") for kind in EXPORT_KINDS]
            with gr.Column(scale=1, min_width=320):
                chatbot = gr.Chatbot(label=I18N("chat"), height=460, elem_id="chatbot",
                                     buttons=["copy", "copy_all"])
                question = gr.Textbox(label=I18N("question"), placeholder=I18N("question_locked"),
                                      interactive=False, max_length=chat.MAX_QUESTION_CHARS, submit_btn=True,
                                      elem_id="question")
                clear = gr.ClearButton([question, chatbot], value=I18N("clear"), elem_id="clear", size="sm")
                gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label=I18N("examples"))
        # For API clients (gradio_client): plain values instead of the page's HTML.
        api_transcribe, api_ask = gr.Button(visible=False), gr.Button(visible=False)
        api_question = gr.Textbox(visible=False)
        api_status, api_text, api_answer = (gr.Textbox(visible=False) for _ in range(3))
        api_files = gr.File(visible=False, file_count="multiple")

        page = [state, status, loaded, player, summary_view, transcript_view, *downloads, question, chatbot, process,
                results, input_panel, recent]

        def show(transcript: Transcript, current: dict | None, lang: str, media: playback.Playback | None,
                 history: list[dict] | None = None, message: str | None = None) -> dict:
            """The page for a transcript: player, paragraphs, downloads, and the chat ready."""
            _remove_session_files(current)
            folder = Path(tempfile.mkdtemp(prefix="session-", dir=_sessions_dir()))
            files = write_exports(transcript, folder, transcript.source)
            subtitles = _subtitles(transcript, cache, folder) if media and media.kind == "video" else None
            return {
                state: {"transcript": transcript, "dir": str(folder), "media": media, "api_history": [],
                        "summarized": None},
                summary_view: "",
                status: _status(message or _summary(transcript, lang), "done"),
                loaded: _loaded(transcript, lang),
                player: _player(media, subtitles, lang),
                transcript_view: render.transcript_html(transcript),
                **{button: gr.update(value=str(f)) for button, f in zip(downloads, files)},
                question: gr.update(interactive=True, placeholder=I18N("question_ready")),
                chatbot: _linked_history(history or [], transcript),
                process: gr.update(interactive=True),
                results: gr.update(visible=True),
                input_panel: gr.update(open=False),
            }

        def failed(error: Exception, lang: str) -> dict:
            """The message in the status line; the rest of the page stays as it was, and usable."""
            return {status: _status(_failure(error, lang), "error"), process: gr.update(interactive=True)}

        def prepare(file, recording, url, chosen, language_code, vocabulary_hint, api_key):
            """The cached transcript, or the job to run; an `AppError` for input that cannot be used."""
            if chosen == "record" and not recording:
                raise AppError("Record something first: the microphone recording is empty.")
            if chosen == "link" and not (url or "").strip():
                raise AppError("Paste a link to an audio or video file first.")
            path = {"record": recording, "link": None}.get(chosen, file)
            if chosen != "link" and not path:
                raise AppError("Choose a file or record something first.")
            settings = _user_settings(base, api_key, language=language_code or None,
                                      prompt=(vocabulary_hint or "").strip() or None)
            if path and (hit := lookup(Path(path), settings)) is not None:
                return hit, Path(path)
            return {"id": uuid.uuid4().hex, "path": path, "url": url if chosen == "link" else None,
                    "settings": settings}, None

        async def work(job, request: gr.Request, lang: str, player_copy: bool = True):
            """("status", html) while the job runs, ("live", html, transcript so far) as text
            arrives, then ("done", transcript, player's copy or None). Polling, it holds no thread;
            the player's copy is made beside the transcription."""
            session = getattr(request, "session_hash", None) or job["id"]
            fetched, transcription, copy = None, None, None
            try:
                if running() >= base.max_jobs:  # a cancelled job still winding down keeps its slot
                    log.info("waiting for %d job(s) still winding down", running())
                    yield "status", _status(tr(lang, "Waiting for a free slot…"), "progress")
                    while running() >= base.max_jobs:
                        await asyncio.sleep(JOB_POLL)
                path = job["path"]
                if job["url"]:
                    yield "status", _status(tr(lang, "Fetching the link…"), "progress")
                    fetched = Path(tempfile.mkdtemp(prefix="fetch-", dir=_sessions_dir()))
                    path = await anyio.to_thread.run_sync(download, job["url"], fetched, job["settings"])
                transcription = Job(Path(path), job["settings"])
                _session_jobs[session] = transcription
                if player_copy:
                    copy = _copies.submit(_playable, Path(path), cache, transcription.cancel)
                eta, live = Eta(), LiveTranscript()
                while not transcription.over:
                    for item in transcription.poll():
                        if isinstance(item, Transcript):
                            if copy is not None and not copy.done():
                                yield "status", _status(tr(lang, "Preparing the player…"), "progress", 1.0)
                            yield "done", item, (await asyncio.wrap_future(copy) if copy is not None else None)
                            return
                        line = _status(_describe(item, eta.update(item), lang), "progress",
                                       item.fraction if item.stage in ("sending", "transcribing") else None)
                        if item.segments:
                            yield "live", line, live.add(item)
                        else:
                            yield "status", line
                    await asyncio.sleep(JOB_POLL)
            finally:
                if transcription is not None:
                    transcription.close()  # a no-op once it is done; else the visitor left: stop sending
                    if _session_jobs.get(session) is transcription:
                        del _session_jobs[session]
                if fetched:  # the downloaded media is not kept, once nothing reads it any more
                    def clean(copy=copy, fetched=fetched) -> None:
                        if copy is not None:
                            wait([copy])
                        shutil.rmtree(fetched, ignore_errors=True)

                    if transcription is not None:
                        _when_finished(transcription, clean)
                    else:
                        clean()

        def begin(file, recording, url, chosen, language_code, vocabulary_hint, api_key, current, remembered,
                  request: gr.Request):
            """Check the input and the cache at once, before waiting for a job slot: a recording that
            is already transcribed is shown without queueing behind other visitors' jobs."""
            lang = _lang(request)
            try:
                found, path = prepare(file, recording, url, chosen, language_code, vocabulary_hint, api_key)
            except Exception as e:
                return failed(e, lang)
            if isinstance(found, Transcript):
                media = _playable(path, cache)
                return {**show(found, current, lang, media, message=f"{tr(lang, 'Loaded from the cache.')} "
                                                                     f"{_summary(found, lang)}"),
                        recent: _remember(remembered, found, media)}
            return {ticket: found, process: gr.update(interactive=False),
                    status: _status(tr(lang, "Waiting for a free slot…"), "progress")}

        async def run(job, current, remembered, request: gr.Request):
            """A transcription in one of the MAX_CONCURRENT_JOBS slots of Gradio's queue."""
            if not job:
                return
            lang = _lang(request)
            try:
                async for kind, *update in work(job, request, lang):
                    if kind == "done":
                        transcript, media = update
                        yield {**show(transcript, current, lang, media),
                               recent: _remember(remembered, transcript, media)}
                    elif kind == "live":  # the transcript so far, while it grows
                        yield {status: update[0], transcript_view: render.transcript_html(update[1]),
                               results: gr.update(visible=True)}
                    else:
                        yield {status: update[0]}
            except Exception as e:
                yield failed(e, lang)

        def changed(chosen_value, current, request: gr.Request):
            """A new input chosen: the results on screen are said to belong to the previous one."""
            if not current or not chosen_value:
                return gr.update(), gr.update()
            lang = _lang(request)
            return (_loaded(current["transcript"], lang, stale=True),
                    _status(tr(lang, "New recording chosen: press Process to transcribe it."), "info"))

        def restore(remembered, request: gr.Request):
            """A reload (or a server restart): the visitor's last recording and conversation, from
            the ids in their own browser and the server's cache."""
            lang = _lang(request)
            idle = {status: _status(tr(lang, "Choose a recording and press Process."), "info")}
            entries = _recent_entries(remembered)
            if not entries:
                return idle
            last = entries[-1]
            transcript = by_id(last["id"], base)
            if transcript is None:  # gone from the cache (evicted, or another server)
                return {**idle, recent: entries[:-1]}
            path = cache.media(last["media"]) if last["media"] else None
            media = None
            if path is not None:
                try:
                    media = playback.prepare(path, cache.media_folder)
                except Exception:
                    media = None
            return show(transcript, None, lang, media, history=last["chat"],
                        message=tr(lang, "Your last recording is back: ask away, or choose another above."))

        def ask(question_text, history, current, api_key, remembered, request: gr.Request):
            """Answer a question from the transcript; yields the conversation as the answer streams."""
            lang = _lang(request)
            history = list(history or [])
            if not current:
                yield history, question_text, _status(tr(lang, "Process a recording first, then ask about it."),
                                                      "error"), gr.update()
                return
            transcript = current["transcript"]
            turn = [{"role": "user", "content": (question_text or "").strip()}, {"role": "assistant", "content": ""}]
            try:
                events: queue.Queue = queue.Queue()  # the answer's pieces, and the parts read before it
                reply = chat.ask(transcript, question_text, _plain_history(history), _user_settings(base, api_key),
                                 on_progress=lambda done, parts: events.put((done, parts)))
                threading.Thread(target=_pump, args=(reply.stream, events), daemon=True).start()
                answer, shown = "", _status(_summary(transcript, lang), "done")  # an earlier error is over
                while (item := events.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    if isinstance(item, tuple):  # a question about all of it: every part is read first
                        reading = tr(lang, "Reading the whole recording for this question: part {done} of {parts}…",
                                     done=item[0], parts=item[1])
                        yield history + turn, "", _status(reading, "progress", item[0] / max(1, item[1])), gr.update()
                        continue
                    answer += item
                    turn[1]["content"] = _linked(answer, transcript)
                    yield history + turn, "", shown, gr.update()
                if notice := reply.notice_in(lang):
                    answer = f"{answer}\n\n*{notice}*"
                turn[1]["content"] = _linked(answer, transcript)
                done = history + turn
                yield done, "", shown, _remember(remembered, transcript, current.get("media"), done)
            except Exception as e:  # the question stays in the box, to send again
                yield history, question_text, _status(_failure(e, lang), "error"), gr.update()

        def cleared(current, remembered):
            if not current:
                return gr.update()
            return _remember(remembered, current["transcript"], current.get("media"), [])

        async def api_transcribe_fn(file, url, language_code, vocabulary_hint, api_key, current,
                                    request: gr.Request):
            """Transcribe an uploaded file or a link: returns (status, transcript text, export files).
            Then `/ask` answers about it in the same client session."""
            lang = _lang(request)
            chosen = "upload" if file else "link"
            try:
                found, _ = await anyio.to_thread.run_sync(prepare, file, None, url, chosen, language_code,
                                                          vocabulary_hint, api_key)
                transcript = found if isinstance(found, Transcript) else None
                if transcript is None:
                    async for kind, *update in work(found, request, lang, player_copy=False):
                        if kind == "done":
                            transcript = update[0]
            except Exception as e:
                raise gr.Error(_failure(e, lang)) from None
            _remove_session_files(current)
            folder = Path(tempfile.mkdtemp(prefix="session-", dir=_sessions_dir()))
            files = write_exports(transcript, folder, transcript.source)
            return ({"transcript": transcript, "dir": str(folder), "media": None, "api_history": []},
                    _summary(transcript, lang), to_txt(transcript), [str(f) for f in files])

        def api_ask_fn(question_text, api_key, current, request: gr.Request):
            """Answer a question about the recording sent to `/transcribe`: the answer's text as it
            streams, its moments cited as [mm:ss]. Follow-up questions see the earlier ones."""
            lang = _lang(request)
            if not current:
                raise gr.Error(tr(lang, "Process a recording first, then ask about it."))
            answer = ""
            try:
                reply = chat.ask(current["transcript"], question_text, current["api_history"],
                                 _user_settings(base, api_key))
                for piece in reply.stream:
                    answer += piece
                    yield current, answer
            except Exception as e:
                raise gr.Error(_failure(e, lang)) from None
            if notice := reply.notice_in(lang):
                answer = f"{answer}\n\n*{notice}*"
                yield current, answer
            current["api_history"] += [{"role": "user", "content": question_text.strip()},
                                       {"role": "assistant", "content": answer}]
            yield current, answer

        def summarize_fn(current, wanted, api_key, request: gr.Request):
            """Summary and chapters of the transcript just shown, streamed as they are written (once
            per transcript; cached with it). Off, or without a model: chapters by time and keywords."""
            if not current or current.get("summarized") == id(current["transcript"]):
                yield {summary_view: gr.update()}  # nothing new (a generator that yields nothing clears its outputs)
                return
            lang, transcript = _lang(request), current["transcript"]
            current["summarized"] = id(transcript)
            settings = _user_settings(base, api_key, **({} if wanted else {"summary": "off"}))
            written = ""
            try:
                for piece in summaries.stream(transcript, settings):
                    if isinstance(piece, str):
                        written += piece
                        yield {summary_view: written}
                    else:
                        files = write_exports(transcript, Path(current["dir"]), transcript.source)  # now with it
                        yield {summary_view: _linked(summaries.as_markdown(piece, lang), transcript),
                               **{button: gr.update(value=str(f)) for button, f in zip(downloads, files)}}
            except Exception as e:  # the transcript and the chat still work without it
                yield {summary_view: "", status: _status(_failure(e, lang), "error")}

        # Tools for AI agents (MCP, and any API client): stateless, the recording's id carries the context.
        async def transcribe_recording(media: str, language: str = "", vocabulary: str = "",
                                       request: gr.Request = None) -> str:
            """Transcribe a recording, with a timestamp on every line.

            Args:
                media: a link (https://...) to an audio or video file or to a video site's page, or the
                    file itself as a data URL ("data:audio/mpeg;base64,...").
                language: the spoken language as an ISO 639-1 code ("en", "es"...); empty to detect it.
                vocabulary: names, jargon and spellings that appear in the recording (optional).

            Returns:
                JSON: {"id": the recording's id for ask_about_recording and summary_of_recording,
                "transcript": one line per sentence, "[mm:ss] text", "duration_seconds", "language"}
            """
            lang = _lang(request)
            folder = Path(tempfile.mkdtemp(prefix="tool-", dir=_sessions_dir()))
            try:
                path, url = _tool_media(media, folder, base)
                found, _ = await anyio.to_thread.run_sync(
                    prepare, str(path) if path else None, None, url, "link" if url else "upload", language,
                    vocabulary, None)
                transcript = found if isinstance(found, Transcript) else None
                if transcript is None:
                    async for kind, *update in work(found, request, lang, player_copy=False):
                        if kind == "done":
                            transcript = update[0]
            except Exception as e:
                raise gr.Error(_failure(e, lang)) from None
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return json.dumps({"id": transcript.meta.id or "", "transcript": _lines(transcript),
                               "duration_seconds": round(transcript.duration, 2), "language": transcript.language},
                              ensure_ascii=False)

        def ask_about_recording(recording_id: str, question: str, request: gr.Request = None) -> str:
            """Answer a question about a transcribed recording, only from what was said in it.

            Args:
                recording_id: the id transcribe_recording returned.
                question: the question, in any language.

            Returns:
                The answer, citing the moments it used as [mm:ss] (or [h:mm:ss]).
            """
            lang = _lang(request)
            transcript = by_id((recording_id or "").strip(), base)
            if transcript is None:
                raise gr.Error(tr(lang, "No recording has that id here: transcribe it first."))
            try:
                reply = chat.ask(transcript, question, [], base)
                answer = "".join(reply.stream)
            except Exception as e:
                raise gr.Error(_failure(e, lang)) from None
            notice = reply.notice_in(lang)
            return f"{answer}\n\n({notice})" if notice else answer

        def summary_of_recording(recording_id: str, request: gr.Request = None) -> str:
            """The summary and chapters of a transcribed recording (made once, then cached).

            Args:
                recording_id: the id transcribe_recording returned.

            Returns:
                A few bullets, then the chapters as "[mm:ss] Title" lines (each time a segment start of
                the recording). Without a chat model: chapters by time titled with keywords, said so.
            """
            lang = _lang(request)
            transcript = by_id((recording_id or "").strip(), base)
            if transcript is None:
                raise gr.Error(tr(lang, "No recording has that id here: transcribe it first."))
            try:
                return summaries.as_text(summaries.summarize(transcript, base), lang)
            except Exception as e:
                raise gr.Error(_failure(e, lang)) from None

        gr.api(transcribe_recording, api_name="transcribe_recording", concurrency_limit=base.max_jobs,
               concurrency_id="transcribe")
        gr.api(ask_about_recording, api_name="ask_about_recording", concurrency_limit=None)
        gr.api(summary_of_recording, api_name="summary_of_recording", concurrency_limit=None)

        upload_tab.select(lambda: "upload", None, source, queue=False, api_visibility="private")
        record_tab.select(lambda: "record", None, source, queue=False, api_visibility="private")
        link_tab.select(lambda: "link", None, source, queue=False, api_visibility="private")
        for chosen_input in (upload, recording, link):
            chosen_input.change(changed, [chosen_input, state], [loaded, status], queue=False,
                                api_visibility="private", show_progress="hidden")
        # A pasted key brings the API, and with it every language (an English-only local model has two).
        user_key.change(lambda key, chosen: gr.update(choices=(choices := _language_choices(_user_settings(base, key))),
                                                      value=chosen if chosen in {c for _, c in choices} else ""),
                        [user_key, language], language, queue=False, api_visibility="private", show_progress="hidden")
        # A click checks the cache at once (no limit); only a recording that needs work sets the
        # ticket, whose job then waits in Gradio's queue for one of MAX_CONCURRENT_JOBS slots
        # (waiting visitors see their place; a waiting job holds no thread).
        summary_step = {"fn": summarize_fn, "inputs": [state, summarize, user_key],
                        "outputs": [summary_view, status, *downloads], "api_visibility": "private",
                        "show_progress": "hidden", "concurrency_limit": None}
        process.click(  # trigger_mode="once": a click while it runs starts nothing
            begin, [upload, recording, link, source, language, vocabulary, user_key, state, recent], [*page, ticket],
            api_visibility="private", concurrency_limit=None, show_progress="hidden", trigger_mode="once",
        ).then(**summary_step)
        ticket.change(run, [ticket, state, recent], page, api_visibility="private", concurrency_limit=base.max_jobs,
                      concurrency_id="transcribe", show_progress="minimal", show_progress_on=[status]
                      ).then(**summary_step)
        # `/transcribe` and `/ask` keep a client's session (gradio_client); agents get the tools above
        # (undocumented: callable, but not offered as MCP tools, whose calls share no session).
        api_transcribe.click(api_transcribe_fn, [upload, link, language, vocabulary, user_key, state],
                             [state, api_status, api_text, api_files], api_name="transcribe",
                             api_visibility="undocumented", concurrency_limit=base.max_jobs,
                             concurrency_id="transcribe")
        api_ask.click(api_ask_fn, [api_question, user_key, state], [state, api_answer], api_name="ask",
                      api_visibility="undocumented", concurrency_limit=None)
        demo.unload(_stop_session_job)
        demo.load(lambda: _models_notice(base), None, notice, queue=False, api_visibility="private",
                  show_progress="hidden")
        demo.load(restore, [recent], page, api_visibility="private", show_progress="hidden").then(**summary_step)
        question.submit(ask, [question, chatbot, state, user_key, recent], [chatbot, question, status, recent],
                        api_visibility="private", concurrency_limit=None, show_progress="hidden")
        clear.click(cleared, [state, recent], [recent], api_visibility="private", queue=False)
    return demo


def launch_options(settings: Settings) -> dict:
    """What `launch()` needs besides the address: the page's language, its player script and
    style, and the upload limit."""
    script = (ASSETS / "player.js").read_text(encoding="utf-8")
    return {"i18n": I18N, "theme": gr.themes.Soft(), "head": f"<script>{script}</script>",
            "css": "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("player.css", "app.css")),
            "max_file_size": int(settings.max_file_mb * 1024 * 1024)}  # refused before it reaches the disk


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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_loggers()
    try:
        settings = Settings.from_env()
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models.prefetch(settings)  # the first visitor's notice need not wait for the lookups
    demo = build_app(settings)
    _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                          mcp_server=True if args.mcp else None,  # None: GRADIO_MCP_SERVER
                                          prevent_thread_lock=True, **launch_options(settings))
    if args.share and not share_url:
        print("Could not create a public link (no internet access, or the tunnel is blocked). "
              f"The app is still running locally at {local_url}", file=sys.stderr, flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
