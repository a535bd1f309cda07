"""Stitching: the segments of each chunk, shifted to absolute time and joined into one transcript.

Chunks cut in a pause are simply concatenated. Chunks cut hard overlap their neighbour; the words
both sides heard in the overlap are kept once (`join_at_hard_cut`).
"""

from __future__ import annotations

import difflib
import re
from typing import Protocol

from .media import Chunk
from .transcript import Segment


class Part(Protocol):
    chunk: Chunk
    segments: list[Segment]


_WORD = re.compile(r"\w+", re.UNICODE)
MIN_MATCH_WORDS = 3  # words two overlapping chunks must share to be aligned on them


def _norm(word: str) -> str:
    return "".join(_WORD.findall(word.lower())) or word


def _timed_words(segments: list[Segment], group: str) -> list[tuple[str, float, float, tuple]]:
    """Each word with a time spread evenly over its segment, and the segment it came from."""
    words = []
    for i, seg in enumerate(segments):
        parts = seg.text.split()
        step = (seg.end - seg.start) / max(len(parts), 1)
        words += [(w, seg.start + k * step, seg.start + (k + 1) * step, (group, i)) for k, w in enumerate(parts)]
    return words


def _regroup(words: list[tuple[str, float, float, tuple]]) -> list[Segment]:
    out: list[Segment] = []
    current = None
    for word, start, end, group in words:
        if group != current:
            out.append(Segment(start, end, word))
            current = group
        else:
            last = out[-1]
            out[-1] = Segment(last.start, end, f"{last.text} {word}")
    return [Segment(round(s.start, 3), round(s.end, 3), s.text) for s in out]


def _join_at_hard_cut(out: list[Segment], new: list[Segment], cut: float, overlap: float) -> list[Segment]:
    """Join the segments of a chunk that starts `overlap` s before `cut` to what came before.

    Both sides heard the overlap. The words they share are aligned (longest common run) and each
    word is kept once: the earlier chunk's up to the run, the later chunk's from it. With no run
    to align on, each word goes to the side of the cut its time falls on.
    """
    split = next((i for i, s in enumerate(out) if s.end > cut - overlap), len(out))
    head_n = next((i for i, s in enumerate(new) if s.start >= cut + overlap), len(new))
    tail, head = _timed_words(out[split:], "a"), _timed_words(new[:head_n], "b")
    match = difflib.SequenceMatcher(None, [_norm(w[0]) for w in tail], [_norm(w[0]) for w in head],
                                    autojunk=False).find_longest_match(0, len(tail), 0, len(head))
    if match.size >= MIN_MATCH_WORDS:
        merged = tail[:match.a] + head[match.b:]
    else:
        merged = [w for w in tail if (w[1] + w[2]) / 2 < cut] + [w for w in head if (w[1] + w[2]) / 2 >= cut]
    return out[:split] + _regroup(merged) + new[head_n:]


def stitch(parts: list[Part]) -> list[Segment]:
    """Chunk segments in absolute time, in order, each spoken word once."""
    out: list[Segment] = []
    for part in sorted(parts, key=lambda p: p.chunk.index):
        c = part.chunk
        new = []
        for seg in part.segments:
            if seg.text:
                start = min(max(seg.start + c.start, c.start), c.end)
                new.append(Segment(round(start, 3), round(min(max(seg.end + c.start, start), c.end), 3), seg.text))
        if c.hard_start and out:
            out = _join_at_hard_cut(out, new, c.keep_start, c.keep_start - c.start)
        else:
            out += new
    return out
