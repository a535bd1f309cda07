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
    """The transcript; with its summary and chapters when it has them (`meta["summary"]`, put
    there by `core.summary`): `"summary": {"kind", "bullets", ...}` and `"chapters": [{"start",
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


# A sentence ends here: . ? ! … (or their CJK forms), maybe followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.?!…。？！][\"'”’»)\]」』）]*\s*$")


def paragraphs(t: Transcript, *, max_pause: float = 2.0, max_seconds: float = 45.0,
               max_chars: int = 600) -> list[list[Segment]]:
    """Consecutive segments grouped into paragraphs for reading (segments without text left out).

    A paragraph ends at a pause longer than `max_pause` between two segments, or before it would
    last longer than `max_seconds` or hold more than `max_chars` characters; at such a limit it
    ends after its last sentence if that sentence finishes past half the limit, so that a
    paragraph rarely stops mid-sentence. The defaults: people pause 0.2-1 s between sentences,
    and more than 2 s when the speaker or the subject changes; 45 s of speech is 100-130 English
    words, 5-8 lines on a laptop, a paragraph one takes in at a glance (3 hours make about 250 of
    them); 600 characters keeps dense text (fast speakers, Chinese) to about the same size on the
    page. A segment over a limit on its own is a paragraph of its own.
    """
    out: list[list[Segment]] = []
    cur: list[Segment] = []
    chars = 0  # characters of `cur`, with a space between segments

    def size(segs: list[Segment]) -> int:
        return sum(len(s.text.strip()) for s in segs) + len(segs) - 1

    def over(first: Segment, last: Segment, n: int) -> bool:
        return last.end - first.start > max_seconds or n > max_chars

    for seg in t.segments:
        n = len(seg.text.strip())
        if not n:
            continue
        if cur and seg.start - cur[-1].end > max_pause:
            out.append(cur)
            cur, chars = [], 0
        if cur and over(cur[0], seg, chars + 1 + n):
            cut = len(cur)  # the whole paragraph so far, unless a sentence ends earlier, late enough
            if not _SENTENCE_END.search(cur[-1].text):
                for i in range(len(cur) - 1, 0, -1):
                    if _SENTENCE_END.search(cur[i - 1].text):
                        if cur[i - 1].end - cur[0].start >= max_seconds / 2 or size(cur[:i]) >= max_chars / 2:
                            cut = i
                        break
            out.append(cur[:cut])
            cur = cur[cut:]
            chars = size(cur) if cur else 0
            if cur and over(cur[0], seg, chars + 1 + n):
                out.append(cur)
                cur, chars = [], 0
        chars += (1 if cur else 0) + n
        cur.append(seg)
    if cur:
        out.append(cur)
    return out
