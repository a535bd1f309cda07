"""Talk to your Audio: the Gradio app. Layout and wiring only; the work is done in `core`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import anyio
import gradio as gr

from core import chat, models
from core.config import Settings
from core.errors import AppError, MissingApiKey, redact
from core.fetch import download
from core.jobs import Job, running
from core.transcribe import LiveTranscript, Progress, lookup
from core.transcript import Transcript, format_timestamp, to_txt, write_exports

log = logging.getLogger("app")

SESSIONS_DIR = Path(tempfile.gettempdir()) / "talk-to-your-audio"
MEDIA_TYPES = ["audio", "video", ".mp3", ".m4a", ".wav", ".ogg", ".oga", ".opus", ".flac", ".webm",
               ".mp4", ".mov", ".mkv", ".avi", ".aac", ".wma"]
LANGUAGES = [("Auto", ""), ("English", "en"), ("Español", "es"), ("Français", "fr"), ("Deutsch", "de"),
             ("Italiano", "it"), ("Português", "pt"), ("Nederlands", "nl"), ("Polski", "pl"),
             ("Русский", "ru"), ("中文", "zh"), ("日本語", "ja"), ("한국어", "ko"), ("العربية", "ar"),
             ("हिन्दी", "hi"), ("Türkçe", "tr")]

I18N = gr.I18n(
    en={
        "title": "# Talk to your Audio\nDrop in a recording, get a timestamped transcript, then ask "
                 "questions answered only from what was said.",
        "upload_tab": "Upload", "record_tab": "Record", "link_tab": "Link",
        "upload": "Audio or video file", "record": "Record from the microphone",
        "link": "Media URL", "link_info": "A link to an audio or video file, or to a video site's page.",
        "language": "Spoken language", "vocabulary": "Vocabulary hint (optional)",
        "vocabulary_info": "Names, jargon and spellings that appear in the recording.",
        "key": "Your OpenAI API key (optional)", "key_info": "Used only for your requests in this tab; never "
               "stored or logged, and gone when you close the tab. Without it, a local Whisper model "
               "transcribes here and the chat shows the matching passages.",
        "process": "Process", "transcript": "Transcript", "downloads": "Download the transcript",
        "chat": "Chat with the recording", "question": "Your question",
        "question_locked": "Process a recording first, then ask about it here.",
        "question_ready": "Ask about the recording and press Enter",
        "send": "Send", "clear": "Clear chat", "examples": "Examples",
        "status_idle": "Choose a recording and press **Process**.",
    },
    es={
        "title": "# Habla con tu audio\nSube una grabación, obtén una transcripción con marcas de tiempo y "
                 "haz preguntas que se responden solo con lo que se dijo.",
        "upload_tab": "Subir", "record_tab": "Grabar", "link_tab": "Enlace",
        "upload": "Archivo de audio o vídeo", "record": "Grabar con el micrófono",
        "link": "URL del medio", "link_info": "Un enlace a un archivo de audio o vídeo, o a la página de un sitio de vídeo.",
        "language": "Idioma hablado", "vocabulary": "Vocabulario (opcional)",
        "vocabulary_info": "Nombres, jerga y grafías que aparecen en la grabación.",
        "key": "Tu clave de API de OpenAI (opcional)", "key_info": "Solo se usa para tus peticiones en esta "
               "pestaña; no se guarda ni se registra y desaparece al cerrar la pestaña. Sin ella, un modelo "
               "Whisper local transcribe aquí y el chat muestra los pasajes que coinciden.",
        "process": "Procesar", "transcript": "Transcripción", "downloads": "Descargar la transcripción",
        "chat": "Conversa con la grabación", "question": "Tu pregunta",
        "question_locked": "Primero procesa una grabación; luego pregunta aquí.",
        "question_ready": "Pregunta sobre la grabación y pulsa Intro",
        "send": "Enviar", "clear": "Borrar chat", "examples": "Ejemplos",
        "status_idle": "Elige una grabación y pulsa **Procesar**.",
    },
)

EXAMPLE_QUESTIONS = [
    "Summarize the recording in five bullet points.",
    "What decisions were made, and when?",
    "¿Cuáles son las fechas y cifras que se mencionan?",
]


def _remove_session_files(state: dict | None) -> None:
    if state and state.get("dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)


def _for_visitor(error: AppError) -> str:
    if isinstance(error, MissingApiKey):
        return "This server has no OpenAI API key: paste yours in the key field to use it for your requests."
    return str(error)


def _summary(t: Transcript) -> str:
    where = "a local Whisper model" if t.meta.get("backend") == "local" else "the API"
    notes = "".join(f"\n\n⚠️ {n}" for n in t.meta.get("notes", ()))
    return (f"Transcribed {t.duration / 60:.1f} min in {len(t.segments)} segments with {where} "
            f"({t.model}). Ask away →{notes}")


JOB_POLL = 0.1  # seconds between two looks at a running job's progress (no thread is held meanwhile)
_session_jobs: dict[str, Job] = {}  # the running job of each browser session, stopped when it leaves


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


def _failure(error: Exception) -> str:
    """A message for the visitor, whatever went wrong; our own bugs are logged, not shown."""
    if isinstance(error, AppError):
        return _for_visitor(error)
    log.error("unexpected error: %s", redact(repr(error)), exc_info=error)
    return ("Something went wrong on the server while doing that (an internal error). Please try again; "
            "if it happens again, try another file or come back later.")


def _describe(p: Progress, elapsed: float) -> str:
    """One status line for a person: stage, part k of n, and the time left once it can be told."""
    if p.message:
        return p.message
    if p.stage == "decoding":
        return "Decoding the audio…"
    if p.stage == "done":
        return "Loaded from the cache." if p.cached else "Done."
    if p.partial:
        of = f" of {format_timestamp(p.seconds_total)}" if p.seconds_total else ""
        line = f"Transcribing: {format_timestamp(p.seconds_done)}{of}"
    else:
        line = f"Transcribing: part {p.chunks_done}{f' of {p.chunks_total}' if p.chunks_total else ''} done"
    fraction = p.fraction
    if fraction and 0.02 < fraction < 1 and elapsed > 1:
        line += f", about {_duration(elapsed * (1 - fraction) / fraction)} left"
    return line + "…"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


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


def build_app(base: Settings) -> gr.Blocks:
    with gr.Blocks(title="Talk to your Audio", delete_cache=(900, 3600)) as demo:
        state = gr.State(None, delete_callback=_remove_session_files)  # {"transcript", "dir"} per tab
        source = gr.State("upload")
        ticket = gr.State(None)  # a transcription to run: set only when the cache does not have it
        gr.Markdown(I18N("title"))
        notice = gr.Markdown(visible=False, elem_id="models-notice")  # filled on load
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab(I18N("upload_tab")) as upload_tab:
                        upload = gr.File(label=I18N("upload"), file_types=MEDIA_TYPES, type="filepath",
                                         elem_id="upload")
                    with gr.Tab(I18N("record_tab")) as record_tab:
                        recording = gr.Audio(label=I18N("record"), sources=["microphone"], type="filepath",
                                             elem_id="recording")
                    with gr.Tab(I18N("link_tab")) as link_tab:
                        link = gr.Textbox(label=I18N("link"), placeholder="https://…", info=I18N("link_info"),
                                          max_length=2000, elem_id="link")
                with gr.Row():
                    language = gr.Dropdown(LANGUAGES, value="", label=I18N("language"), elem_id="language")
                    vocabulary = gr.Textbox(label=I18N("vocabulary"), info=I18N("vocabulary_info"),
                                            max_length=800, elem_id="vocabulary")
                user_key = gr.Textbox(label=I18N("key"), info=I18N("key_info"), type="password",
                                      visible=not base.api_key, elem_id="user-key")
                process = gr.Button(I18N("process"), variant="primary", elem_id="process")
                api_transcribe = gr.Button(visible=False)  # the `/transcribe` endpoint for API clients
                status = gr.Markdown(I18N("status_idle"), elem_id="status")
                transcript_box = gr.Textbox(label=I18N("transcript"), lines=12, max_lines=24,
                                            interactive=False, buttons=["copy"], elem_id="transcript")
                downloads = gr.File(label=I18N("downloads"), file_count="multiple", interactive=False,
                                    height=140, elem_id="downloads")
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label=I18N("chat"), height=520, elem_id="chatbot",
                                     buttons=["copy", "copy_all"])
                question = gr.Textbox(label=I18N("question"), placeholder=I18N("question_locked"),
                                      interactive=False, max_length=chat.MAX_QUESTION_CHARS, submit_btn=True,
                                      elem_id="question")
                with gr.Row():
                    clear = gr.ClearButton([question, chatbot], value=I18N("clear"), elem_id="clear")
                gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label=I18N("examples"))

        outputs = [state, status, transcript_box, downloads, question, chatbot, process]

        def finished(transcript: Transcript, current: dict | None) -> dict:
            _remove_session_files(current)
            folder = Path(tempfile.mkdtemp(prefix="session-", dir=_sessions_dir()))
            files = write_exports(transcript, folder, transcript.source)
            return {
                state: {"transcript": transcript, "dir": str(folder)},
                status: _summary(transcript),
                transcript_box: to_txt(transcript),
                downloads: [str(f) for f in files],
                question: gr.update(interactive=True, placeholder=I18N("question_ready")),
                chatbot: [],
                process: gr.update(interactive=True),
            }

        def failed(error: Exception, current: dict | None) -> dict:
            """The message in the status line; the rest of the page stays as it was, and usable."""
            shown = current["transcript"] if current else None
            return {status: f"⚠️ {_failure(error)}", transcript_box: to_txt(shown) if shown else "",
                    process: gr.update(interactive=True)}

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
                return hit
            return {"id": uuid.uuid4().hex, "path": path, "url": url if chosen == "link" else None,
                    "settings": settings}

        async def work(job, current, request: gr.Request, progress):
            """Progress updates while the job runs, then the finished page; polling, it holds no thread."""
            session = getattr(request, "session_hash", None) or job["id"]
            fetched, transcription = None, None
            try:
                if running() >= base.max_jobs:  # a cancelled job still winding down keeps its slot
                    log.info("waiting for %d job(s) still winding down", running())
                    yield {status: "Waiting for a free slot…"}
                    while running() >= base.max_jobs:
                        await asyncio.sleep(JOB_POLL)
                path = job["path"]
                if job["url"]:
                    progress(0.0, desc="Fetching the link…")
                    yield {status: "Fetching the link…"}
                    fetched = Path(tempfile.mkdtemp(prefix="fetch-", dir=_sessions_dir()))
                    path = await anyio.to_thread.run_sync(download, job["url"], fetched, job["settings"])
                transcription = Job(Path(path), job["settings"])
                _session_jobs[session] = transcription
                started, live = time.monotonic(), LiveTranscript()
                while not transcription.over:
                    for item in transcription.poll():
                        if isinstance(item, Transcript):
                            yield finished(item, current)
                            return
                        line = _describe(item, time.monotonic() - started)
                        progress(item.fraction or 0.0, desc=line)
                        yield {status: line, transcript_box: to_txt(live.add(item))}
                    await asyncio.sleep(JOB_POLL)
            finally:
                if transcription is not None:
                    transcription.close()  # a no-op once it is done; else the visitor left: stop sending
                    if _session_jobs.get(session) is transcription:
                        del _session_jobs[session]
                if fetched and transcription is not None:  # the downloaded media is not kept
                    _when_finished(transcription, lambda: shutil.rmtree(fetched, ignore_errors=True))
                elif fetched:
                    shutil.rmtree(fetched, ignore_errors=True)

        def begin(file, recording, url, chosen, language_code, vocabulary_hint, api_key, current):
            """Check the input and the cache at once, before waiting for a job slot: a recording that
            is already transcribed is shown without queueing behind other visitors' jobs."""
            try:
                found = prepare(file, recording, url, chosen, language_code, vocabulary_hint, api_key)
            except Exception as e:
                return failed(e, current)
            if isinstance(found, Transcript):
                return finished(found, current)
            return {ticket: found, process: gr.update(interactive=False), status: "Waiting for a free slot…"}

        async def run(job, current, request: gr.Request, progress=gr.Progress()):
            """A transcription in one of the MAX_CONCURRENT_JOBS slots of Gradio's queue."""
            if not job:
                return
            try:
                async for update in work(job, current, request, progress):
                    yield update
            except Exception as e:
                yield failed(e, current)

        async def transcribe(file, recording, url, language_code, vocabulary_hint, api_key, current,
                             request: gr.Request, progress=gr.Progress()):
            """Transcribe the uploaded file, the recording or the link (the first one given); yields
            progress, then the transcript."""
            chosen = "upload" if file else "record" if recording else "link"
            try:
                found = await anyio.to_thread.run_sync(prepare, file, recording, url, chosen, language_code,
                                                       vocabulary_hint, api_key)
                if isinstance(found, Transcript):
                    yield finished(found, current)
                    return
                async for update in work(found, current, request, progress):
                    yield update
            except Exception as e:
                raise gr.Error(_failure(e)) from None

        def ask(question_text, history, current, api_key):
            """Answer a question from the transcript; yields the conversation as the answer streams."""
            history = list(history or [])
            if not current:
                raise gr.Error("Process a recording first, then ask about it.")
            try:
                settings = _user_settings(base, api_key)
                reply = chat.ask(current["transcript"], question_text, history, settings)
                turn = [{"role": "user", "content": question_text.strip()},
                        {"role": "assistant", "content": ""}]
                answer = ""
                for piece in reply.stream:
                    answer += piece
                    turn[1]["content"] = answer
                    yield history + turn, ""
                if reply.notice:
                    turn[1]["content"] = f"{answer}\n\n*{reply.notice}*"
                yield history + turn, ""
            except Exception as e:
                yield history, question_text  # the question stays in the box, to send again
                raise gr.Error(_failure(e)) from None

        upload_tab.select(lambda: "upload", None, source, queue=False, api_visibility="private")
        record_tab.select(lambda: "record", None, source, queue=False, api_visibility="private")
        link_tab.select(lambda: "link", None, source, queue=False, api_visibility="private")
        # A click checks the cache at once (no limit); only a recording that needs work sets the
        # ticket, whose job then waits in Gradio's queue for one of MAX_CONCURRENT_JOBS slots
        # (waiting visitors see their place; a waiting job holds no thread).
        process.click(  # trigger_mode="once": a click while it runs starts nothing
            begin, [upload, recording, link, source, language, vocabulary, user_key, state], [*outputs, ticket],
            api_visibility="private", concurrency_limit=None, show_progress="hidden", trigger_mode="once",
        )
        ticket.change(run, [ticket, state], outputs, api_visibility="private", concurrency_limit=base.max_jobs,
                      concurrency_id="transcribe", show_progress="minimal")
        api_transcribe.click(transcribe, [upload, recording, link, language, vocabulary, user_key, state], outputs,
                             api_name="transcribe", concurrency_limit=base.max_jobs, concurrency_id="transcribe")
        demo.unload(_stop_session_job)
        demo.load(lambda: _models_notice(base), None, notice, queue=False, api_visibility="private",
                  show_progress="hidden")
        question.submit(ask, [question, chatbot, state, user_key], [chatbot, question], api_name="ask",
                        concurrency_limit=None, show_progress="hidden")
        clear.click(None, api_visibility="private")
    return demo


def _sessions_dir() -> Path:
    SESSIONS_DIR.mkdir(parents=True, exist_ok=True)
    return SESSIONS_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Talk to your Audio, in the browser.")
    parser.add_argument("--share", action="store_true", help="also make a temporary public link")
    parser.add_argument("--host", help="address to listen on (GRADIO_SERVER_NAME, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (GRADIO_SERVER_PORT, default 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models.prefetch(settings)  # the first visitor's notice need not wait for the lookups
    demo = build_app(settings)
    _, local_url, share_url = demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, i18n=I18N,
        theme=gr.themes.Soft(), prevent_thread_lock=True,
        max_file_size=int(settings.max_file_mb * 1024 * 1024),  # refused before it reaches the disk
    )
    if args.share and not share_url:
        print("Could not create a public link (no internet access, or the tunnel is blocked). "
              f"The app is still running locally at {local_url}", file=sys.stderr, flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
