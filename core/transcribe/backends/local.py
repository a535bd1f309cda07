"""Local transcription with faster-whisper (CTranslate2 on the CPU, int8): no key, nothing uploaded.

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
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ...audio.chunking import Chunk
from ...config import Settings
from ...errors import AppError
from ...i18n import Note, Text
from ...service.client import Budget
from ...transcript import Segment, format_timestamp
from .languages import (CONFIDENT, DETECT_WINDOWS, ENGLISH_MIN, LEAVE_MAX, MIN_PIECE_SECONDS, SAMPLE_RATE,
                        SURE_ENGLISH, SURE_LANGUAGE, TAIL_SECONDS, UTTERANCE_PAD_SECONDS, Window, detect_language,
                        english_map, following, keep_only, language_map, language_name, language_probabilities,
                        most_probable, named_language, speech_windows, switched, utterances, window_audio)
from .local_model import LocalModelError, embedded_model, load, models_dir, resolve_model

log = logging.getLogger(__name__)

BEAM_SIZE = 1  # greedy decoding: about twice as fast as beam 5 on a CPU, close in accuracy
# Greedy only, no temperature fallback: re-decoding doubtful windows at temperatures up to 1.0, as
# Whisper does, made tiny.en 6x slower on espeak speech (5x -> 31x real time) and base 6.7x slower
# on a list read aloud (15 s -> 101 s for 2 min), and what came back at 1.0 was worse (average
# log-probability -3.5). What fails the quality gates below is left out instead, and said.
TEMPERATURE = 0.0

# Whisper's quality gates (openai/whisper transcribe.py defaults), applied to each segment.
# gzip ratio of a window's text: above it, the text repeats itself (a loop). Speech that really
# repeats itself for 30 s can pass it too: a list read aloud from one template scored 2.5-3.0.
COMPRESSION_RATIO_MAX = 2.4
LOGPROB_MIN = -1.0  # average log-probability of the tokens: below it, the decoder was guessing
NO_SPEECH_MIN = 0.6  # the model's own probability that the window holds no speech
MERGE_GAP_SECONDS = 3.0  # left-out speech this close together is told as one stretch

_run_lock = threading.Lock()  # one transcription at a time per process: each already uses every core


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


class LocalBackend:
    """faster-whisper on this machine, one chunk at a time, segments reported as they come."""

    name = "local"
    timestamps = True
    starts_at_voice = True  # faster-whisper runs voice detection itself
    max_in_flight = 1  # the model already uses every core
    on_budget: Callable[[Budget], None] | None = None  # no rate limit: never called

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

        with following(model, detected[0]) as follow:
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
        speech are listened to; when they are confidently another language (`switched`), the
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
        end = language_probabilities(model, window_audio(audio, window[tail:]))
        if switched(end, language) == language:
            return None
        pieces = language_map(model, keep_only(audio, head), lambda q: most_probable(q)[1] >= SURE_LANGUAGE)
        runs: list[tuple[str, Window]] = []
        for ranges, q in [*pieces, (window[tail:], end)]:
            heard = switched(q, runs[-1][0] if runs else language)
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
            segments, _ = self._transcribe(model, keep_only(audio, ranges), heard)
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
        language = named_language([p for _, p in foreign]) if foreign else None
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
