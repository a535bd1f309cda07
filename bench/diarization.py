"""Diarization error on the nine real meeting excerpts (AMI, `shared/speech/meetings/`).

DER is pyannote.metrics' (collar 0.25 s, overlapping speech scored), pooled over the nine files
and per file, against the trivial baseline that labels all the reference's speech as one speaker.
Also the speaker-count error: people who talk for 2 s or more, against speakers found.

    python bench/diarization.py            # the table, with the settings in force
    python bench/diarization.py --sweep    # a grid of thresholds and VAD settings
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyannote.core import Annotation, Segment  # noqa: E402
from pyannote.metrics.diarization import DiarizationErrorRate  # noqa: E402

from core.audio.decode import pcm_blocks  # noqa: E402
from core.speakers import cluster, listen  # noqa: E402

MEETINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "speech" / "meetings"
TALKER_SECONDS = 2.0  # a person "talks" in a file when they speak this long in all


def reference() -> dict[str, Annotation]:
    refs: dict[str, Annotation] = defaultdict(Annotation)
    for line in (MEETINGS / "reference.rttm").read_text().splitlines():
        p = line.split()
        refs[p[1]][Segment(float(p[3]), float(p[3]) + float(p[4])), p[1] + str(len(refs[p[1]]))] = p[7]
    return dict(refs)


def talkers(ref: Annotation) -> int:
    return sum(ref.label_duration(label) >= TALKER_SECONDS for label in ref.labels())


def hypothesis(turns: list[tuple[float, float, int]]) -> Annotation:
    hyp = Annotation()
    for i, (a, b, spk) in enumerate(turns):
        hyp[Segment(a, b), i] = f"S{spk + 1}"
    return hyp


def one_speaker(ref: Annotation) -> Annotation:
    hyp = Annotation()
    for i, seg in enumerate(ref.get_timeline().support()):
        hyp[seg, i] = "everyone"
    return hyp


def score(heard: dict, refs: dict, count_for=None, threshold: float = cluster.THRESHOLD) -> tuple[float, dict]:
    pooled = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    rows = {}
    for name, h in heard.items():
        count = count_for(refs[name]) if count_for else cluster.Count()
        who = cluster.labels(h, count, threshold)
        hyp = hypothesis(cluster.turns(h, who))
        der = pooled(refs[name], hyp)
        rows[name] = (der, len(set(who.tolist())), talkers(refs[name]), len(refs[name].labels()))
    return abs(pooled), rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    refs = reference()
    names = sorted(refs)
    heard = {n: listen.listen(pcm_blocks(MEETINGS / f"{n}.flac", None, None, None)) for n in names}
    base = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    base_rows = {n: base(refs[n], one_speaker(refs[n])) for n in names}
    if args.sweep:
        for th in (-0.1, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
            pooled, rows = score(heard, refs, threshold=th)
            print(f"threshold {th:.2f}: pooled DER {pooled:.3f}  " +
                  " ".join(f"{n[-2:]}:{r[0]:.2f}/{r[1]}" for n, r in rows.items()))
        return
    pooled, rows = score(heard, refs)
    known, _ = score(heard, refs, count_for=lambda r: cluster.Count(talkers(r), talkers(r)))
    print("| file | people (talk >= 2 s / all) | found | DER | one-speaker baseline |")
    print("|---|---|---|---|---|")
    for n in names:
        der, found, talk, every = rows[n]
        print(f"| {n} | {talk} / {every} | {found} | {der:.2f} | {base_rows[n]:.2f} |")
    print(f"| pooled | | | **{pooled:.3f}** | {abs(base):.3f} |")
    print(f"\nwith the count of people given: pooled DER {known:.3f}")


if __name__ == "__main__":
    main()
