"""The transcript's exports: one writer per format (txt, srt, vtt, json, rttm), chosen from `EXPORTERS`.

When segments have speakers, each format says who speaks in its own way: "Name: " before the
text (txt, srt, the lines for programs), a voice span (vtt), the labels and a table of names
(json), speaker turns (rttm, which only exists for speakers). Without speakers, every format is
written exactly as before speakers existed, and there is no rttm.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Callable

import srt
import webvtt

from .errors import NoSpeakers
from .transcript import Segment, Transcript, format_timestamp, renamed_summary

# Consecutive segments of one speaker with less than this between them are one turn in RTTM
# (seconds): people breathe and pause 0.2-0.5 s inside a turn, and a shorter gap is no change
# of turn a scorer should see.
TURN_GAP_SECONDS = 0.5


def _said(t: Transcript, s: Segment) -> str:
    """The segment's text, after "Name: " when it has a speaker (the name on one line: it is
    user input)."""
    name = t.speaker_of(s)
    return f"{' '.join(name.split())}: {s.text}" if name else s.text


def to_txt(t: Transcript) -> str:
    return "".join(f"[{_hms(s.start)}] {_said(t, s)}\n" for s in t.segments)


def _hms(seconds: float) -> str:
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _caption(text: str) -> str:
    """Caption text both formats accept: one line, and no "-->" (their time separator)."""
    return " ".join(text.replace("-->", "->").split())


def to_srt(t: Transcript) -> str:
    subs = [
        srt.Subtitle(i, timedelta(seconds=s.start), timedelta(seconds=max(s.end, s.start + 0.001)),
                    _caption(_said(t, s)))
        for i, s in enumerate(t.segments, 1)
    ]
    return srt.compose(subs)


def _vtt_time(seconds: float) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _voice(name: str | None) -> str:
    """A WebVTT voice span's opening tag (`<v Ana>`), its name escaped as the format asks (a
    character reference for `&`, `<` and `>`: a `>` would end the tag), or "" without a name."""
    name = " ".join((name or "").split())
    if not name:
        return ""
    return "<v " + name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + ">"


def to_vtt(t: Transcript) -> str:
    """WebVTT; a segment with a speaker opens with a voice span, `<v Ana>text`, which players
    show or style as the speaker and readers (webvtt-py's `Caption.voice`) give back."""
    vtt = webvtt.WebVTT()
    for s in t.segments:
        end = max(s.end, s.start + 0.001)
        text = _voice(t.speaker_of(s)) + _caption(s.text)
        vtt.captions.append(webvtt.Caption(_vtt_time(s.start), _vtt_time(end), text))
    out = io.StringIO()
    vtt.write(out)
    return out.getvalue()


def to_json(t: Transcript) -> str:
    """The transcript; with its summary and chapters when it has them (`meta.summary`, put
    there by `answer.summary`): `"summary": {"kind", "bullets", ...}` and `"chapters": [{"start",
    "title"}]`, times in seconds like the segments'.

    With speakers, each segment keeps its label in `"speaker"` ("S1": stable, what a program
    joins on) and adds its name as shown in `"speaker_name"` ("Ana"), and a top-level
    `"speakers"` table gives every label's name (`{"S1": "Ana", "S2": "Speaker 2"}`), so that a
    reader needs neither our default names nor `meta.speakers` (which holds only the names
    given). The summary's bullets and titles use the names as they are now."""
    data = {**t.to_dict(), "model": t.model_name}
    meta = dict(data["meta"])
    summary = meta.pop("summary", None)
    data["meta"] = meta
    if t.has_speakers:
        names = t.speaker_names()
        data["speakers"] = names
        for seg in data["segments"]:
            if seg.get("speaker") is not None:
                seg["speaker_name"] = names[seg["speaker"]]
        if isinstance(summary, dict):
            summary = renamed_summary(summary, names)
    if isinstance(summary, dict):
        data["summary"] = {k: v for k, v in summary.items() if k not in ("chapters", "speakers")}
        data["chapters"] = list(summary.get("chapters") or [])
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _token(text: str) -> str:
    """One RTTM field: no whitespace inside (fields are separated by it)."""
    return "_".join(text.split()) or "_"


def speaker_turns(t: Transcript, gap: float = TURN_GAP_SECONDS) -> list[tuple[str, float, float]]:
    """(label, start, end) of each turn: consecutive segments with text of one speaker, less
    than `gap` seconds apart, in time order. Segments without a speaker belong to no turn."""
    turns: list[list] = []
    for s in sorted((s for s in t.segments if s.speaker is not None and s.text.strip()), key=lambda s: s.start):
        if turns and turns[-1][0] == s.speaker and s.start - turns[-1][2] < gap:
            turns[-1][2] = max(turns[-1][2], s.end)
        else:
            turns.append([s.speaker, s.start, s.end])
    return [(label, start, end) for label, start, end in turns]


def to_rttm(t: Transcript) -> str:
    """NIST RTTM, what diarization scorers read (dscore, pyannote.metrics): one line per
    speaker turn (`speaker_turns`), `SPEAKER <file> 1 <start> <duration> <NA> <NA> <name> <NA>
    <NA>`, times in seconds to the millisecond. The file is the recording's name (`safe_stem`),
    the speaker their name as shown, each with whitespace turned into "_"; two speakers whose
    names would read the same get their label after the name. Raises `NoSpeakers` for a
    transcript without speakers: there is no RTTM to give (`write_exports` leaves it out)."""
    if not t.has_speakers:
        raise NoSpeakers("This transcript has no speakers, so there is no RTTM to write: choose another "
                         "format, or transcribe it again with speakers turned on.")
    file_id = _token(safe_stem(t.source))
    names = {label: _token(name) for label, name in t.speaker_names().items()}
    taken = list(names.values())
    names = {label: f"{n}_{label}" if taken.count(n) > 1 else n for label, n in names.items()}
    return "".join(f"SPEAKER {file_id} 1 {start:.3f} {max(0.0, end - start):.3f} <NA> <NA> {names[label]} <NA> <NA>\n"
                   for label, start, end in speaker_turns(t))


EXPORTERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
    "rttm": to_rttm,
}
SPEAKERS_ONLY = frozenset({"rttm"})  # formats with nothing to say without speakers


def safe_stem(name: str | None, default: str = "transcript", limit: int = 80) -> str:
    """A file name stem from a recording's name: its own letters (any script), no path parts."""
    stem = Path(name or "").stem
    stem = re.sub(r"[^\w\-. ]+", "_", stem, flags=re.UNICODE).strip(" ._")
    return stem[:limit].rstrip(" ._") or default


def write_exports(t: Transcript, folder: Path, stem: str | None = None) -> list[Path]:
    """Write the transcript in every export format into `folder`; return the paths, in the
    order of `EXPORTERS` (txt, srt, vtt, json, then rttm only when it has speakers)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem or t.source)
    paths = []
    for ext, export in EXPORTERS.items():
        if ext in SPEAKERS_ONLY and not t.has_speakers:
            continue
        path = folder / f"{stem}.{ext}"
        path.write_text(export(t), encoding="utf-8")
        paths.append(path)
    return paths


def to_lines(t: Transcript) -> str:
    """The transcript for a program: one line per sentence, "[mm:ss] text" (the citation
    format), "[mm:ss] Name: text" when the sentence's speaker is known."""
    hours = t.duration >= 3600 or None
    return "\n".join(f"[{format_timestamp(s.start, hours=hours)}] {_said(t, s)}" for s in t.segments)
