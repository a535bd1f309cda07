"""Cut the decoded recording into `Chunk`s, each transcribed on its own.

Chunks are cut from a small rolling buffer as the decoder runs, so a 3-hour file never sits in
memory whole, and the first chunk can be on its way to the service while the rest is still being
decoded. There are two ways to cut:

- `iter_chunks`, for models that return timed segments: chunks of about CHUNK_SECONDS, cut in
  pauses (pydub's `detect_silence`) near the target length; where no pause exists, the cut is
  hard and both sides keep an overlap that `core.transcribe.stitch` resolves.
- `iter_utterances`, for models that return text only, whose answer becomes one segment spanning
  the request: pieces of a sentence or a few, at most PIECE_MAX_SECONDS, so that segment starts
  at most that long before any word in it. Cuts fall where Silero's voice detection hears a pause,
  else in pydub's quiet moments, else hard (with an overlap, as above). Voice detection chooses
  where to cut, never what to leave out: only silence by loudness is left out and not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import UnsupportedMedia
from . import voice  # looked up on the module, so that patching `voice.voice_spans` reaches the cutter
from .decode import decode_bytes, pcm_blocks, pcm_bytes, pcm_seconds
from .encode import LOSSLESS, UploadFormat, encode_pcm
from .voice import FRAME_BYTES, frames

MIN_CHUNK_SECONDS = 1.0  # shorter tails are padded with silence (the service refuses < 0.1 s)


@dataclass(frozen=True)
class Chunk:
    """A slice of the recording to transcribe on its own.

    `start`/`end` are the audio it carries; `keep_start`/`keep_end` the part it answers for.
    They differ only at hard cuts, where neighbouring chunks overlap. A `gap` is silence left out
    (`iter_utterances`): it carries no audio, and nothing is sent for it.
    """

    index: int
    start: float
    end: float
    keep_start: float
    keep_end: float
    pcm: bytes  # 16 kHz mono s16le
    encoded: bytes = b""  # the upload file, once made (then the PCM can be dropped)
    gap: bool = False  # silence left out: no audio, nothing to send

    @property
    def duration(self) -> float:
        return self.end - self.start

    def audio(self) -> bytes:
        """The PCM, decoded again from the upload file if it was dropped."""
        return self.pcm or (decode_bytes(self.encoded) if self.encoded else b"")

    @property
    def hard_start(self) -> bool:
        return self.keep_start > self.start

    def encode(self, fmt: UploadFormat = LOSSLESS) -> bytes:
        """The chunk as an audio file for upload."""
        return self.encoded or encode_pcm(self.pcm, fmt)


# Utterance pieces, for models that answer with text and no times (see `iter_utterances`). The
# text of a piece becomes one segment that starts where the piece starts, so pieces are short.
PIECE_MAX_SECONDS = 10.0  # longest piece, overlap included: its segment starts at most this long before its words
PIECE_MIN_SECONDS = 1.0  # no cut in a piece's first second (MIN_CHUNK_SECONDS pads shorter ones anyway)
PIECE_LEAD_SECONDS = 0.3  # kept before a voice or sound starts, so the model hears its onset whole
PIECE_TAIL_SECONDS = 0.3  # kept after a sound ends, before a silence that is left out
GAP_MIN_SECONDS = 2.0  # silences this long inside speech are left out; shorter ones cost less sent than a request
HEAD_GAP_MIN_SECONDS = 0.5  # silence before a piece's first sound beyond its lead is left out from this long
PIECE_OVERLAP_SECONDS = 1.5  # each side of a hard cut (no pause, no quiet moment); stitching keeps each word once
PIECE_OVERLAP_SHARE = 5  # but at most this share of a shorter piece (a low MAX_UPLOAD_MB)
# Audio analysed at once. Silero runs ~300x real time on one core, so a first piece is on its way a
# fraction of a second after the decoder starts, and memory stays at about a minute of PCM.
ANALYSIS_SECONDS = 60.0
# Audio past a piece's latest possible end that must be decoded before it is cut: enough to tell
# a silence that will be left out (GAP_MIN_SECONDS) and where the voice comes back.
SETTLE_SECONDS = GAP_MIN_SECONDS + 1.0


def _pad(pcm: bytes) -> bytes:
    short = pcm_bytes(MIN_CHUNK_SECONDS) - len(pcm)
    return pcm + b"\0" * short if short > 0 else pcm


def _no_audio(path: Path) -> UnsupportedMedia:
    return UnsupportedMedia("{name} contains no audio (the recording is empty).", name=Path(path).name)


def iter_chunks(path: Path, *, target_seconds: float, window_seconds: float,
                overlap_seconds: float, min_silence_ms: int,
                on_damage: Callable[[str], None] | None = None,
                max_seconds: float | None = None,
                on_limit: Callable[[float], None] | None = None,
                first_seconds: float | None = None, expected_seconds: float | None = None,
                at_least: Callable[[float], float] | None = None) -> Iterator[Chunk]:
    """Decode `path` and yield chunks of about `target_seconds`, cut in pauses.

    A cut is searched in the last `window_seconds` before the target; with no pause there, the
    chunk is cut hard at the target and overlaps its neighbour by `overlap_seconds` on each side.
    `first_seconds`, `expected_seconds` and `at_least` shape the target of each chunk (see `_aim`).
    Memory stays near one chunk plus one read block, whatever the file's length. Nothing past
    `max_seconds` is decoded or carried (see `decode.pcm_blocks`).
    """
    overlap = pcm_bytes(overlap_seconds)
    blocks = pcm_blocks(path, max_seconds, on_damage, on_limit)
    buf = bytearray()
    buf_start = 0  # position of buf[0] in the recording, in bytes
    keep_start = 0
    index = 0
    try:
        for block in blocks:
            buf += block
            while True:
                target, window = _aim(index, buf_start, target_seconds, window_seconds,
                                      first_seconds, expected_seconds, at_least)
                if len(buf) < target + overlap:  # not enough buffered to plan the cut yet
                    break
                cut, end, next_start = _chunk_end(buf, target, window, overlap, min_silence_ms)
                yield Chunk(index, pcm_seconds(buf_start), pcm_seconds(buf_start + end), pcm_seconds(keep_start),
                            pcm_seconds(buf_start + cut), bytes(buf[:end]))
                index += 1
                keep_start = buf_start + cut
                del buf[:next_start]
                buf_start += next_start
        if buf and (index == 0 or len(buf) > (keep_start - buf_start)):
            end = buf_start + len(buf)
            yield Chunk(index, pcm_seconds(buf_start), pcm_seconds(end), pcm_seconds(keep_start), pcm_seconds(end),
                        _pad(bytes(buf)))
        elif index == 0:
            raise _no_audio(path)
    finally:
        blocks.close()  # stops the decoder


def _aim(index: int, at: int, target_seconds: float, window_seconds: float, first_seconds: float | None,
         expected_seconds: float | None, at_least: Callable[[float], float] | None) -> tuple[int, int]:
    """Bytes to aim at for chunk `index` of `iter_chunks`, starting `at` bytes in, and the window
    before it searched for a pause.

    With `first_seconds`, the first chunk aims at that length and each next one at twice its
    predecessor's, up to `target_seconds` (a short first chunk is back soon: the first text); and
    if the recording is `expected_seconds` long, the last ones at half of what is left, down to
    `first_seconds` again (a short last chunk is back soon after the decoding ends). `at_least`
    gives, for a chunk starting at a second of the recording, the least it should last (a
    rate-limited account: fewer, longer requests), asked as each chunk is planned.
    """
    seconds = target_seconds
    if first_seconds is not None:
        seconds = min(seconds, first_seconds * 2 ** index)
        if expected_seconds:
            seconds = min(seconds, max(first_seconds, (expected_seconds - pcm_seconds(at)) / 2))
    if at_least is not None:
        seconds = max(seconds, at_least(pcm_seconds(at)))
    return pcm_bytes(seconds), min(pcm_bytes(window_seconds), pcm_bytes(seconds / 2))


def _chunk_end(buf: bytearray, target: int, window: int, overlap: int, min_silence_ms: int) -> tuple[int, int, int]:
    """(cut, end, next chunk's start), in bytes into `buf`, of a chunk aimed at `target`: in the
    longest pause in the `window` before it, else hard at the target with both sides overlapping it."""
    pause = voice.find_pause(bytes(buf[target - window:target]), min_silence_ms)
    if pause is not None:
        cut = target - window + pcm_bytes(pause)
        return cut, cut, cut
    return target, target + overlap, target - overlap


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) frame ranges where `mask` is True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


@dataclass(frozen=True)
class Span:
    """Part of an analysed stretch, in frames: a piece to send (keeping [keep_start, keep_end)) or
    a silence to leave out."""

    start: int
    end: int
    keep_start: int
    keep_end: int
    gap: bool = False


class Cutter:
    """Where to cut one stretch of decoded audio into utterance pieces and silences left out.

    A piece starts just before a sound and ends, in order of preference:
    1. where a silence of GAP_MIN_SECONDS or more begins (the silence is left out);
    2. at the end of the recording, if it fits;
    3. in the longest pause in the voice (Silero), just before the voice comes back, looking in
       the second half of the longest piece first (fuller pieces, fewer requests), then earlier;
    4. in the longest quiet moment pydub finds (`find_pause`), likewise: music, a voice under noise;
    5. hard, at `max_seconds`, overlapping the next piece by PIECE_OVERLAP_SECONDS each side.
    No piece is longer than `max_seconds`, and only silence (by loudness) is ever left out.
    """

    def __init__(self, pcm: bytes, final: bool, min_silence_ms: int, max_seconds: float = PIECE_MAX_SECONDS):
        self.pcm, self.final, self.min_silence_ms = pcm, final, min_silence_ms
        self.max = frames(max_seconds)
        self.overlap = min(frames(PIECE_OVERLAP_SECONDS), self.max // PIECE_OVERLAP_SHARE)
        self.loud = voice.loud_frames(pcm)
        self.n = len(self.loud)
        voiced = np.zeros(self.n, dtype=bool)
        if self.loud.any():  # Silero on silence is time wasted
            for a, b in voice.voice_spans(pcm):
                voiced[frames(a):frames(b) + 1] = True
        self.pauses = _runs(~voiced)
        self.silences = [(a, b) for a, b in _runs(~self.loud)
                         if b - a >= frames(GAP_MIN_SECONDS) or (final and b == self.n)]

    def cut(self, p: int, keep: int) -> tuple[list[Span], int, int]:
        """Spans from frame `p` on (audio before `keep` belongs to the previous piece: a hard cut's
        overlap), as far as the audio decoded so far settles; and the `p`, `keep` to go on from."""
        spans: list[Span] = []
        lead = frames(PIECE_LEAD_SECONDS)
        while p < self.n:
            if keep <= p:  # a piece after a hard cut starts in the overlap, whatever is there
                sound = self._next_sound(p)
                if sound is None:  # silent up to here: left out, but for a lead for what comes
                    end = self.n if self.final else max(p, self.n - lead)
                    if end > p:
                        spans.append(Span(p, end, p, end, gap=True))
                        p = keep = end
                    break
                start = max(p, sound - lead)
                if start - p >= frames(HEAD_GAP_MIN_SECONDS):
                    spans.append(Span(p, start, p, start, gap=True))
                    p = keep = start
            if not self.final and p + self.max + frames(SETTLE_SECONDS) > self.n:
                break  # where this piece ends is not settled yet
            cut, end, after = self._piece_end(p, keep)
            spans.append(Span(p, end, max(p, keep), cut))
            p, keep = after, cut
        return spans, p, keep

    def _next_sound(self, p: int) -> int | None:
        hits = np.flatnonzero(self.loud[p:])
        return p + int(hits[0]) if len(hits) else None

    def _piece_end(self, p: int, keep: int) -> tuple[int, int, int]:
        """(cut, end, next piece's start) of the piece that starts at `p`."""
        hi = min(p + self.max, self.n)
        lo = max(p, keep) + frames(PIECE_MIN_SECONDS)
        first = self._next_sound(p)
        first = p if first is None else first
        for a, b in self.silences:  # 1. a silence left out ends the piece
            if first < a < hi:
                end = min(a + frames(PIECE_TAIL_SECONDS), b, hi)
                if end > keep:
                    return end, end, end
        if self.final and self.n <= hi:  # 2. the rest fits
            return self.n, self.n, self.n
        windows = [w for w in (max(lo, p + self.max // 2), lo) if w < hi]
        for w in windows:  # 3. a pause in the voice
            cut = self._pause_cut(p, w, hi)
            if cut is not None:
                return cut, cut, cut
        for w in windows:  # 4. a quiet moment
            if hi - w >= frames(self.min_silence_ms / 1000):
                quiet = voice.find_pause(self.pcm[w * FRAME_BYTES:hi * FRAME_BYTES], self.min_silence_ms)
                if quiet is not None and w < w + frames(quiet) <= hi:
                    return w + frames(quiet), w + frames(quiet), w + frames(quiet)
        return hi - self.overlap, hi, hi - 2 * self.overlap  # 5. hard

    def _pause_cut(self, p: int, lo: int, hi: int) -> int | None:
        """The cut in the longest pause in the voice with a cut in (lo, hi] (the latest on ties):
        just before the voice comes back, or just after it stops if it comes back too late."""
        lead, tail = frames(PIECE_LEAD_SECONDS), frames(PIECE_TAIL_SECONDS)
        best = None
        for a, b in self.pauses:
            if b <= p or a >= hi:
                continue
            cut = max(b - lead, (a + b) // 2)
            if cut > hi:
                cut = min(a + tail, (a + b) // 2)
            if lo < cut <= hi:
                best = max(best or (0, 0), (b - max(a, p), cut))
        return best[1] if best else None


class _Pieces:
    """The rolling buffer of `iter_utterances`: analyses, cuts and hands out chunks."""

    def __init__(self, min_silence_ms: int, max_seconds: float):
        self.min_silence_ms, self.max_seconds = min_silence_ms, max_seconds
        self.buf = bytearray()
        self.start = 0  # position of buf[0] in the recording, in bytes
        self.p = self.keep = 0  # frames into buf: where the next span starts, and what it keeps
        self.index = 0
        self.gap: tuple[int, int] | None = None  # silence left out, in bytes, not handed out yet

    def cut(self, final: bool) -> list[Chunk]:
        pcm = bytes(self.buf)
        spans, p, keep = Cutter(pcm, final, self.min_silence_ms, self.max_seconds).cut(self.p, self.keep)
        out = []
        for s in spans:
            a, b = self._at(s.start), self._at(s.end)
            if s.gap:  # consecutive silences are one gap
                self.gap = (self.gap[0] if self.gap else a, b)
                continue
            out += self._flush_gap()
            pcm_piece = pcm[a - self.start:b - self.start]
            keep_start, keep_end = pcm_seconds(self._at(s.keep_start)), pcm_seconds(self._at(s.keep_end))
            out.append(Chunk(self.index, pcm_seconds(a), pcm_seconds(b), keep_start, keep_end, _pad(pcm_piece)))
            self.index += 1
        if final:
            out += self._flush_gap()
        drop = min(p * FRAME_BYTES, len(self.buf))
        del self.buf[:drop]
        self.start += drop
        self.p, self.keep = 0, keep - p
        return out

    def _at(self, frame: int) -> int:
        """Bytes into the recording of a frame of the buffer (the recording's end at most)."""
        return self.start + min(frame * FRAME_BYTES, len(self.buf))

    def _flush_gap(self) -> list[Chunk]:
        if not self.gap:
            return []
        a, b = self.gap
        self.gap = None
        self.index += 1
        return [Chunk(self.index - 1, pcm_seconds(a), pcm_seconds(b), pcm_seconds(a), pcm_seconds(b), b"", gap=True)]


def iter_utterances(path: Path, *, min_silence_ms: int, max_piece_seconds: float = PIECE_MAX_SECONDS,
                    on_damage: Callable[[str], None] | None = None,
                    max_seconds: float | None = None,
                    on_limit: Callable[[float], None] | None = None) -> Iterator[Chunk]:
    """Decode `path` and yield utterance pieces (a sentence or a few) and the silences between.

    For models that answer with text only: each piece is sent on its own, and its text becomes a
    segment from the piece's start to its end, so no piece is longer than `max_piece_seconds` (see
    `Cutter` for where they are cut). Voice detection chooses where to cut, never what to leave
    out: only silence by loudness is (as `gap` chunks, which carry no audio); music, singing or
    whispering that Silero does not hear as a voice is sent like speech. The recording is analysed
    ANALYSIS_SECONDS at a time, so memory stays small and the first piece leaves early. Nothing past
    `max_seconds` is decoded or carried (see `decode.pcm_blocks`).
    """
    blocks = pcm_blocks(path, max_seconds, on_damage, on_limit)
    pieces = _Pieces(min_silence_ms, max_piece_seconds)
    decoded = False
    try:
        for block in blocks:
            decoded = True
            pieces.buf += block
            if len(pieces.buf) >= pcm_bytes(ANALYSIS_SECONDS):
                yield from pieces.cut(final=False)
        if not decoded:
            raise _no_audio(path)
        yield from pieces.cut(final=True)
    finally:
        blocks.close()  # stops the decoder


def utterances_in(pcm: bytes, *, min_silence_ms: int, max_piece_seconds: float = PIECE_MAX_SECONDS) -> list[Chunk]:
    """`iter_utterances` for PCM at hand, with times into it: a chunk cut for a model that gives
    times, to be sent to one that does not after all."""
    pieces = _Pieces(min_silence_ms, max_piece_seconds)
    pieces.buf += pcm
    return pieces.cut(final=True)

