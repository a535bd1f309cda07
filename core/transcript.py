"""The transcript: timestamped segments, and its exports (txt, srt, vtt, json)."""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable

import srt
import webvtt


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the recording
    end: float
    text: str

    def shifted(self, offset: float) -> "Segment":
        return Segment(self.start + offset, self.end + offset, self.text)


@dataclass
class Transcript:
    segments: list[Segment]
    duration: float  # seconds
    language: str | None = None
    model: str | None = None
    source: str | None = None  # file name the transcript was made from
    meta: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "segments": [asdict(s) for s in self.segments],
            "duration": self.duration,
            "language": self.language,
            "model": self.model,
            "source": self.source,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Transcript":
        segments = [Segment(float(s["start"]), float(s["end"]), str(s["text"])) for s in data["segments"]]
        return cls(segments, float(data["duration"]), data.get("language"), data.get("model"), data.get("source"),
                   dict(data.get("meta") or {}))


def format_timestamp(seconds: float, *, hours: bool | None = None) -> str:
    """`mm:ss`, or `h:mm:ss` past an hour (or when `hours` is set): the citation format."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if hours or (hours is None and h):
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}"


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
    return json.dumps(t.to_dict(), ensure_ascii=False, indent=2) + "\n"


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
