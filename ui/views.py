"""HTML and markdown the page shows of a recording: its player, and answers whose cited moments
are links to the sentences they cite."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

import gradio as gr

from core import render
from core.audio.playback import Playback
from core.i18n import tr
from core.speakers.attach import count_of
from core.transcript import Transcript

from .labels import EXPORT_KINDS

MEDIA_ROUTE = "media"  # where the players' copies and captions are served (`page.media_routes`)


def file_url(path: Path) -> str:
    """A file of the media folder as the page links it: its keyed name under the media route
    (`page.media_routes`), relative to the page; no path of the server's disk."""
    return f"{MEDIA_ROUTE}/{quote(path.name)}"


def player(media: Playback | None, subtitles: Path | None, lang: str) -> str:
    """Our own `<audio>`/`<video>` element (`assets/player.js` moves it to clicked moments): the
    browser streams it with range requests instead of decoding a whole waveform."""
    if media is None:
        gone = tr(lang, "The recording itself is no longer on this server: process it again to listen to it.")
        return f'<p class="player-missing">{html.escape(gone)}</p>'
    src = html.escape(file_url(media.path))
    if media.kind == "video":
        label = html.escape(tr(lang, "Transcript"))
        track = (f'<track kind="subtitles" src="{html.escape(file_url(subtitles))}" label="{label}" default>'
                 if subtitles else "")
        return f'<video controls preload="metadata" playsinline src="{src}" type="{media.mime}">{track}</video>'
    return f'<audio controls preload="metadata" src="{src}" type="{media.mime}"></audio>'


def linked(text: str, t: Transcript) -> str:
    """An answer (or a summary) safe to show (`render.safe_markdown`: text and links, no images
    or HTML), its cited moments links to the sentences they cite."""
    return render.link_citations(render.safe_markdown(text), t.duration, [s.start for s in t.segments])


def linked_history(turns: list[dict], t: Transcript) -> list[dict]:
    """A conversation to show again (it comes back from the visitor's browser): every message made safe."""
    return [{"role": m["role"], "content": linked(m["content"], t) if m["role"] == "assistant"
             else render.safe_markdown(m["content"])} for m in turns]


def models_notice(lines: list[str]) -> tuple[str, bool]:
    """The notice of models in use that shut down soon, and whether to show it."""
    return "\n\n".join(f"⚠️ {line}" for line in lines), bool(lines)


def speaker_choice(setting: str) -> str:
    """A DIARIZATION setting as the speakers menu shows it ("auto", "3", "2-4", "off")."""
    count = count_of(setting)
    return "off" if count is None else str(count)


def speaker_parts(t: Transcript, selected: str | None = None) -> tuple:
    """The speakers' talking times, and the renaming controls (shown when there are speakers)."""
    speakers = t.meta.speakers
    choices = [(name, label) for label, name in speakers.items()]
    first = selected if selected in speakers else next(iter(speakers), None)
    shown = bool(speakers)
    return (render.speakers_html(t) if shown else "",
            gr.update(choices=choices, value=first, visible=shown),
            gr.update(value=speakers.get(first, "") if first else "", visible=shown),
            gr.update(visible=shown))


def downloads(buttons: list, files: list[Path]) -> dict:
    """Each download button with its export (`labels.EXPORT_KINDS` order), hidden when the
    transcript has none of that kind (rttm without speakers)."""
    by_kind = {f.suffix.lstrip("."): f for f in map(Path, files)}
    return {button: gr.update(value=str(by_kind[kind]) if kind in by_kind else None, visible=kind in by_kind)
            for button, kind in zip(buttons, EXPORT_KINDS)}
