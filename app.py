"""Talk to your Audio: the Gradio app. Layout and wiring only; the work is done in `core`."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

from core import chat
from core.config import Settings
from core.errors import AppError, MissingApiKey
from core.fetch import download
from core.transcribe import LiveTranscript, iter_transcribe
from core.transcript import Transcript, to_txt, write_exports

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


_jobs: threading.BoundedSemaphore | None = None


@contextmanager
def _job_slot(progress):
    """At most MAX_CONCURRENT_JOBS transcriptions at once; the others wait their turn."""
    if not _jobs.acquire(blocking=False):
        progress(0.0, desc="The server is busy: waiting for a free slot…")
        _jobs.acquire()
    try:
        yield
    finally:
        _jobs.release()


def _progress_updates(path: Path, settings: Settings, progress):
    """(status line, transcript so far) while `path` is transcribed, then the transcript."""
    started, live = time.monotonic(), LiveTranscript()
    for item in iter_transcribe(path, settings):
        if isinstance(item, Transcript):
            yield item
            return
        line = item.describe(time.monotonic() - started)
        progress(item.fraction or 0.0, desc=line)
        yield line, to_txt(live.add(item))


def _user_settings(base: Settings, user_key: str | None, **changes) -> Settings:
    """The server's settings, with this visitor's options; their key only if the server has none."""
    key = (user_key or "").strip()
    if key and not base.api_key:
        changes["api_key"] = key
    return base.replace(**changes)


def build_app(base: Settings) -> gr.Blocks:
    global _jobs
    _jobs = threading.BoundedSemaphore(base.max_jobs)
    with gr.Blocks(title="Talk to your Audio", delete_cache=(900, 3600)) as demo:
        state = gr.State(None, delete_callback=_remove_session_files)  # {"transcript", "dir"} per tab
        source = gr.State("upload")
        gr.Markdown(I18N("title"))
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

        def transcribe(file, recording, url, chosen, language_code, vocabulary_hint, api_key, current,
                       progress=gr.Progress()):
            """Transcribe the uploaded file, the recording or the link; yields progress, then the transcript."""
            path = {"record": recording, "link": None}.get(chosen, file)
            if chosen == "record" and not recording:
                raise gr.Error("Record something first: the microphone recording is empty.")
            if chosen == "link" and not (url or "").strip():
                raise gr.Error("Paste a link to an audio or video file first.")
            if chosen not in ("record", "link") and not path:
                raise gr.Error("Choose a file or record something first.")
            shown = current["transcript"] if current else None
            yield {process: gr.update(interactive=False)}
            fetched, transcript = None, None
            try:
                settings = _user_settings(base, api_key, language=language_code or None,
                                          prompt=(vocabulary_hint or "").strip() or None)
                with _job_slot(progress):
                    if chosen == "link":
                        progress(0.0, desc="Fetching the link…")
                        yield {status: "Fetching the link…"}
                        fetched = Path(tempfile.mkdtemp(prefix="fetch-", dir=_sessions_dir()))
                        path = download(url, fetched, settings)
                    for update in _progress_updates(Path(path), settings, progress):
                        if isinstance(update, Transcript):
                            transcript = update
                        else:
                            yield {status: update[0], transcript_box: update[1]}
            except AppError as e:
                yield {status: "", transcript_box: to_txt(shown) if shown else "",
                       process: gr.update(interactive=True)}
                raise gr.Error(_for_visitor(e)) from None
            finally:
                if fetched:  # the downloaded media is not kept
                    shutil.rmtree(fetched, ignore_errors=True)
            _remove_session_files(current)
            folder = Path(tempfile.mkdtemp(prefix="session-", dir=_sessions_dir()))
            files = write_exports(transcript, folder, transcript.source)
            yield {
                state: {"transcript": transcript, "dir": str(folder)},
                status: _summary(transcript),
                transcript_box: to_txt(transcript),
                downloads: [str(f) for f in files],
                question: gr.update(interactive=True, placeholder=I18N("question_ready")),
                chatbot: [],
                process: gr.update(interactive=True),
            }

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
            except AppError as e:
                yield history, question_text  # the question stays in the box, to send again
                raise gr.Error(_for_visitor(e)) from None

        upload_tab.select(lambda: "upload", None, source, queue=False, api_visibility="private")
        record_tab.select(lambda: "record", None, source, queue=False, api_visibility="private")
        link_tab.select(lambda: "link", None, source, queue=False, api_visibility="private")
        process.click(  # trigger_mode="once": a click while it runs starts nothing
            transcribe, [upload, recording, link, source, language, vocabulary, user_key, state],
            [state, status, transcript_box, downloads, question, chatbot, process],
            api_name="transcribe", concurrency_limit=None, show_progress="minimal", trigger_mode="once",
        )
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
    demo = build_app(settings)
    _, local_url, share_url = demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, i18n=I18N,
        theme=gr.themes.Soft(), prevent_thread_lock=True,
    )
    if args.share and not share_url:
        print("Could not create a public link (no internet access, or the tunnel is blocked). "
              f"The app is still running locally at {local_url}", file=sys.stderr, flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
