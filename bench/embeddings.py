"""How well speaker encoders tell the voices of the real meeting excerpts apart, side by side.

Windows: the reference's single-speaker stretches (no overlapping speech) of 0.8 s or more, cut
into windows of 1.5 s every 0.75 s (a stretch under 1.5 s is one window of its length). Every
encoder embeds the very same windows. Pairs of windows that share audio are left out. Speaker
names are AMI's, which are the same across files (FEE083 speaks in trn06 and trn09).

Reported per encoder: mean cosine of same-speaker pairs, of different-speaker pairs, their gap,
and the equal error rate, over the pairs within each file (what diarization needs) and over all
pairs of all files; and the gap per file where a file has both kinds of pairs.

    python bench/embeddings.py                       # the d-vector and CAM++ (models/campplus.onnx)
    python bench/embeddings.py --resemblyzer /path/to/resemblyzer/pretrained.pt
    python bench/embeddings.py --speed               # seconds to embed 10 minutes of audio
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from core.audio.decode import pcm_blocks  # noqa: E402
from core.speakers import voices, voices_campp  # noqa: E402

MEETINGS = ROOT.parent / "shared" / "speech" / "meetings"
SR = 16000
WIN, STEP, MIN_RUN = 1.5, 0.75, 0.8


def load(name: str) -> np.ndarray:
    pcm = b"".join(pcm_blocks(MEETINGS / f"{name}.flac", None, None, None))
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def windows() -> list[tuple[str, str, float, float]]:
    """(file, speaker, start, end) of every window, from the reference's non-overlapping speech."""
    segs = defaultdict(list)
    for line in (MEETINGS / "reference.rttm").read_text().splitlines():
        p = line.split()
        segs[p[1]].append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    out = []
    for name in sorted(segs):
        edges = sorted({t for a, b, _ in segs[name] for t in (a, b)})
        runs = []  # stretches where exactly one person speaks, merged when the same person goes on
        for a, b in zip(edges, edges[1:]):
            who = {s for x, y, s in segs[name] if x < b and y > a}
            if len(who) == 1:
                s = who.pop()
                if runs and runs[-1][2] == s and abs(runs[-1][1] - a) < 1e-6:
                    runs[-1] = (runs[-1][0], b, s)
                else:
                    runs.append((a, b, s))
        for a, b, s in runs:
            if b - a < MIN_RUN:
                continue
            if b - a <= WIN:
                out.append((name, s, a, b))
                continue
            starts = list(np.arange(a, b - WIN + 1e-9, STEP))
            if starts[-1] + WIN < b - 0.1:
                starts.append(b - WIN)
            out += [(name, s, float(t), float(t) + WIN) for t in starts]
    return out


# ---- encoders: each takes a list of float pieces of audio and gives unit vectors ----

def dvector(pieces: list[np.ndarray]) -> np.ndarray:
    """The app's d-vector: the mean of its 0.8 s windows (every 0.4 s) over the piece."""
    out = []
    for w in pieces:
        e = voices.Embedder.embed(voices.log_mel(np.concatenate([w, np.zeros(512 - 160, np.float32)])))
        v = e.mean(axis=0)
        out.append(v / np.linalg.norm(v))
    return np.array(out)


def campp(pieces: list[np.ndarray]) -> np.ndarray:
    return voices_campp.Embedder.embed_samples(pieces)


class Resemblyzer:
    """Resemblyzer's GE2E encoder in numpy, from its pretrained.pt read without torch: volume raised
    to -30 dBFS (never lowered), 40-band mel power (librosa's defaults: centred, Hann 400, Slaney),
    a 3-layer LSTM of 256, the last hidden state through linear + ReLU, unit length."""

    def __init__(self, path: str):
        import torchless

        sd = torchless.load(path)
        self.sd = sd.get("model_state", sd)
        f = np.linspace(0, SR / 2, 201)
        m = voices._hz_to_mel
        pts = voices._mel_to_hz(np.linspace(m(0.0), m(SR / 2), 42))
        ramps = pts[:, None] - f[None, :]
        lower, upper = -ramps[:-2] / np.diff(pts)[:-1, None], ramps[2:] / np.diff(pts)[1:, None]
        self.mel = (np.maximum(0, np.minimum(lower, upper)) * (2.0 / (pts[2:] - pts[:-2]))[:, None]).astype(np.float32)
        n = np.arange(400)
        self.win = (0.5 - 0.5 * np.cos(2 * np.pi * n / 400)).astype(np.float32)

    def features(self, w: np.ndarray) -> np.ndarray:
        rms = np.sqrt(np.mean(w.astype(np.float64) ** 2)) + 1e-12
        change = -30 - 20 * np.log10(rms)
        if change > 0:
            w = w * 10 ** (change / 20)
        x = np.pad(w, 200)  # librosa >= 0.10 centres with zeros
        frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
        power = np.abs(np.fft.rfft(frames * self.win, axis=1)) ** 2
        return (power.astype(np.float32) @ self.mel.T).astype(np.float32)

    def __call__(self, pieces: list[np.ndarray]) -> np.ndarray:
        out = []
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        for w in pieces:
            x = self.features(w)
            for layer in range(3):
                wi, wh = self.sd[f"lstm.weight_ih_l{layer}"], self.sd[f"lstm.weight_hh_l{layer}"]
                b = self.sd[f"lstm.bias_ih_l{layer}"] + self.sd[f"lstm.bias_hh_l{layer}"]
                pre = x @ wi.T + b
                h, c, hs = np.zeros(256, np.float32), np.zeros(256, np.float32), []
                for t in range(len(x)):
                    z = pre[t] + wh @ h
                    i, f, g, o = sig(z[:256]), sig(z[256:512]), np.tanh(z[512:768]), sig(z[768:])
                    c = f * c + i * g
                    h = o * np.tanh(c)
                    hs.append(h)
                x = np.array(hs)
            e = np.maximum(0, self.sd["linear.weight"] @ h + self.sd["linear.bias"])
            out.append(e / (np.linalg.norm(e) + 1e-12))
        return np.array(out)


# ---- scoring ----

def eer(same: np.ndarray, diff: np.ndarray) -> float:
    scores = np.concatenate([same, diff])
    labels = np.concatenate([np.ones(len(same)), np.zeros(len(diff))])
    order = np.argsort(-scores)
    labels = labels[order]
    fa = np.cumsum(1 - labels) / len(diff)  # accepting the top k: different pairs let in
    fr = 1 - np.cumsum(labels) / len(same)  # same pairs left out
    k = np.argmin(np.abs(fa - fr))
    return float((fa[k] + fr[k]) / 2)


def pairs(wins, emb, within_file: bool):
    sim = emb @ emb.T
    same, diff = [], []
    for i in range(len(wins)):
        for j in range(i + 1, len(wins)):
            fi, si, ai, bi = wins[i]
            fj, sj, aj, bj = wins[j]
            if fi == fj and ai < bj and aj < bi:
                continue  # shared audio
            if within_file and fi != fj:
                continue
            (same if si == sj else diff).append(sim[i, j])
    return np.array(same), np.array(diff)


def report(wins, embs: dict[str, np.ndarray]) -> None:
    print(f"{len(wins)} windows, {len({(f, s) for f, s, *_ in wins})} speaker-in-file, "
          f"{len({s for _, s, *_ in wins})} speakers\n")
    print("| encoder | pairs | same / different | mean cos same | mean cos different | gap | EER |")
    print("|---|---|---|---|---|---|---|")
    for name, emb in embs.items():
        for within in (True, False):
            s, d = pairs(wins, emb, within)
            print(f"| {name} | {'within a file' if within else 'all files'} | {len(s)} / {len(d)} | "
                  f"{s.mean():.3f} | {d.mean():.3f} | {s.mean() - d.mean():.3f} | {eer(s, d):.3f} |")
    files = sorted({w[0] for w in wins})
    print("\ngap (mean cos same - different) within each file that has both kinds of pairs:\n")
    rows = {}
    for f in files:
        idx = [i for i, w in enumerate(wins) if w[0] == f]
        sub = [wins[i] for i in idx]
        r = {}
        for name, emb in embs.items():
            s, d = pairs(sub, emb[idx], True)
            if len(s) and len(d):
                r[name] = (s.mean() - d.mean(), eer(s, d))
        if r:
            rows[f] = (len(idx), len({w[1] for w in sub}), r)
    print("| file | windows | speakers | " + " | ".join(f"{n} gap (EER)" for n in embs) + " |")
    print("|---|---|---|" + "---|" * len(embs))
    for f, (nw, ns, r) in rows.items():
        print(f"| {f} | {nw} | {ns} | " + " | ".join(f"{r[n][0]:.3f} ({r[n][1]:.2f})" for n in embs) + " |")


def speed(encoders: dict) -> None:
    """Seconds to embed 10 minutes of audio (the meetings repeated) in 1.5 s windows every 0.75 s."""
    audio = np.concatenate([load(f"trn0{i}") for i in range(1, 10)])
    audio = np.tile(audio, int(np.ceil(600 * SR / len(audio))))[:600 * SR]
    for threads in (1, 2):
        voices_campp.Embedder._session = None
        voices_campp.Embedder.threads = threads
        t0, c0 = time.perf_counter(), time.process_time()
        feats = voices_campp.fbank(audio)  # features once over the whole stream, windows cut from them
        n = 150
        wins = np.lib.stride_tricks.sliding_window_view(feats, (n, voices_campp.N_MELS))[::75, 0]
        emb = voices_campp.Embedder.embed(wins)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"CAM++ {threads} thread(s): {len(emb)} 1.5 s windows every 0.75 s in {dt:.1f} s wall "
              f"({600 / dt:.0f}x real time), {cpu:.1f} s CPU")
    voices.Embedder._session = None
    t0, c0 = time.perf_counter(), time.process_time()
    emb = voices.Embedder.embed(voices.log_mel(audio))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"d-vector (app, 1 thread): {len(emb)} 0.8 s windows every 0.4 s in {dt:.1f} s wall "
          f"({600 / dt:.0f}x real time), {cpu:.1f} s CPU")
    if "resemblyzer" in encoders:
        piece = [audio[i * 24000: i * 24000 + 24000] for i in range(20)]
        t0 = time.perf_counter()
        encoders["resemblyzer"](piece)
        dt = (time.perf_counter() - t0) / 20 * 800
        print(f"resemblyzer (numpy LSTM, not optimised): about {dt:.0f} s for 800 windows, {600 / dt:.0f}x real time")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resemblyzer", help="path to resemblyzer's pretrained.pt")
    ap.add_argument("--extra", action="append", default=[], help="NAME=path.onnx: another CAM++-style ONNX file")
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args()
    encoders = {"d-vector (app)": dvector, "CAM++": campp}
    if args.resemblyzer:
        encoders["resemblyzer"] = Resemblyzer(args.resemblyzer)
    for spec in args.extra:
        name, path = spec.split("=", 1)

        def other(pieces, path=path):
            import onnxruntime as ort
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            out = []
            for w in pieces:
                f = voices_campp.fbank(w)
                out.append(s.run(None, {"fbank": (f - f.mean(axis=0))[None]})[0][0])
            out = np.array(out)
            return out / np.linalg.norm(out, axis=1, keepdims=True)
        encoders[name] = other
    if args.speed:
        speed(encoders)
        return
    wins = windows()
    audio = {f: load(f) for f in sorted({w[0] for w in wins})}
    pieces = [audio[f][int(a * SR):int(b * SR)] for f, _, a, b in wins]
    embs = {}
    for name, enc in encoders.items():
        t0 = time.perf_counter()
        embs[name] = enc(pieces)
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    report(wins, embs)


if __name__ == "__main__":
    main()
