"""The page's words for what happens: the status line (progress, results, errors) and the line
naming the recording shown, in the visitor's language."""

from __future__ import annotations

import html
import logging

import gradio as gr

from core.config import Settings
from core.errors import AppError, redact
from core.i18n import language_of, to_visitor, tr
from core.render import plain_markdown
from core.transcribe.backends.languages import language_name, languages
from core.transcribe.progress import Progress
from core.transcript import Transcript, format_timestamp

from .labels import LANGUAGES

log = logging.getLogger("app")


def lang_of(request: gr.Request | None) -> str:
    """The visitor's language, from their browser's Accept-Language."""
    headers = getattr(request, "headers", None)
    return language_of(headers.get("accept-language") if headers else None)


def status_html(text: str, kind: str = "info", fraction: float | None = None) -> str:
    """The status line's HTML; `text` is escaped (it may carry a visitor's file name)."""
    icon = "⚠️ " if kind == "error" else ""
    role = ' role="alert"' if kind == "error" else ' aria-live="polite"'
    bar = f'<progress max="1" value="{fraction:.3f}"></progress>' if fraction is not None else ""
    return f'<div class="status status-{kind}"{role}>{icon}{html.escape(text)}{bar}</div>'


def failure(error: Exception, lang: str) -> str:
    """A message for the visitor, whatever went wrong; our own bugs are logged, not shown."""
    if isinstance(error, AppError):  # what a visitor can do: no server, setting or password named
        return redact(error.for_visitor.localized(lang))
    log.error("unexpected error: %s", redact(repr(error)), exc_info=error)
    return tr(lang, "Something went wrong on the server while doing that (an internal error). Please try again; "
                    "if it happens again, try another file or come back later.")


def count(lang: str, n: int, one: str, many: str) -> str:
    return tr(lang, one if n == 1 else many, n=n)


def summary_line(t: Transcript, lang: str) -> str:
    """What was transcribed, how, and the notes of the run."""
    where = tr(lang, "a local Whisper model") if t.meta.backend == "local" else tr(lang, "the API")
    segments = count(lang, len(t.segments), "{n} segment", "{n} segments")
    line = tr(lang, "Transcribed {minutes:.1f} min in {segments} with {where} ({model}). Ask away →",
              minutes=t.duration / 60, segments=segments, where=where, model=t.model_name or "?")
    return " ".join([line, *(f"⚠️ {to_visitor(n, lang)}" for n in t.meta.notes)])


def describe(p: Progress, left: float | None, lang: str) -> str:
    """One status line for a person: what is happening now, part k of n, and the time left once
    this run's own pace can tell it."""
    if p.message:
        return to_visitor(p.message, lang)  # the notes core knows in Spanish too
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
        line += " · " + tr(lang, "about {left} left", left=duration(left))
    return line + "…"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def loaded_line(t: Transcript, lang: str, stale: bool = False) -> str:
    """The recording shown: its name, length, segments, speakers (when known) and the language heard."""
    bits = [f"**{plain_markdown(t.source or tr(lang, 'Recording'))}**", format_timestamp(t.duration),
            count(lang, len(t.segments), "{n} segment", "{n} segments")]
    if speakers := len(t.speaker_names()):
        bits.append(count(lang, speakers, "{n} speaker", "{n} speakers"))
    if t.language:  # the language heard: "en" from some models, "english" from others
        bits.append(language_label(t.language, lang))
    line = " · ".join(bits)
    if stale:
        stale_note = tr(lang, "These results are for this recording, not the one chosen above: press Process.")
        line += f"  \n⚠️ {stale_note}"
    return line


def language_label(code: str, lang: str) -> str:
    """"Spanish" / "Español" for "es"; a name a model gave ("english") as it is, capitalized."""
    name = language_name(code.lower()) if len(code) <= 3 else code.capitalize()
    if isinstance(name, str):  # a code we have no name for, or a model's own name
        return name
    text = name.localized(lang)
    return text[:1].upper() + text[1:]


def language_choices(settings: Settings) -> list[tuple[str, str]]:
    """The language menu: what the transcription in force understands (Auto and English for an
    English-only local model; every language for a multilingual one and for the API)."""
    known = languages(settings)
    return [(label, code) for label, code in LANGUAGES if not code or known is None or code in known]
