"""HTML of the Library tab: the recordings, the sentences found, and answers whose citations
open a recording at a moment.

Whatever opens a recording is a `button.lib-open` with `data-rec` (its public id) and `data-t`
(seconds): the tab's HTML components turn a click on one into an event (`OPEN_JS`). Every text
that comes from a recording, a title or a model is escaped: nothing here renders markup,
images or links that a transcript or an answer holds.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from core.i18n import tr
from core.library.ask import CITATION
from core.library.owners import Entry, Found
from core.render import to_seconds
from core.transcript import format_timestamp

from .status import language_label

# Run by each of the tab's HTML components when it is rendered (`gr.HTML(js_on_load=...)`).
OPEN_JS = """element.addEventListener('click', function (ev) {
  var b = ev.target.closest && ev.target.closest('button.lib-open[data-rec]');
  if (!b) return;
  ev.preventDefault();
  trigger('click', {rec: b.getAttribute('data-rec'), t: parseFloat(b.getAttribute('data-t')) || 0});
});"""

# After a recording is opened: play it from the moment asked, once its player is on the page
# (`seek` is {"src": the player's address, "t": seconds}; assets/player.js has `talkSeek`).
SEEK_JS = """(seek) => {
  var want = {}; try { want = JSON.parse(seek || '{}'); } catch (e) { return; }
  if (!want.src) return;
  var tries = 0;
  (function go() {
    var m = document.querySelector('#player audio, #player video');
    if (m && m.getAttribute('src') === want.src && window.talkSeek) { window.talkSeek(want.t || 0); return; }
    if (++tries < 200) setTimeout(go, 50);
  })();
}"""


def _open(public_id: str, seconds: float, inner: str, title: str = "") -> str:
    hint = f' title="{html.escape(title)}"' if title else ""
    return (f'<button type="button" class="lib-open" data-rec="{html.escape(public_id)}" '
            f'data-t="{max(0.0, seconds):.2f}"{hint}>{inner}</button>')


def listing(entries: list[Entry], lang: str, filtered: bool = False) -> str:
    """The recordings as a table: title (opens it), date added, length, language, speakers, summary."""
    if not entries:
        empty = ("No recording of your library matches." if filtered else
                 "Your library is empty: the recordings you transcribe on this page come here.")
        return f'<p class="lib-empty">{html.escape(tr(lang, empty))}</p>'
    heads = "".join(f"<th>{html.escape(tr(lang, h))}</th>" for h in
                    ("Title", "Added", "Length", "Language", "Speakers", "Summary"))
    rows = []
    for e in entries:
        r = e.recording
        cells = [_open(e.id, 0, html.escape(r.title)), f"{datetime.fromtimestamp(r.added):%Y-%m-%d %H:%M}",
                 format_timestamp(r.duration), html.escape(language_label(r.language, lang) if r.language else ""),
                 html.escape(", ".join(r.speakers)), html.escape(r.summary)]
        rows.append(f'<tr data-rec="{html.escape(e.id)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="lib-list"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def hits(found: list[Found], lang: str, query: str = "", narrowed: bool = False) -> str:
    """Each sentence found as "recording · [mm:ss] · speaker · sentence", opening it there
    (`data-query`: what was searched for; `narrowed`: in some of the recordings only)."""
    asked = f' data-query="{html.escape(query)}"'
    if not found:
        empty = "Nothing in the recordings chosen matches." if narrowed else "Nothing in your library matches."
        return f'<p class="lib-empty"{asked}>{html.escape(tr(lang, empty))}</p>'
    items = []
    for f in found:
        h = f.hit
        parts = [f"<b>{html.escape(h.title)}</b>", f"[{format_timestamp(h.start)}]",
                 *([html.escape(h.speaker)] if h.speaker else []), html.escape(h.text)]
        items.append(f"<li>{_open(f.id, h.start, ' · '.join(parts))}</li>")
    return f'<ol class="lib-hits"{asked}>{"".join(items)}</ol>'


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def answer(text: str, sources: dict[str, str], notices: list[str] | None = None) -> str:
    """An answer as safe HTML (escaped; bold and line breaks kept), each citation of a recording
    it was given a button that opens that recording at that moment. With `notices` (a list,
    maybe empty), the answer is complete and says so (`data-done`)."""
    out, pos = [], 0
    for m in CITATION.finditer(text or ""):
        out.append(html.escape(text[pos:m.start()]))
        title, stamp = m.group(1), m.group(2)
        if title in sources:
            out.append(_open(sources[title], to_seconds(stamp), html.escape(m.group(0)), title))
        else:
            out.append(html.escape(m.group(0)))
        pos = m.end()
    out.append(html.escape((text or "")[pos:]))
    body = _BOLD.sub(r"<strong>\1</strong>", "".join(out))
    paragraphs = [p.replace("\n", "<br>") for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    paragraphs += [f"<em>{html.escape(n)}</em>" for n in notices or []]
    done = " data-done" if notices is not None else ""
    return f'<div class="lib-answer"{done}>' + "".join(f"<p>{p}</p>" for p in paragraphs) + "</div>"


def choices(entries: list[Entry]) -> list[tuple[str, str]]:
    """The recordings for the menus that name them (to rename or remove; to search and ask):
    "title (date)", by public id."""
    return [(f"{e.recording.title} ({datetime.fromtimestamp(e.recording.added):%Y-%m-%d})", e.id) for e in entries]


def still_there(chosen, entries: list[Entry]) -> list[str]:
    """Of the recordings chosen (public ids), those the library still lists, in the order chosen."""
    ids = {e.id for e in entries}
    return [c for c in ([chosen] if isinstance(chosen, str) else chosen or []) if c in ids]
