"""Diarization error on the nine real meeting excerpts (AMI, `shared/speech/meetings/`).

DER is pyannote.metrics' (collar 0.25 s, overlapping speech scored), pooled over the nine files
and per file, against the trivial baseline that labels all the reference's speech as one speaker.
Also the speaker-count error: people who talk for 2 s or more, against speakers found.

    python bench/diarization.py            # the table, with the settings in force
    python bench/diarization.py --sweep    # a grid of clustering thresholds
    python bench/diarization.py --oracle-speech   # the reference's speech instead of voice detection
    python bench/diarization.py --window 1.5 --step 0.75 --smooth 1 --threshold 0.45
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
from core.speakers import cluster, listen, voices  # noqa: E402

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
    global last_metric
    last_metric = pooled
    return abs(pooled), rows


def oracle_heard(name: str, ref: Annotation) -> listen.Heard:
    """What listen() would hear if voice detection were perfect: the reference's speech regions
    (overlaps included, joined) as the stretches of speech, embedded as listen does."""
    import numpy as np

    pcm = b"".join(pcm_blocks(MEETINGS / f"{name}.flac", None, None, None))
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    spans, times, embs, owner = [], [], [], []
    for seg in ref.get_timeline().support():
        t, e = listen.windows(samples, int(seg.start * listen.SAMPLE_RATE), int(seg.end * listen.SAMPLE_RATE))
        if len(t):
            times.append(t)
            embs.append(e)
            owner.append(np.full(len(t), len(spans)))
            spans.append((seg.start, seg.end))
    return listen.Heard(len(samples) / listen.SAMPLE_RATE, np.array(spans, float).reshape(-1, 2),
                        np.concatenate(times), np.concatenate(owner), np.concatenate(embs).astype(np.float16))


last_metric = None  # the pooled metric of the last score(): its parts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--window", type=float, default=None, help="seconds of audio a voice print hears")
    ap.add_argument("--step", type=float, default=None, help="seconds between voice prints")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--oracle-speech", action="store_true",
                    help="the reference's speech regions instead of voice detection: only who-is-who is scored")
    ap.add_argument("--smooth", type=int, default=None, help="windows each side averaged (cluster.SMOOTH)")
    args = ap.parse_args()
    thresholds = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
    if args.smooth is not None:
        cluster.SMOOTH = args.smooth
    if args.window or args.step:
        from functools import partial

        window, step = args.window or voices.WINDOW_SECONDS, args.step or voices.STEP_SECONDS
        listen.windows = partial(voices.windows, window=window, step=step)
        listen.STEP_SECONDS = cluster.STEP_SECONDS = step
    if args.threshold is not None:
        cluster.THRESHOLD = args.threshold
    refs = reference()
    names = sorted(refs)
    if args.oracle_speech:
        heard = {n: oracle_heard(n, refs[n]) for n in names}
    else:
        heard = {n: listen.listen(pcm_blocks(MEETINGS / f"{n}.flac", None, None, None)) for n in names}
    base = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    base_rows = {n: base(refs[n], one_speaker(refs[n])) for n in names}
    if args.sweep:
        for th in thresholds:
            pooled, rows = score(heard, refs, threshold=th)
            print(f"threshold {th:.2f}: pooled DER {pooled:.3f}  " +
                  " ".join(f"{n[-2:]}:{r[0]:.2f}/{r[1]}" for n, r in rows.items()))
        return
    pooled, rows = score(heard, refs, threshold=cluster.THRESHOLD)
    auto_metric = last_metric
    print(f"threshold {cluster.THRESHOLD}, smooth {cluster.SMOOTH}, "
          f"step {listen.STEP_SECONDS} s{', speech from the reference' if args.oracle_speech else ''}\n")
    known, _ = score(heard, refs, count_for=lambda r: cluster.Count(talkers(r), talkers(r)),
                     threshold=cluster.THRESHOLD)
    print("| file | people (talk >= 2 s / all) | found | DER | one-speaker baseline |")
    print("|---|---|---|---|---|")
    for n in names:
        der, found, talk, every = rows[n]
        print(f"| {n} | {talk} / {every} | {found} | {der:.2f} | {base_rows[n]:.2f} |")
    print(f"| pooled | | | **{pooled:.3f}** | {abs(base):.3f} |")
    parts = auto_metric.accumulated_
    print("\npooled parts (seconds of the reference's {:.1f}): missed {:.1f}, false alarm {:.1f}, "
          "confusion {:.1f} (DER share {:.3f})".format(parts["total"], parts["missed detection"],
                                                      parts["false alarm"], parts["confusion"],
                                                      parts["confusion"] / parts["total"]))
    c = last_metric.accumulated_
    print(f"\nwith the count of people given: pooled DER {known:.3f} (confusion share {c['confusion'] / c['total']:.3f})")


if __name__ == "__main__":
    main()
