"""Stitching on its own: chunk transcripts built by hand, joined at pauses and at hard cuts.

A hard cut at CUT leaves both chunks holding the window [CUT - OVERLAP, CUT + OVERLAP]. Segments
are written in absolute time and shifted into their chunk, the way the service returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from core.audio.chunking import Chunk
from core.transcribe.stitch import stitch
from core.transcript import Segment

CUT = 100.0  # s: where the hard cut falls
OVERLAP = 4.0  # s each side of the cut that both chunks hold
A_START, B_END = 60.0, 140.0  # s: the rest of the two chunks, far from the cut


@dataclass
class Part:
    chunk: Chunk
    segments: list[Segment]


def part(chunk: Chunk, *said: tuple[float, float, str]) -> Part:
    """A chunk's transcript from (start, end, text) in absolute time."""
    return Part(chunk, [Segment(s - chunk.start, e - chunk.start, text) for s, e, text in said])


def hard_cut(earlier: list[tuple], later: list[tuple]) -> list[Part]:
    """Two chunks cut hard at CUT, overlapping by OVERLAP on each side."""
    a = Chunk(0, A_START, CUT + OVERLAP, A_START, CUT, pcm=b"")
    b = Chunk(1, CUT - OVERLAP, B_END, CUT, B_END, pcm=b"")
    return [part(a, *earlier), part(b, *later)]


def words(segments: list[Segment]) -> list[str]:
    return [re.sub(r"\W", "", w.lower()) for s in segments for w in s.text.split()]


def filler(n: int, prefix: str = "w") -> str:
    """n distinct words, so a lost or doubled one shows."""
    return " ".join(f"{prefix}{k:02d}" for k in range(n))


def assert_well_formed(segments: list[Segment]) -> None:
    starts = [s.start for s in segments]
    assert starts == sorted(starts), "segments in time order"
    assert all(A_START <= s.start <= s.end <= B_END for s in segments)


def test_a_phrase_repeated_far_from_the_cut_loses_nothing():
    """The earlier chunk said "one of the" 20 s before the cut, in a long segment that reaches into
    the window; the later chunk starts with "one of the" at the end of the window. Only the second
    is the same utterance: the 20 s between must all be kept (it used to vanish)."""
    middle = filler(50)  # 78.8 .. ~101 s
    earlier = [(70.0, 78.0, "Welcome everyone to the weekly planning meeting."),
               (78.0, CUT + OVERLAP, f"We agreed on one of the options, {middle} and then one of the")]
    later = [(101.5, 108.0, "one of the engineers said it works."),
             (108.0, 112.0, "Then we closed the meeting.")]
    out = stitch(hard_cut(earlier, later))
    assert words(out) == words([Segment(0, 0, t) for *_, t in earlier[:1]]) + (
        "we agreed on one of the options".split() + middle.split() + "and then one of the".split()
        + "engineers said it works then we closed the meeting".split())
    assert_well_formed(out)


def test_the_same_phrase_said_at_other_times_in_the_window_is_kept_twice():
    """ "one of the" early in the window (only the earlier chunk caught it) and again late in the
    window (only the later chunk caught it): times too far apart to be one utterance."""
    earlier = [(96.0, 101.0, "One of the reds, blue, green.")]
    later = [(102.0, 106.0, "One of the yellows went.")]
    out = stitch(hard_cut(earlier, later))
    assert words(out) == "one of the reds blue green one of the yellows went".split()
    assert_well_formed(out)


@pytest.mark.parametrize("shift", [-0.8, 0.0, 0.8])
def test_identical_overlap_text_is_kept_once(shift):
    """Both chunks heard the window the same; the later chunk's times are off by `shift`, so the
    word nearest the cut lands on different sides of it in the two chunks."""
    spoken = filler(16, "x")  # 0.5 s a word over the whole window
    earlier = [(80.0, 96.0, "Before the window."), (96.0, 104.0, spoken)]
    later = [(96.0 + shift, 104.0 + shift, spoken), (105.0, 110.0, "After the window.")]
    out = stitch(hard_cut(earlier, later))
    assert words(out) == "before the window".split() + spoken.split() + "after the window".split()
    assert_well_formed(out)


def test_no_shared_words_are_split_at_the_cut_by_time():
    """Nothing to align on: the earlier chunk's words before the cut, the later's from it."""
    earlier = [(96.0, 104.0, "alpha bravo charlie delta echo foxtrot golf hotel")]
    later = [(96.0, 104.0, "india juliet kilo lima mike november oscar papa")]
    out = stitch(hard_cut(earlier, later))
    assert words(out) == "alpha bravo charlie delta mike november oscar papa".split()
    assert_well_formed(out)


def test_chunks_cut_in_a_pause_are_concatenated_untouched():
    a = Chunk(0, 0.0, 50.0, 0.0, 50.0, pcm=b"")
    b = Chunk(1, 50.0, 100.0, 50.0, 100.0, pcm=b"")
    first = [(1.0, 20.0, "And so on, and so forth."), (30.0, 49.5, "One of the options.")]
    second = [(50.5, 60.0, "One of the options."), (61.0, 70.0, "And so on, and so forth.")]
    out = stitch([part(b, *second), part(a, *first)])  # any order in, chunk order out
    assert out == [Segment(s, e, t) for s, e, t in first + second]


def test_segments_straddling_the_window_keep_their_words_outside_it():
    """A 24 s segment of the earlier chunk runs into the window and a 29 s one of the later chunk
    runs out of it, one word a second. A 10-word refrain said in both, 30 s apart and outside the
    window, is longer than what the window holds (8 words): it must not be taken for the overlap."""
    refrain = "to be or not to be that is the question"
    before, inside, after = f"{refrain} {filler(6, 'a')}", filler(8, "o"), f"{filler(11, 'z')} {refrain}"
    earlier = [(80.0, CUT + OVERLAP, f"{before} {inside}")]  # the window's words from 96 s
    later = [(96.0, 125.0, f"{inside} {after}")]  # the window's words up to 104 s
    out = stitch(hard_cut(earlier, later))
    assert words(out) == before.split() + inside.split() + after.split()
    assert out[0].text.startswith(before) and out[0].start == 80.0
    assert out[-1].text.endswith(after) and out[-1].end == 125.0
    assert_well_formed(out)


def test_empty_later_chunk_keeps_all_of_the_earlier():
    """The later chunk heard nothing: the earlier one is the only witness, even past the cut."""
    earlier = [(90.0, 95.0, "Early words."), (97.0, 103.0, "The last sentence, past the cut.")]
    out = stitch(hard_cut(earlier, []))
    assert words(out) == "early words the last sentence past the cut".split()


def test_empty_earlier_chunk_keeps_all_of_the_later():
    """The earlier chunk said nothing in the window: the later one's words before the cut stay."""
    a0 = Chunk(0, 0.0, A_START, 0.0, A_START, pcm=b"")
    earlier, later = hard_cut([], [(97.0, 103.0, "Words across the cut."), (105.0, 110.0, "More.")])
    out = stitch([part(a0, (10.0, 20.0, "Long before.")), earlier, later])
    assert words(out) == "long before words across the cut more".split()
    assert stitch([earlier, later]) == [Segment(97.0, 103.0, "Words across the cut."), Segment(105.0, 110.0, "More.")]


def test_no_segments_at_all():
    assert stitch([]) == []
    assert stitch(hard_cut([], [])) == []
