"""Speaker turns onto transcript segments: who said each segment, and where one segment holds two.

A segment goes to the speaker who talks longest inside it (overlapping speech goes to the dominant
voice). Turns may overlap (a second voice over the first, cluster.second_turns): they are looked up
by how far the turns so far reach, not by where the previous one starts, and a turn inside an
earlier one (a second voice) is never a change of speaker. A segment that holds a change of
speaker, each side speaking at least MIN_SIDE seconds, is split at the sentence end nearest the change; with no word times, a sentence's time is
estimated from its share of the segment's characters (people keep a steady pace within a few
seconds). A segment where no voice was heard takes the speaker nearest in time.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from ..transcript import Segment

MIN_SIDE = 1.0  # seconds each speaker must hold inside a segment for it to be split
Turn = tuple[float, float, int]
_SENTENCE = re.compile(r"(?<=[.?!…。？！])[\"'”’»)\]]*\s+")


def label_of(index: int) -> str:
    return f"S{index + 1}"


def _reach(turns: list[Turn]) -> list[float]:
    """reach[i]: the latest end among turns[:i + 1] (turns sorted by start; non-decreasing)."""
    out, far = [], float("-inf")
    for t in turns:
        far = max(far, t[1])
        out.append(far)
    return out


def talk(turns: list[Turn], a: float, b: float, reach: list[float] | None = None) -> dict[int, float]:
    """Seconds each speaker talks within [a, b], of `turns` sorted by start (`reach`: their
    `_reach`, when many spans are looked up in the same turns)."""
    reach = _reach(turns) if reach is None else reach
    out: dict[int, float] = {}
    i = bisect_right(reach, a)  # the first turn that may still be going at a
    while i < len(turns) and turns[i][0] < b:
        lo, hi, spk = turns[i]
        if (both := min(hi, b) - max(lo, a)) > 0:
            out[spk] = out.get(spk, 0.0) + both
        i += 1
    return out


def _nearest(turns: list[Turn], starts: list[float], t: float) -> int:
    i = bisect_left(starts, t)
    near = [turns[j] for j in (i - 1, i) if 0 <= j < len(turns)]
    return min(near, key=lambda x: max(x[0] - t, t - x[1], 0.0))[2]


def _change(turns: list[Turn], reach: list[float], seg: Segment, first: int) -> float | None:
    """Where, inside `seg`, the first speaker gives way to another that then talks MIN_SIDE."""
    i = bisect_right(reach, seg.start)
    for j in range(i, len(turns)):
        lo, hi, spk = turns[j]
        if lo >= seg.end:
            break
        inside = j > 0 and reach[j - 1] >= hi  # a second voice over an earlier turn
        if spk != first and not inside and lo > seg.start + MIN_SIDE and min(hi, seg.end) - lo >= MIN_SIDE:
            return lo
    return None


def _split(seg: Segment, at: float) -> tuple[Segment, Segment] | None:
    """`seg` cut at the sentence end whose estimated time is nearest `at`, if it has one."""
    ends = [m.end() for m in _SENTENCE.finditer(seg.text) if m.end() < len(seg.text)]
    if not ends:
        return None
    span = seg.end - seg.start
    cut = min(ends, key=lambda c: abs(seg.start + span * c / len(seg.text) - at))
    t = round(seg.start + span * cut / len(seg.text), 3)
    return Segment(seg.start, t, seg.text[:cut].strip()), Segment(t, seg.end, seg.text[cut:].strip())


def assign(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """The segments with a speaker label each (split where one holds a change of speaker)."""
    if not turns:
        return list(segments)
    turns = sorted(turns)
    starts, reach = [t[0] for t in turns], _reach(turns)
    out: list[Segment] = []
    todo = list(reversed(segments))
    while todo:
        seg = todo.pop()
        inside = talk(turns, seg.start, seg.end, reach)
        first = max(inside, key=inside.get) if inside else _nearest(turns, starts, (seg.start + seg.end) / 2)
        opening = talk(turns, seg.start, seg.start + MIN_SIDE, reach)
        at = _change(turns, reach, seg, max(opening, key=opening.get) if opening else first) if len(inside) > 1 else None
        if at is not None and (parts := _split(seg, at)):
            todo.extend(reversed(parts))  # each part is looked at again: it may hold another change
            continue
        out.append(Segment(seg.start, seg.end, seg.text, label_of(first)))
    return out
