"""The transcript: timestamped segments, what is known of them, and their reading paragraphs."""

from __future__ import annotations

import re
from pathlib import PurePath
from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the recording
    end: float
    text: str
    speaker: str | None = None  # a label of `Meta.speakers` ("S1"), when speakers were found

    def shifted(self, offset: float) -> "Segment":
        return Segment(self.start + offset, self.end + offset, self.text, self.speaker)


@dataclass
class Meta:
    """What is known of a transcript besides its words. Stored and exported as a JSON object
    holding the fields that differ from their defaults (entries written by other versions keep
    any other keys in `extra`)."""

    id: str | None = None  # its cache key: set once it is cached, and the handle for later questions
    backend: str | None = None  # "openai" or "local": who transcribed it
    notes: list[str] = field(default_factory=list)  # this run's notes for the user (not cached: they name files)
    damaged: bool = False  # the recording could not be decoded to its end
    cut_at_limit: bool = False  # it went on past MAX_DURATION_MINUTES and was cut there (never cached)
    summary: dict | None = None  # `answer.summary.Summary.to_dict()`, once made (cached apart)
    speakers: dict = field(default_factory=dict)  # label ("S1") -> the name shown ("Speaker 1", "Ana")
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name != "extra" and getattr(self, f.name) != f.default and getattr(self, f.name) not in ([], {})}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Meta":
        data = dict(data or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        meta = cls(**{k: v for k, v in data.items() if k in known})
        meta.notes = [str(n) for n in meta.notes or []]
        meta.extra = {k: v for k, v in data.items() if k not in known}
        return meta


@dataclass
class Transcript:
    segments: list[Segment]
    duration: float  # seconds
    language: str | None = None
    model: str | None = None
    source: str | None = None  # file name the transcript was made from
    meta: Meta = field(default_factory=Meta)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def model_name(self) -> str | None:
        """The model, as shown and exported: a local model's folder by its name, never its path."""
        return PurePath(self.model).name if self.model and PurePath(self.model).is_absolute() else self.model

    def speaker_of(self, seg: Segment) -> str | None:
        """The name shown for the segment's speaker, or None when speakers are not known."""
        if seg.speaker is None:
            return None
        return self.meta.speakers.get(seg.speaker) or default_name(seg.speaker)

    @property
    def has_speakers(self) -> bool:
        """Whether any segment has a speaker (diarization found some)."""
        return any(s.speaker is not None for s in self.segments)

    def speaker_names(self) -> dict[str, str]:
        """Label -> name shown, for every label the segments carry, in order of first appearance."""
        names: dict[str, str] = {}
        for seg in self.segments:
            if seg.speaker is not None and seg.speaker not in names:
                names[seg.speaker] = self.speaker_of(seg)
        return names

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "segments": [_segment_dict(s) for s in self.segments],
            "duration": self.duration,
            "language": self.language,
            "model": self.model,
            "source": self.source,
            "meta": self.meta.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Transcript":
        segments = [Segment(float(s["start"]), float(s["end"]), str(s["text"]),
                            str(s["speaker"]) if s.get("speaker") else None) for s in data["segments"]]
        return cls(segments, float(data["duration"]), data.get("language"), data.get("model"), data.get("source"),
                   Meta.from_dict(data.get("meta")))


def _segment_dict(s: Segment) -> dict:
    out = asdict(s)
    if s.speaker is None:
        del out["speaker"]  # a transcript without speakers is stored as before
    return out


def default_name(label: str) -> str:
    """ "S2" -> "Speaker 2": the name a speaker has until the user gives one."""
    return f"Speaker {label[1:]}" if re.fullmatch(r"S\d+", label) else label


def format_timestamp(seconds: float, *, hours: bool | None = None) -> str:
    """`mm:ss`, or `h:mm:ss` past an hour (or when `hours` is set): the citation format."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if hours or (hours is None and h):
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}"


# A sentence ends here: . ? ! … (or their CJK forms), maybe followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.?!…。？！][\"'”’»)\]」』）]*\s*$")


def paragraphs(t: Transcript, *, max_pause: float = 2.0, max_seconds: float = 45.0,
               max_chars: int = 600) -> list[list[Segment]]:
    """Consecutive segments grouped into paragraphs for reading (segments without text left out).

    A paragraph ends where the speaker changes, at a pause longer than `max_pause` between two
    segments, or before it would
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
        if cur and (seg.start - cur[-1].end > max_pause or seg.speaker != cur[-1].speaker):
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


@dataclass(frozen=True)
class SpeakerTime:
    label: str  # "S1"
    name: str  # as shown: "Ana", "Speaker 2"
    seconds: float  # the length of their segments, summed
    share: float  # of the time all speakers spoke, 0..1


def speaker_stats(t: Transcript) -> list[SpeakerTime]:
    """Each speaker's talking time and share of the speech, most talking first (ties: first to
    speak first), since that is what the table is read for: who spoke how much. Talking time is
    the sum of the speaker's segments (with text), so pauses between them do not count; segments
    without a speaker count for no one. Empty when the transcript has no speakers."""
    seconds: dict[str, float] = {}
    for seg in t.segments:
        if seg.speaker is not None and seg.text.strip():
            seconds[seg.speaker] = seconds.get(seg.speaker, 0.0) + max(0.0, seg.end - seg.start)
    total = sum(seconds.values())
    names = t.speaker_names()
    order = {label: i for i, label in enumerate(seconds)}  # first appearance
    return [SpeakerTime(label, names[label], secs, secs / total if total else 0.0)
            for label, secs in sorted(seconds.items(), key=lambda kv: (-kv[1], order[kv[0]]))]


def rename_in_text(text: str, old: str, new: str) -> str:
    """`text` with the name `old` replaced by `new` where it stands as a whole name: "Speaker 2"
    is renamed in "Speaker 2 said" but not in "Speaker 20 said". For a summary written before a
    speaker was renamed."""
    return rename_all(text, {old: new})


def rename_all(text: str, changes: dict[str, str]) -> str:
    """`text` with every name of `changes` (old -> new) replaced at once, as whole names, so that
    two speakers can swap names. A longer name wins over a shorter one it starts with."""
    olds = sorted((o for o, n in changes.items() if o and o != n), key=len, reverse=True)
    if not olds or not text:
        return text
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, olds)) + r")(?!\w)")
    return pattern.sub(lambda m: changes[m.group()], text)


def renamed_summary(summary: dict, names: dict[str, str]) -> dict:
    """A summary (`Meta.summary`) with the names it was written with (its "speakers": label ->
    name then) changed to `names` (label -> name now) in its bullets and chapter titles. A
    summary that kept no names is returned as it is."""
    then = summary.get("speakers") or {}
    changes = {then[label]: name for label, name in names.items() if label in then and then[label] != name}
    if not changes:
        return summary
    return {**summary, "speakers": {**then, **{k: v for k, v in names.items() if k in then}},
            "bullets": [rename_all(b, changes) for b in summary.get("bullets") or []],
            "chapters": [{**c, "title": rename_all(c["title"], changes)} for c in summary.get("chapters") or []]}
