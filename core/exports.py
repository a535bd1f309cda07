"""The transcript's exports: one writer per format (txt, srt, vtt, json), chosen from `EXPORTERS`."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Callable

import srt
import webvtt

from .transcript import Transcript, format_timestamp


def to_txt(t: Transcript) -> str:
    return "".join(f"[{_hms(s.start)}] {s.text}\n" for s in t.segments)


def _hms(seconds: float) -> str:
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _caption(text: str) -> str:
    """Caption text both formats accept: one line, and no "-->" (their time separator)."""
    return " ".join(text.replace("-->", "->").split())


def to_srt(t: Transcript) -> str:
    subs = [
        srt.Subtitle(i, timedelta(seconds=s.start), timedelta(seconds=max(s.end, s.start + 0.001)), _caption(s.text))
        for i, s in enumerate(t.segments, 1)
    ]
    return srt.compose(subs)


def _vtt_time(seconds: float) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_vtt(t: Transcript) -> str:
    vtt = webvtt.WebVTT()
    for s in t.segments:
        end = max(s.end, s.start + 0.001)
        vtt.captions.append(webvtt.Caption(_vtt_time(s.start), _vtt_time(end), _caption(s.text)))
    out = io.StringIO()
    vtt.write(out)
    return out.getvalue()


def to_json(t: Transcript) -> str:
    """The transcript; with its summary and chapters when it has them (`meta.summary`, put
    there by `answer.summary`): `"summary": {"kind", "bullets", ...}` and `"chapters": [{"start",
    "title"}]`, times in seconds like the segments'."""
    data = t.to_dict()
    meta = dict(data["meta"])
    summary = meta.pop("summary", None)
    data["meta"] = meta
    if isinstance(summary, dict):
        data["summary"] = {k: v for k, v in summary.items() if k != "chapters"}
        data["chapters"] = list(summary.get("chapters") or [])
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


EXPORTERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
}


def safe_stem(name: str | None, default: str = "transcript", limit: int = 80) -> str:
    """A file name stem from a recording's name: its own letters (any script), no path parts."""
    stem = Path(name or "").stem
    stem = re.sub(r"[^\w\-. ]+", "_", stem, flags=re.UNICODE).strip(" ._")
    return stem[:limit].rstrip(" ._") or default


def write_exports(t: Transcript, folder: Path, stem: str | None = None) -> list[Path]:
    """Write the transcript in every export format into `folder`; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem or t.source)
    paths = []
    for ext, export in EXPORTERS.items():
        path = folder / f"{stem}.{ext}"
        path.write_text(export(t), encoding="utf-8")
        paths.append(path)
    return paths


def to_lines(t: Transcript) -> str:
    """The transcript for a program: one line per sentence, "[mm:ss] text" (the citation format)."""
    hours = t.duration >= 3600 or None
    return "\n".join(f"[{format_timestamp(s.start, hours=hours)}] {s.text}" for s in t.segments)
