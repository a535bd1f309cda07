"""Stitching: the segments of each chunk, shifted to absolute time and joined into one transcript.

Chunks cut in a pause are simply concatenated. Chunks cut hard overlap their neighbour by
`overlap` seconds on each side of the cut: both heard the window [cut - overlap, cut + overlap].
`join_at_hard_cut` keeps each word said there once. It aligns the two chunks on a run of words
both said at the same moment inside the window and joins them there: the earlier chunk's words up
to it, the later chunk's after it. With nothing to align on, each word is kept by its time (the
earlier chunk's before the cut, the later chunk's from it, and either one's where the other heard
nothing). Words outside the window are always kept, from their own chunk: a phrase that merely
repeats further away can never swallow the speech between.

Before stitching, `start_at_speech` moves the start of a segment that a server placed before the
voice (Whisper without voice detection starts one at 0.0 of the request after music or noise) to
where the voice starts, so citations do not land early.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Callable, Protocol

from ..audio import decode, voice
from ..audio.chunking import Chunk
from ..transcript import Segment


class Part(Protocol):
    chunk: Chunk
    segments: list[Segment]


_WORD = re.compile(r"\w+", re.UNICODE)

# Whisper gives times per segment, not per word, and a segment can last up to 30 s. A word's time
# is estimated by spreading the segment's words evenly over it; that is exact at the segment's
# edges and worst in its middle, where a change of pace or a short pause moves words the most.
# We take a word's true time to be within this fraction of the distance from its estimate to the
# nearer segment edge (the pace varying by up to half within one segment).
SPREAD_ERROR = 0.5
# Seconds two chunks' times for one moment may differ beyond the estimates' errors (Whisper's
# own segment times are this far off near a chunk's edge). Words of the two chunks closer than
# this are taken as said at the same moment: one chunk's word there makes the other's redundant.
EDGE_SLACK = 1.0
MIN_MATCH_WORDS = 3  # consecutive words two chunks must share to be aligned on them


@dataclass(frozen=True)
class _Word:
    text: str
    start: float  # seconds, absolute: its even-spread slot in its segment
    end: float
    error: float  # seconds the true time may be away from `time` (see SPREAD_ERROR)
    group: tuple  # (side, segment index): words of one segment are regrouped into one segment
    key: str  # the word as compared across chunks (`_norm`)

    @property
    def time(self) -> float:
        return (self.start + self.end) / 2


def _norm(word: str) -> str:
    """A word as compared across chunks: lower case, punctuation dropped ("The," == "the")."""
    return "".join(_WORD.findall(word.lower())) or word


def _timed_words(segments: list[Segment], side: str) -> list[_Word]:
    """Each word with a time spread evenly over its segment, its error, and its segment."""
    words = []
    for i, seg in enumerate(segments):
        parts = seg.text.split()
        step = (seg.end - seg.start) / max(len(parts), 1)
        for k, text in enumerate(parts):
            start, end = seg.start + k * step, seg.start + (k + 1) * step
            middle = (start + end) / 2
            error = SPREAD_ERROR * min(middle - seg.start, seg.end - middle)
            words.append(_Word(text, start, end, error, (side, i), _norm(text)))
    return words


def _regroup(words: list[_Word]) -> list[Segment]:
    """Consecutive words of one source segment back into one segment, times never going back."""
    out: list[Segment] = []
    current = None
    for w in words:
        start = max(w.start, out[-1].start) if out else w.start
        end = max(w.end, start)
        if w.group != current:
            out.append(Segment(start, end, w.text))
            current = w.group
        else:
            last = out[-1]
            out[-1] = Segment(last.start, max(last.end, end), f"{last.text} {w.text}")
    return [Segment(round(s.start, 3), round(s.end, 3), s.text) for s in out]


def _same_moment(a: _Word, b: _Word, overlap: float) -> bool:
    """Whether two equal words from the two chunks can be one utterance: their times agree within
    the overlap plus the error of each estimate. Generous on purpose: only runs of such words are
    aligned on, and a run repeated within seconds is rarely a coincidence."""
    return a.key == b.key and abs(a.time - b.time) <= overlap + a.error + b.error


def _longest_run(tail: list[_Word], head: list[_Word], overlap: float, cut: float) -> list[tuple[int, int]]:
    """The longest run of consecutive words both chunks said at the same moment, as pairs (i, j).

    Only a run of MIN_MATCH_WORDS or more is trusted (a lone "the" a second away is as likely
    another "the"); of equally long ones, the nearest the cut wins. A few dozen words a side, so
    following every diagonal of the table is cheap.
    """
    same = [[_same_moment(a, b, overlap) for b in head] for a in tail]
    runs = []
    for i in range(len(tail)):
        for j in range(len(head)):
            if same[i][j] and not (i and j and same[i - 1][j - 1]):  # a run starts here
                k = 1
                while i + k < len(tail) and j + k < len(head) and same[i + k][j + k]:
                    k += 1
                runs.append([(i + q, j + q) for q in range(k)])
    runs = [r for r in runs if len(r) >= MIN_MATCH_WORDS]
    return max(runs, key=lambda r: (len(r), -_distance(tail, head, r, cut)), default=[])


def _distance(tail: list[_Word], head: list[_Word], run: list[tuple[int, int]], cut: float) -> float:
    """Seconds from the cut to the nearest aligned word of `run` (its two times averaged)."""
    return min(abs((tail[i].time + head[j].time) / 2 - cut) for i, j in run)


def _merge(tail: list[_Word], head: list[_Word], pairs: list[tuple[int, int]], cut: float) -> list[_Word]:
    """Both chunks' words around the cut, each spoken word once.

    With aligned words (`pairs`), the join is at the aligned word nearest the cut: the earlier
    chunk's words up to it, the later chunk's after it. Each chunk thus speaks for the stretch
    it heard best (away from its own audio's edge), and where the two heard a stretch a little
    differently, one version of it is kept, whole. With nothing aligned, by time (`_by_time`).
    """
    if not pairs:
        return _by_time(tail, head, cut)
    i, j = min(pairs, key=lambda p: _distance(tail, head, [p], cut))
    return tail[:i] + [tail[i] if tail[i].time < cut else head[j]] + head[j + 1:]


def _by_time(earlier: list[_Word], later: list[_Word], cut: float) -> list[_Word]:
    """Both chunks' words with nothing to align them on: the earlier chunk's words before the cut,
    the later chunk's from it (each is the better one away from its own audio's edge).

    A word on the other side of the cut is kept too when the chunk that is preferred there has no
    word at about the same moment: then it is the only witness, and dropping it would lose speech.
    """
    preferred_earlier = [w for w in earlier if w.time < cut]
    preferred_later = [w for w in later if w.time >= cut]
    kept_earlier = [w for w in earlier if w.time < cut or not _heard_then(preferred_later, w)]
    kept_later = [w for w in later if w.time >= cut or not _heard_then(preferred_earlier, w)]
    # Interleaved by time, each chunk's words staying in the order that chunk said them.
    return list(heapq.merge(kept_earlier, kept_later, key=lambda w: w.time))


def _heard_then(words: list[_Word], word: _Word) -> bool:
    """Whether one of `words` was said at about the moment of `word` (another chunk's)."""
    return any(abs(w.time - word.time) <= EDGE_SLACK + w.error + word.error for w in words)


def _window_start(words: list[_Word], start: float) -> int:
    """Index of the first word that may have been said at or after `start` (and all later ones)."""
    return next((i for i, w in enumerate(words) if w.time + w.error >= start), len(words))


def _window_end(words: list[_Word], end: float) -> int:
    """Index past the last word that may have been said at or before `end` (and all earlier ones)."""
    return next((i for i in range(len(words), 0, -1) if words[i - 1].time - words[i - 1].error <= end), 0)


def join_at_hard_cut(out: list[Segment], new: list[Segment], cut: float, overlap: float) -> list[Segment]:
    """Join the segments of a chunk that starts `overlap` s before `cut` to what came before.

    Only words that may fall in the window [cut - overlap, cut + overlap] are aligned; the words
    of the segments touching it are merged around the aligned ones (`_merge`), and the segments
    beyond are kept whole.
    """
    lo, hi = cut - overlap, cut + overlap
    split = next((i for i, s in enumerate(out) if s.end > lo), len(out))
    head_n = next((i for i, s in enumerate(new) if s.start >= hi), len(new))
    tail, head = _timed_words(out[split:], "a"), _timed_words(new[:head_n], "b")
    a, b = _window_start(tail, lo), _window_end(head, hi)
    pairs = [(a + i, j) for i, j in _longest_run(tail[a:], head[:b], overlap, cut)]
    return out[:split] + _regroup(_merge(tail, head, pairs, cut)) + new[head_n:]


def _absolute(part: Part) -> list[Segment]:
    """The part's segments in absolute time, within the audio its chunk carries."""
    c = part.chunk
    new = []
    for seg in part.segments:
        if seg.text:
            start = min(max(seg.start + c.start, c.start), c.end)
            new.append(Segment(round(start, 3), round(min(max(seg.end + c.start, start), c.end), 3), seg.text))
    return new


def stitch(parts: list[Part]) -> list[Segment]:
    """Chunk segments in absolute time, in order, each spoken word once."""
    out: list[Segment] = []
    for part in sorted(parts, key=lambda p: p.chunk.index):
        c, new = part.chunk, _absolute(part)
        if c.hard_start and out:
            out = join_at_hard_cut(out, new, c.keep_start, c.keep_start - c.start)
        else:
            out += new
    return out


# Servers that run Whisper without voice detection start a segment at 0.0 of the request, or where
# the previous one ended, even when the voice comes 10 s later (after music, a jingle, noise).
# Only segments that may be such are checked with Silero (the audio is decoded again for them):
EARLY_NEAR_SECONDS = 1.0  # starting this close to the request's start
EARLY_GAP_SECONDS = 1.0  # or this long after the previous segment's end (something unsaid before it)
SLOWEST_WORDS_PER_SECOND = 1.0  # or slower than any speech: the segment holds something else too
SLOW_SLACK_SECONDS = 2.0  # (beyond this allowance for a short segment's own pauses)
MIN_SHIFT_SECONDS = 1.0  # a start less early than this is within Whisper's own error, and kept
SHIFT_LEAD_SECONDS = 0.2  # kept before the voice, as voice detection hears onsets a little late


def _may_start_early(seg: Segment, previous: Segment | None) -> bool:
    """Whether the segment may start before its voice: the others, contiguous segments of speech
    at a speaking pace, are not worth decoding the chunk again for."""
    if seg.start <= EARLY_NEAR_SECONDS or (previous and seg.start - previous.end >= EARLY_GAP_SECONDS):
        return True
    return seg.end - seg.start > len(seg.text.split()) / SLOWEST_WORDS_PER_SECOND + SLOW_SLACK_SECONDS


# Silero decides whether a voice starts within a segment's first MIN_SHIFT_SECONDS (so the start
# stays) within this much of it: a voice starting before then is heard, or a blip dismissed (250 ms
# at most, then 200 ms of quiet), by 1.5 s. A whole number of Silero's 512-sample windows, so its
# windows are the same as over the whole segment.
PROBE_SECONDS = 1.6


def _onset(pcm: bytes) -> float | None:
    """Where Silero first hears a voice in `pcm` (`voice.first_voice`), or a time under
    MIN_SHIFT_SECONDS when it hears one start there: Silero runs over the first PROBE_SECONDS
    first, and over the rest only when no voice starts in time there (a segment starting early)."""
    probe = pcm[:decode.pcm_bytes(PROBE_SECONDS)]
    if len(probe) < len(pcm):
        early = voice.first_voice(probe)
        if early is not None and early < MIN_SHIFT_SECONDS:
            return early
    return voice.first_voice(pcm)


def start_at_speech(segments: list[Segment], audio: Callable[[], bytes]) -> list[Segment]:
    """The chunk's segments (times into its audio), each starting no earlier than the first voice
    Silero hears in it. A segment with no voice heard in it is kept as it is: singing, whispering
    and a voice under noise are not heard, and their words must keep a time before them.

    `audio` gives the chunk's 16 kHz PCM, and is only called if some segment may start early.
    """
    suspects = [i for i, seg in enumerate(segments)
                if seg.end > seg.start and _may_start_early(seg, segments[i - 1] if i else None)]
    pcm = audio() if suspects else b""
    if not pcm:
        return segments
    out = list(segments)
    for i in suspects:
        seg = out[i]
        onset = _onset(pcm[decode.pcm_bytes(max(0.0, seg.start)):decode.pcm_bytes(seg.end)])
        if onset is not None and onset >= MIN_SHIFT_SECONDS:
            start = round(max(0.0, seg.start) + onset - SHIFT_LEAD_SECONDS, 3)
            out[i] = Segment(start, max(seg.end, start), seg.text)
    return out
