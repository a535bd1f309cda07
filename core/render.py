"""HTML and markdown for the page: the transcript as paragraphs, citations as links to the moment.

Both follow a contract with the page's script (assets/player.js): a link to `#t=SECONDS` plays
the recording from there, a `.seg[data-t]` is a sentence that does the same when clicked, and the
`p.para` whose `data-start`..`data-end` holds the playing time is marked `playing`.

With speakers, a paragraph opens with its speaker's name, a `button.spk[data-spk=LABEL]` (for
the page to rename them on a click), in one of SPEAKER_COLOURS colours (`c0`..`c7`, by the
label's number; assets/player.css has them for light and dark themes); `speakers_html` lists
who spoke and for how long with the same buttons.

Citations are what the model is told to write (core.chat.SYSTEM_RULES): `[01:23]`, `[1:02:03]`,
and in practice also ranges (`[01:02–01:40]`) and lists (`[01:02, 03:04]`). `link_citations`
turns each moment into a markdown link and `unlink_citations` gives the exact text back, so the
conversation sent to the model again holds plain citations. Nothing here imports gradio.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Sequence

from .i18n import Text
from .transcript import Segment, Transcript, default_name, format_timestamp, paragraphs, speaker_stats

# One moment: h:mm:ss, or m:ss / mm:ss (minutes may pass 59: a model may write [75:30]).
TIME = r"(?:\d{1,2}:[0-5]\d:[0-5]\d|\d{1,3}:[0-5]\d)"
_DASH = r" *[-–—] *"
ITEM = rf"{TIME}(?:{_DASH}{TIME})?"  # a moment or a range
_SEP = r" *[,;] *"
# A citation as the model writes it: one bracket of moments and ranges. Not an escaped bracket
# (`\[`), and not a bracket that is already a link's text (`[01:02](...)`).
CITATION = re.compile(rf"(?<!\\)\[( *)({ITEM}(?:{_SEP}{ITEM})*)( *)\](?!\()")
_TIME = re.compile(TIME)
_ITEM = re.compile(ITEM)
_ITEMS = re.compile(rf"({ITEM})|({_SEP})")

# What `link_citations` makes of one, for `unlink_citations`: the same bracket with `\[` and `\]`,
# each moment that is in the recording a link `[...](#t=N)` (the first and last with the brackets
# in their text), the others plain.
_N = r"\]\(#t=\d+(?:\.\d+)?\)"
_FIRST = rf"(?:\[\\\[ *{ITEM}{_N}|\\\[ *{ITEM})"
_ONLY = rf"(?:\[\\\[ *{ITEM} *\\\]{_N}|\\\[ *{ITEM} *\\\])"
_MIDDLE = rf"{_SEP}(?:\[{ITEM}{_N}|{ITEM})"
_LAST = rf"{_SEP}(?:\[{ITEM} *\\\]{_N}|{ITEM} *\\\])"
_LINKED = re.compile(rf"(?<!\\)(?:{_ONLY}|{_FIRST}(?:{_MIDDLE})*{_LAST})")
_LINK_PARTS = re.compile(r"\]\(#t=\d+(?:\.\d+)?\)|(?<!\\)\[")

SPEAKER_COLOURS = 8  # the palette's size: assets/player.css styles `.spk.c0` to `.spk.c7`

TOLERANCE = 1.0  # seconds past the recording's end a citation may still point (timestamps are cut, not rounded)

# Code is left alone: fenced blocks (``` or ~~~, up to the same fence or the end) and code spans.
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_TICKS = re.compile(r"`+")


def to_seconds(stamp: str) -> int:
    """`01:02` → 62, `1:02:03` → 3723."""
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total


def _num(x: float) -> str:
    """A number for an attribute or a link: 12.34, 40.1, 12."""
    return f"{max(0.0, x):.2f}".rstrip("0").rstrip(".")


def _outside_code(text: str):
    """(is_code, piece) pieces of a markdown text, in order: fenced blocks and code spans are code."""
    lines = text.splitlines(keepends=True)
    plain: list[str] = []
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i].rstrip("\r\n"))
        if opening is None:
            plain.append(lines[i])
            i += 1
            continue
        fence = opening.group(1)
        closing = re.compile(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}} *")
        j = i + 1
        while j < len(lines) and not closing.fullmatch(lines[j].rstrip("\r\n")):
            j += 1
        yield from _spans("".join(plain))
        plain = []
        yield True, "".join(lines[i:j + 1])
        i = j + 1
    yield from _spans("".join(plain))


def _spans(text: str):
    """Code spans: a run of backticks up to the next run of the same length (else it is text)."""
    pos = start = 0
    while True:
        run = _TICKS.search(text, pos)
        if run is None:
            break
        close = run.end()
        while (close_run := _TICKS.search(text, close)) and len(close_run.group()) != len(run.group()):
            close = close_run.end()
        if close_run is None:
            pos = run.end()
            continue
        if run.start() > start:
            yield False, text[start:run.start()]
        yield True, text[run.start():close_run.end()]
        pos = start = close_run.end()
    if start < len(text):
        yield False, text[start:]


def _in_link_text(text: str, m: re.Match) -> bool:
    """The bracket is the whole text of a link already, as in `[[01:02]](#t=62)`."""
    return text[m.start() - 1:m.start()] == "[" and text.startswith("](", m.end())


def _moment(seconds: int, starts: Sequence[float]) -> str:
    """Where a link to a cited second goes: the start of the sentence that begins within that
    second, if one does (a citation is its start cut to the second: the click lands on the
    sentence, and the page marks its paragraph), else the second itself."""
    i = bisect.bisect_left(starts, seconds)
    return _num(starts[i]) if i < len(starts) and starts[i] < seconds + 1 else str(seconds)


def _link_bracket(m: re.Match, duration: float, starts: Sequence[float] = ()) -> str:
    lead, body, trail = m.group(1), m.group(2), m.group(3)
    parts = [(it.group(), it.group(1) is not None) for it in _ITEMS.finditer(body)]
    items = [i for i, (_, is_item) in enumerate(parts) if is_item]
    first, last = items[0], items[-1]
    limit = duration + TOLERANCE
    linkable = {i for i in items if all(to_seconds(s) <= limit for s in _TIME.findall(parts[i][0]))}
    if not linkable:
        return m.group()
    out = []
    for i, (piece, is_item) in enumerate(parts):
        if not is_item:
            out.append(piece)
            continue
        text = (rf"\[{lead}" if i == first else "") + piece + (rf"{trail}\]" if i == last else "")
        if i in linkable:
            text = f"[{text}](#t={_moment(to_seconds(_TIME.match(piece).group()), starts)})"
        out.append(text)
    return "".join(out)


def link_citations(markdown: str, duration: float, starts: Sequence[float] = ()) -> str:
    """Every cited moment within the recording (`duration` seconds, plus a second) as a markdown
    link to `#t=SECONDS`, the visible text unchanged: `[01:02]` → `[\\[01:02\\]](#t=62)`; a range
    links its start (`[\\[01:02–01:40\\]](#t=62)`); each moment of a list links on its own
    (`[\\[01:02](#t=62), [03:04\\]](#t=184)`). Code, escaped brackets and links are left alone;
    linking twice changes nothing more. With the segments' `starts` (sorted), a link goes to the
    sentence that starts within the cited second (`#t=62.4`)."""
    if not markdown or ":" not in markdown:
        return markdown or ""
    out = []
    for code, piece in _outside_code(markdown):
        if not code:
            piece = CITATION.sub(
                lambda m: m.group() if _in_link_text(m.string, m) else _link_bracket(m, duration, starts), piece)
        out.append(piece)
    return "".join(out)


# What `safe_markdown` lets through as a link: a moment of the recording, or a web page.
_MOMENT = re.compile(r"#t=\d+(?:\.\d+)?")
_WEB = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)
_ODD = r"(?<!\\)((?:\\\\)*)"  # after an even run of backslashes: what follows is not escaped
_IMAGE = re.compile(_ODD + r"!\[")
_ANGLE = re.compile(_ODD + r"\\?<")
_DEFINITION_END = re.compile(_ODD + r"\]:")  # `[label]:` defines a link
_OPEN = re.compile(_ODD + r"\[")
_LINK_END = re.compile(_ODD + r"\]\(")
_FTP = re.compile(r"(ftp):(?=//)", re.IGNORECASE)
_AT = re.compile(_ODD + "@")
_WORD = re.compile(r"\S+")
_MERMAID = re.compile(r"((?:`{3,}|~{3,})[ \t]*)mermaid", re.IGNORECASE)
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ZWSP = "\u200b"
# In code, what would be an image, a tag, a link, a definition or an autolink if markdown read it
# as text after all: a zero-width space breaks each, unseen.
_CODE_DEFUSE = re.compile(r"(?<=<)(?=[A-Za-z/!?])|(?<=!)(?=\[)|(?<=\])(?=[(:])|(?<=[\w.+-])(?=@\w)|(?<=ftp)(?=:)",
                          re.IGNORECASE)


def safe_markdown(markdown: str) -> str:
    """Model (or visitor) text made safe to render as markdown in the page: it shows text and
    links, nothing else, so it cannot make the browser fetch or run anything.

    - An image (`![..](..)`, `![..][ref]`) is shown as its text: its `!` is escaped.
    - Raw HTML (`<img>`, `<picture>`, `<svg>`, `<iframe>`, `<style>`, `<a href=javascript:..>`...)
      and autolinks (`<http://..>`) are shown as text: every `<` is `&lt;`.
    - A link (`[..](dest)`) stays a link only to a moment (`#t=SECONDS`) or an http(s) page, its
      destination read as the browser would (entities and escapes decoded) and written back
      plainly; any other (javascript:, data:, file:, //host, a path) is shown as text. The page
      (Gradio) opens web links in a new tab with rel="noopener noreferrer".
    - Link reference definitions (`[1]: url`), hence reference links and images, are shown as
      text; so are e-mail and ftp autolinks.
    - Code is shown as it is, with a zero-width space inside anything above, so that it stays
      harmless even where the page's markdown reads code differently from `_outside_code`; a
      `mermaid` fence, which Gradio would put into the page as HTML, is plain code.

    Idempotent (safe_markdown(safe_markdown(x)) == safe_markdown(x)): a conversation the
    browser keeps is made safe again when it comes back, unchanged."""
    if not markdown:
        return ""
    markdown = _MERMAID.sub(r"\1text", markdown)
    return "".join(_CODE_DEFUSE.sub(_ZWSP, piece.replace(_ZWSP, "")) if code else _safe_text(piece)
                   for code, piece in _outside_code(markdown))


_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")


def plain_markdown(text: str) -> str:
    """A text shown in markdown exactly as it is, on one line (a file name, a page's title, a
    speaker's name): every ASCII punctuation mark escaped, `<` as `&lt;`."""
    return _PUNCTUATION.sub(lambda m: "&lt;" if m.group() == "<" else "\\" + m.group(), " ".join(text.split()))


def _safe_text(text: str) -> str:
    """`safe_markdown` of a text without code."""
    text = _ANGLE.sub(r"\1&lt;", text)
    text = _undefine(text)
    text = _FTP.sub(r"\1\\:", text)
    text = _WORD.sub(_unmail, text)
    text, images = _unimage(text)
    out, pos = [], 0
    for m in _LINK_END.finditer(text):
        if m.start() < pos:
            continue
        start = m.end()  # just past `](`
        dest, end = _destination(text, start)
        out.append(text[pos:start - 1])
        if dest is None or start - 2 in images:  # not a link the page may show: the `(` escaped, the rest text
            out.append("\\(")
            pos = start
        else:
            out.append("(" + dest)
            pos = end
    out.append(text[pos:])
    return "".join(out)


# How far an image's text is looked through for its end, and a link's destination for its own (in
# characters, and brackets or parentheses deep): past them an image's `](` is judged as any link's,
# and a destination is not one. Each `safe_markdown` then takes time in proportion to the text.
MAX_ALT_CHARS = 1000
MAX_URL_CHARS = 2000
MAX_NESTING = 32
_ESCAPED = r"\\[!-/:-@\[-`{-~]"
_BRACKET = re.compile(_ESCAPED + r"|[\[\]]")
_DEST_STOP = re.compile(_ESCAPED + r"|[()\s\x00-\x1f]")


def _undefine(text: str) -> str:
    """No link reference definitions (`[label]: url`): every `[` that could open a label closed by
    a `]:` (up to 999 characters before it, after the last `]`) escaped."""
    out, pos = [], 0
    for end in _DEFINITION_END.finditer(text):
        close = end.end() - 2
        start = max(pos, close - 999)
        for bracket in _BRACKET.finditer(text, start, close):
            if bracket.group() == "]":
                start = bracket.end()
        for bracket in _OPEN.finditer(text, start, close):  # seeing the backslashes before `start`
            out.append(text[pos:bracket.end() - 1] + "\\")
            pos = bracket.end() - 1
        out.append(text[pos:close])
        pos = close
    return "".join(out) + text[pos:]


def _unimage(text: str) -> tuple[str, set[int]]:
    """Each image (`![alt](..)`, `![alt][..]`) as text, `\\!\\[alt](..)`, and where the `]`
    that ends each one's alt text now is, so that its destination is not made a link either."""
    bangs, ends = [], []
    for m in _IMAGE.finditer(text):
        bangs.append(m.end() - 2)
        depth = 1
        for bracket in _BRACKET.finditer(text, m.end(), min(len(text), m.end() + MAX_ALT_CHARS)):
            depth += {"[": 1, "]": -1}.get(bracket.group(), 0)
            if depth == 0:
                ends.append(bracket.start())
            if depth == 0 or depth > MAX_NESTING:
                break
    shifted = {end + 2 * bisect.bisect_left(bangs, end) for end in ends}  # each image's two backslashes
    return _IMAGE.sub(r"\1\\!\\[", text), shifted


def _unmail(word: re.Match) -> str:
    """A word's `@`s escaped, so that no e-mail address in it becomes a mailto: link, but for
    those in a web address (`https://x/@me`, `www.x/@me`)."""
    text = word.group()
    if "@" not in text:
        return text
    web = 0 if text.lower().startswith("www.") else text.find("://")
    return _AT.sub(lambda m: m.group() if web != -1 and m.end() - 1 > web else m.group(1) + "\\@", text)


def _raw_destination_end(text: str, i: int) -> int | None:
    """Where a destination written without `<>` that starts at `text[i]` ends: at a space, a
    control character or an unbalanced `)`; None when it is too long or too deep to be one."""
    depth, limit = 0, min(len(text), i + MAX_URL_CHARS)
    for stop in _DEST_STOP.finditer(text, i, limit):
        char = stop.group()
        if char == "(":
            depth += 1
            if depth > MAX_NESTING:
                return None
        elif char == ")" and depth:
            depth -= 1
        elif len(char) == 1:
            return stop.start()
    return limit if limit == len(text) else None


def _destination(text: str, start: int) -> tuple[str | None, int]:
    """The link destination that starts at `text[start]` (after `](`), as markdown will read it:
    (the destination written back safely, where it ends) if it is a moment or an http(s) page,
    else (None, start)."""
    m = re.compile(r"[ \t]*\n?[ \t]*").match(text, start)
    i = m.end()
    if text.startswith("<", i) or text.startswith("&lt;", i):  # `<dest>` (its `<` already made `&lt;`)
        i += 1 if text[i] == "<" else 4
        close = text.find(">", i)
        if close < 0 or "\n" in text[i:close]:
            return None, start
        raw, end = text[i:close], close + 1
    else:
        end = _raw_destination_end(text, i)
        if end is None:
            return None, start
        raw = text[i:end]
    url = html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", raw)).strip()
    if _MOMENT.fullmatch(url):
        return url, end
    if _WEB.fullmatch(url):
        return html.escape(url.replace("(", "%28").replace(")", "%29"), quote=False), end
    return None, start


def _unlink(m: re.Match) -> str:
    text = m.group()
    if "](#t=" not in text:
        return text  # an escaped bracket the writer wrote, say in LaTeX: not ours
    return _LINK_PARTS.sub("", text).replace(r"\[", "[").replace(r"\]", "]")


def unlink_citations(markdown: str) -> str:
    """The text `link_citations` was given: `unlink_citations(link_citations(x, d)) == x`."""
    if not markdown or "](#t=" not in markdown:
        return markdown or ""
    return "".join(piece if code else _LINKED.sub(_unlink, piece) for code, piece in _outside_code(markdown))


def citation_seconds(text: str, duration: float | None = None) -> list[int]:
    """The moments a text cites, in order, in seconds (a range: its start), linked or not; with
    `duration`, only those within the recording."""
    found = []
    for code, piece in _outside_code(unlink_citations(text or "")):
        if code:
            continue
        for m in CITATION.finditer(piece):
            for item in _ITEM.finditer(m.group(2)):
                seconds = to_seconds(_TIME.match(item.group()).group())
                if duration is None or seconds <= duration + TOLERANCE:
                    found.append(seconds)
    return found


def transcript_html(t: Transcript | None, *, empty: str = "No transcript yet.") -> str:
    """The transcript for a `gr.HTML`: `<div id="transcript-doc">` with a `<p class="para">` per
    paragraph (`data-start`, `data-end` in seconds), each opening with its speaker when known
    (`_speaker_button`), then its time as a link to `#t=START`, then its sentences as `<span
    class="seg" data-t="START">`. All text escaped."""
    paras = paragraphs(t) if t is not None else []
    lang = t.language if t is not None and t.language and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*",
                                                                         t.language) else None
    head = f'<div id="transcript-doc" lang="{lang}">' if lang else '<div id="transcript-doc">'
    if not paras:
        return f'{head}<p class="placeholder">{html.escape(empty)}</p></div>'
    hours = t.duration >= 3600 or paras[-1][-1].start >= 3600
    return "\n".join([head, *(_paragraph_html(t, para, hours) for para in paras), "</div>"])


def _paragraph_html(t: Transcript, para: list[Segment], hours: bool) -> str:
    start, end = para[0].start, max(s.end for s in para)
    segs = " ".join(f'<span class="seg" data-t="{_num(s.start)}">{html.escape(s.text.strip())}</span>'
                    for s in para)
    who = _speaker_button(t, para[0].speaker)
    return (f'<p class="para" dir="auto" data-start="{_num(start)}" data-end="{_num(end)}">{who + " " if who else ""}'
            f'<a class="ts" href="#t={_num(start)}">[{format_timestamp(start, hours=hours or None)}]</a> '
            f'{segs}</p>')


def speaker_colour(t: Transcript, label: str) -> int:
    """The palette index of a speaker: by the label's number ("S1" -> 0, "S9" -> 0 again), so a
    speaker keeps their colour as the transcript grows; another label, by its first appearance."""
    m = re.fullmatch(r"S(\d+)", label)
    index = int(m.group(1)) - 1 if m else list(t.speaker_names()).index(label)
    return max(0, index) % SPEAKER_COLOURS


def _speaker_button(t: Transcript, label: str | None) -> str:
    """A speaker's name as `<button type="button" class="spk cN" data-spk="S1">Ana</button>`,
    or "" without one. The name is user input: escaped, like the label."""
    if label is None:
        return ""
    name = t.meta.speakers.get(label) or default_name(label)
    return (f'<button type="button" class="spk c{speaker_colour(t, label)}" data-spk="{html.escape(label)}" '
            f'dir="auto">{html.escape(name)}</button>')


def speakers_html(t: Transcript | None, lang: str | None = "en") -> str:
    """Who spoke and for how long: `<div class="speakers">` with a title, then one `<li>` per
    speaker, most talking first (`speaker_stats`), their `button.spk` (as in the transcript),
    their talking time (h:mm:ss past an hour) and share, and a bar of that share
    (`--share`). "" for a transcript without speakers."""
    stats = speaker_stats(t) if t is not None else []
    if not stats:
        return ""
    hours = max(s.seconds for s in stats) >= 3600 or None
    rows = "".join(f'<li>{_speaker_button(t, s.label)} <span class="talk-time">'
                   f'{format_timestamp(round(s.seconds), hours=hours)}</span> <span class="share">{s.share:.0%}</span>'
                   f'<span class="share-bar" style="--share: {s.share * 100:.1f}%"></span></li>' for s in stats)
    title = html.escape(Text("Who spoke, and for how long").localized(lang))
    return f'<div class="speakers"><p class="speakers-title">{title}</p><ul>{rows}</ul></div>'
