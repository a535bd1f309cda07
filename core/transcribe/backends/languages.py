"""Spoken languages: their names, which ones the transcription in force understands, and what
Whisper's language head hears in a stretch of speech.

With no language set, the local model follows a recording that switches language, switching only
when it is confident of the new one: an unclear passage stays in the language around it
(`following`). For an English-only model, the multilingual base model's detector listens
first, to every 30 s of speech, halving the unclear ones (`english_map`).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from ...config import Settings
from ...errors import AppError
from ...i18n import Text
from .local_model import models_dir, resolve_model

log = logging.getLogger(__name__)

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


def window_audio(audio: np.ndarray, window: Window) -> np.ndarray:
    return np.concatenate([audio[a:b] for a, b in window])


def language_probabilities(model, audio: np.ndarray) -> dict[str, float]:
    """Whisper's probability of each language for (the first 30 s of) `audio`."""
    _, _, probabilities = model.detect_language(audio=audio)
    return dict(probabilities)


def most_probable(probabilities: dict[str, float]) -> tuple[str, float]:
    return max(probabilities.items(), key=lambda item: item[1])


def switched(probabilities: dict[str, float], current: str) -> str:
    """The language of a passage heard after one in `current`: another only when the detector is
    confident of it and no longer hears `current` (CONFIDENT, LEAVE_MAX)."""
    heard, p = most_probable(probabilities)
    return heard if p >= CONFIDENT and probabilities.get(current, 0.0) < LEAVE_MAX else current


def detect_language(model, audio: np.ndarray, windows: list[Window]) -> tuple[str, float] | None:
    """The language of a chunk's speech: the first window whose language is confident, else the
    language most probable across the first DETECT_WINDOWS windows, weighted by their speech."""
    total: dict[str, float] = {}
    weight = 0
    for window in windows[:DETECT_WINDOWS]:
        probabilities = language_probabilities(model, window_audio(audio, window))
        language, p = most_probable(probabilities)
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
        p = language_probabilities(detector, window_audio(audio, window))
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


def keep_only(audio: np.ndarray, ranges: Window) -> np.ndarray:
    """`audio` with everything outside `ranges` silent: times stay the chunk's."""
    kept = np.zeros_like(audio)
    for a, b in ranges:
        kept[a:b] = audio[a:b]
    return kept


class _FollowLanguage:
    """The CTranslate2 model, as faster-whisper's `multilingual` mode asks it for each window's
    language: a window switches language only when the model is confident of the new one and no
    longer hears the old (`switched`); an unclear window keeps the language before it, instead of
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
            self.language = switched({token[2:-2]: p for token, p in results}, self.language)
            self.windows.append((self.language, results[0][1]))
            followed.append(sorted(results, key=lambda r: r[0][2:-2] != self.language))
        return followed


@contextmanager
def following(model, language: str) -> Iterator[_FollowLanguage]:
    """`model` (a WhisperModel) follows language switches the careful way while in this block."""
    follow = _FollowLanguage(model.model, language)
    model.model = follow
    try:
        yield follow
    finally:
        model.model = follow.inner


def named_language(probabilities: list[dict[str, float]]) -> Text | str:
    """The language heard in non-English speech, if the detector is sure enough to name it."""
    total: dict[str, float] = {}
    for p in probabilities:
        for code, q in p.items():
            if code != "en":
                total[code] = total.get(code, 0.0) + q / len(probabilities)
    code, p = most_probable(total) if total else ("", 0.0)
    return language_name(code) if p >= NAMED_MIN else NOT_ENGLISH
