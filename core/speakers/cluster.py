"""Who is who: voice prints grouped into speakers, and the speaker turns that follow.

Average-linkage agglomerative clustering on cosine similarity, as pyannote and 3D-Speaker do, over
at most MAX_CLUSTERED windows spread evenly over the recording (the similarity matrix of a 3-hour
recording's 27,000 windows would be 2.9 GB; of 600, 1.4 MB); every window is then given the
nearest speaker's centroid, refined twice, k-means fashion. The merge history is kept, so a count
asked for (or a minimum and maximum) is a cut of the same tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .assign import talk
from .listen import STEP_SECONDS, Heard

MAX_CLUSTERED = 600
# Average cosine similarity (CAM++) below which two groups are different people. On the meeting
# excerpts (bench/diarization.py --sweep) pooled DER is 0.280 from 0.30 to 0.40 and 0.288 at 0.45
# to 0.50, with the count of people within one on all nine files; 0.55 and above split people
# (0.30-0.52). Two espeak-ng voices (en, en+f3) are about 0.4 apart and need 0.45 to be told apart.
THRESHOLD = 0.45
MIN_SHARE = 0.04  # in Auto, a group under this share of the speech (and under MIN_SECONDS) is merged away
MIN_SECONDS = 3.0
SMOOTH = 1  # windows each side a window's print is averaged with (same stretch of speech only)
MAX_SPEAKERS = 20
# A pause shorter than this between two turns belongs to them (joined if one speaker's, split halfway
# if two): the meetings' annotators count such pauses as speech. Filling them on the turns, not in the
# voice detection (min silence 1000 ms), keeps a change of speaker at a pause a break between two
# stretches of speech. Measured (bench/diarization.py, VAD padding 100 ms): 0 s 0.301, 0.5 s 0.296,
# 0.8 s 0.292, 1.0 s 0.296 pooled DER.
JOIN_SECONDS = 0.8
# Where the segmentation model hears two voices at once, the second is sought among the speakers
# who talk within this many seconds of it (pyannote's local speakers live in 10 s windows).
NEAR_SECONDS = 5.0


@dataclass(frozen=True)
class Count:
    """How many speakers to find: `low == high` is a known count; Auto is 1 to MAX_SPEAKERS."""

    low: int = 1
    high: int = MAX_SPEAKERS

    @property
    def auto(self) -> bool:
        return (self.low, self.high) == (1, MAX_SPEAKERS)

    def __str__(self) -> str:
        return "auto" if self.auto else str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    @classmethod
    def parse(cls, text: str | int | None) -> "Count | None":
        """"auto" (or empty), "3", "2-4"; None for "off". ValueError for anything else."""
        text = str(text if text is not None else "auto").strip().lower()
        if text in ("", "auto"):
            return cls()
        if text in ("off", "0", "none"):
            return None
        m = re.fullmatch(r"(\d{1,2})(?:\s*-\s*(\d{1,2}))?", text)
        low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, 0)
        if not 1 <= low <= high <= MAX_SPEAKERS:
            raise ValueError(f"speakers must be auto, off, a number from 1 to {MAX_SPEAKERS} or a range like 2-4")
        return cls(low, high)


def smoothed(heard: Heard) -> np.ndarray:
    """Each window's print averaged with its neighbours in the same stretch of speech: 0.8 s of
    voice is a noisy print, 1.6 s a much steadier one."""
    emb = heard.emb.astype(np.float32)
    out = emb.copy()
    for k in range(1, SMOOTH + 1):
        same_prev = np.zeros(len(emb), bool)
        same_prev[k:] = heard.span[k:] == heard.span[:-k]
        out[k:][same_prev[k:]] += emb[:-k][same_prev[k:]]
        out[:-k][same_prev[k:]] += emb[k:][same_prev[k:]]
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)


def merges(x: np.ndarray) -> list[tuple[int, int, float]]:
    """Average-linkage merge history of unit vectors `x`: (kept, absorbed, similarity) in order."""
    n = len(x)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n)
    out = []
    for _ in range(n - 1):
        flat = int(np.argmax(sim))
        a, b = divmod(flat, n)
        s = float(sim[a, b])
        merged = (size[a] * sim[a] + size[b] * sim[b]) / (size[a] + size[b])
        sim[a], sim[:, a] = merged, merged
        sim[a, a] = -np.inf
        sim[b], sim[:, b] = -np.inf, -np.inf
        size[a] += size[b]
        out.append((a, b, s))
    return out


def cut(n: int, history: list[tuple[int, int, float]], count: Count, threshold: float) -> np.ndarray:
    """Cluster ids of n items after the merges that the threshold and the count allow."""
    parent = np.arange(n)
    groups = n
    for a, b, s in history:
        if groups <= count.low or (s < threshold and groups <= count.high):
            break
        parent[parent == b] = a
        groups -= 1
    _, ids = np.unique(parent, return_inverse=True)
    return ids


def _centroids(x: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    c = np.stack([x[ids == i].mean(axis=0) if np.any(ids == i) else np.zeros(x.shape[1]) for i in range(k)])
    return c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-12)


def _drop_small(x: np.ndarray, ids: np.ndarray, count: Count) -> np.ndarray:
    """In Auto, groups too small to be a person of this recording go to the nearest other group."""
    while True:
        sizes = np.bincount(ids)
        k = len(sizes)
        small = [i for i in range(k) if sizes[i] < max(MIN_SHARE * len(ids), MIN_SECONDS / STEP_SECONDS)]
        if not small or k - 1 < count.low or len(small) == k:
            return ids
        worst = min(small, key=lambda i: sizes[i])
        c = _centroids(x, ids, k)
        sims = c @ c[worst]
        sims[worst] = -np.inf
        ids = np.where(ids == worst, int(np.argmax(sims)), ids)
        _, ids = np.unique(ids, return_inverse=True)


def labels(heard: Heard, count: Count, threshold: float = THRESHOLD) -> np.ndarray:
    """A speaker index for every window of `heard` (0 = who speaks first)."""
    n = len(heard.times)
    if n == 0:
        return np.zeros(0, int)
    if count.auto and heard.voices > 1:  # people the segmentation model heard apart in one window
        count = Count(min(heard.voices, MAX_SPEAKERS), MAX_SPEAKERS)
    x = smoothed(heard)
    pick = np.unique(np.linspace(0, n - 1, min(n, MAX_CLUSTERED)).round().astype(int))
    ids = cut(len(pick), merges(x[pick]), count, threshold)
    ids = _drop_small(x[pick], ids, count)
    k = int(ids.max()) + 1
    c = _centroids(x[pick], ids, k)
    for _ in range(2):  # every window to its nearest speaker, then the speakers' centres again
        every = np.argmax(x @ c.T, axis=1)
        c = _centroids(x, every, k)
    every = np.argmax(x @ c.T, axis=1)
    order = {old: new for new, old in enumerate(dict.fromkeys(every.tolist()))}  # by first word
    return np.array([order[i] for i in every.tolist()], int)


def turns(heard: Heard, who: np.ndarray) -> list[tuple[float, float, int]]:
    """(start, end, speaker) turns, sorted by start: one speaker at a time (`single_turns`), and
    over them a second speaker wherever two voices were heard at once (`second_turns`)."""
    one = single_turns(heard, who)
    return sorted(one + second_turns(heard, who, one))


def second_turns(heard: Heard, who: np.ndarray, one: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """A turn for the second voice of each stretch of two voices (`heard.overlap`): of the speakers
    who talk within NEAR_SECONDS of it, other than the one talking there, the one whose voice is
    nearest the prints of the stretch (the mixture sounds like both). None if no one else is near."""
    if len(heard.overlap) == 0 or len(who) == 0:
        return []
    x = smoothed(heard)
    c = _centroids(x, who, int(who.max()) + 1)
    starts = np.array([t[0] for t in one])
    ends = np.array([t[1] for t in one])  # sorted too: these turns do not overlap
    out = []
    for a, b in heard.overlap.tolist():
        around = one[int(np.searchsorted(ends, a - NEAR_SECONDS)):int(np.searchsorted(starts, b + NEAR_SECONDS))]
        near = talk(around, a - NEAR_SECONDS, b + NEAR_SECONDS)
        here = talk(around, a, b)
        first = max(here, key=here.get) if here else None
        others = [spk for spk in near if spk != first]
        if first is None or not others:
            continue
        inside = (heard.times >= a - STEP_SECONDS) & (heard.times <= b + STEP_SECONDS)
        if not inside.any():
            inside = np.abs(heard.times - (a + b) / 2) == np.abs(heard.times - (a + b) / 2).min()
        v = x[inside].mean(axis=0)
        out.append((float(a), float(b), max(others, key=lambda spk: float(c[spk] @ v))))
    return out


def single_turns(heard: Heard, who: np.ndarray) -> list[tuple[float, float, int]]:
    """(start, end, speaker) turns: each window owns the time to halfway to its neighbours in its
    stretch of speech, clipped to that stretch; turns of one speaker closer than JOIN_SECONDS are
    joined, and a shorter pause between two speakers is split halfway."""
    out: list[tuple[float, float, int]] = []
    for i, t in enumerate(heard.times):
        s = heard.span[i]
        a, b = heard.speech[s]
        lo = a if i == 0 or heard.span[i - 1] != s else (heard.times[i - 1] + t) / 2
        hi = b if i == len(heard.times) - 1 or heard.span[i + 1] != s else (heard.times[i + 1] + t) / 2
        spk = int(who[i])
        if hi <= lo:
            continue
        if out and lo - out[-1][1] < JOIN_SECONDS:
            if out[-1][2] == spk:
                out[-1] = (out[-1][0], float(hi), spk)
                continue
            mid = (out[-1][1] + lo) / 2
            out[-1], lo = (out[-1][0], mid, out[-1][2]), mid
        out.append((float(lo), float(hi), spk))
    return out
