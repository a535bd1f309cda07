"""On-disk cache of transcripts and of finished chunks, kept under a size cap.

Entries are JSON files named by a key (sha256 of the audio plus every setting that changes the
result). Each entry carries a checksum of its payload; a file that fails to parse, has the wrong
shape or the wrong checksum is ignored and removed, never trusted. Writes go to a temporary file
in the same folder and are renamed into place, so a crash never leaves half an entry behind.
Chunk entries are what makes a failed job resumable: a rerun sends only what is missing.

Nothing about who made an entry is stored in it: a transcript is stored without the name of the
file it was made from or the notes of the run that made it, and handed back with the name of the
file of the request that finds it.

The cache stays under `max_bytes` (CACHE_MAX_MB): reading an entry marks it used (its mtime), and
a write that takes the cache over the cap removes the least recently used entries, of both kinds,
until it is under EVICT_TO of the cap. Transcripts a user's library keeps (`keep`: the local
library, a signed-in user's) move to `kept/`, outside the cap: a cache limit must not take a
recording out of someone's library. Writes do not list the folders each time: each process
keeps a running estimate of the size, and counts the files again (one `scandir` per folder) when
its estimate goes over the cap, and at the latest once it has written RESCAN_FRACTION of the cap
since it last counted. Several processes may share the folder; that last count is when one sees
what the others wrote.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from .config import Settings
from .transcript import Segment, Transcript

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the meaning of a cached entry changes
HASH_BLOCK = 1 << 20  # bytes read at a time when hashing a file

# The cache's folders under the size cap; nothing else under the root is touched.
KINDS = ("chunks", "transcripts", "media", "summaries", "aliases")
PLAYER = "player-"  # an `aliases` entry: this + a recording's cache key -> the name of its player's copy
KEPT = "kept"  # transcripts a user's library keeps: read like the others, never evicted
TMP_PREFIX = ".tmp-"  # a write in progress, renamed into place when complete
DEFAULT_MAX_BYTES = int(Settings.cache_max_mb * 2**20)  # the cap for callers that do not say
EVICT_TO = 0.9  # of the cap: evicting a little more than needed spares a scan on the next writes
# Bytes a process may write, as a fraction of the cap, before it counts the files again. Other
# processes' writes are only seen by counting, so together N processes overshoot the cap by at
# most N times this, and only until the next count.
RESCAN_FRACTION = 0.05
# A write takes milliseconds: a temporary file this old (seconds) was left by a writer that died
# before its rename, and is removed.
STALE_TMP_SECONDS = 300.0


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes. The app looks in the cache before a job waits for its slot and
    the job looks again: a 2 GB upload is read once, not twice (remembered while the file's
    identity, size and modification time stay the same)."""
    st = os.stat(path)
    return _digest(os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def make_key(*parts: object) -> str:
    """A stable key from the content hash and the settings that change the result."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _checksum(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _disk_bytes(st: os.stat_result) -> int:
    """What a file takes on disk: whole blocks where the system says (a 300-byte entry uses 4 KB)."""
    blocks = getattr(st, "st_blocks", None)  # not on Windows
    return max(st.st_size, blocks * 512) if blocks is not None else st.st_size


@dataclass
class _Ledger:
    """One process's running estimate of a cache folder's size, shared by its Cache objects."""

    counted: int | None = None  # bytes found at the last count (after evicting); None: never counted
    written: int = 0  # bytes this process wrote there since
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the figures
    counting: threading.Lock = field(default_factory=threading.Lock)  # one count at a time per process

    def count_due(self, cap: int) -> bool:
        """Never counted; or over the cap by our own writes since a count found it under; or
        enough written that other processes' writes may matter. A count that could not get under
        the cap (a huge entry, a read-only file) is not repeated on every write."""
        if self.counted is None:
            return True
        return self.counted <= cap < self.counted + self.written or self.written >= RESCAN_FRACTION * cap


_ledgers: dict[Path, _Ledger] = {}
_ledgers_lock = threading.Lock()


def _ledger(root: Path) -> _Ledger:
    with _ledgers_lock:
        return _ledgers.setdefault(root.absolute(), _Ledger())


@dataclass(frozen=True, slots=True)
class _File:
    used: float  # mtime: the last write, or the last read that found it
    path: str
    size: int  # bytes on disk
    writing: bool  # a temporary file of a write in progress


def _remove(path: str) -> bool:
    """Delete a cache file; False if it cannot be (it then still counts)."""
    try:
        os.unlink(path)
    except FileNotFoundError:  # another process removed it first
        pass
    except OSError as e:
        log.warning("could not remove cache file %s: %s", Path(path).name, e)
        return False
    return True


def _strip_run(data: dict) -> dict:
    """A transcript as stored: without the file name it was made from or the run's notes (nor
    a summary: that depends on the chat model, and has its own entries; nor speakers: they are
    found again from the cached voice prints, for whatever count is asked)."""
    meta = {k: v for k, v in dict(data.get("meta") or {}).items() if k not in ("notes", "summary", "speakers")}
    segments = [{k: v for k, v in s.items() if k != "speaker"} if isinstance(s, dict) else s
                for s in data.get("segments") or []]
    return {**{k: v for k, v in data.items() if k != "source"}, "segments": segments, "meta": meta}


class Cache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._ledger = _ledger(self.root)

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def _read(self, kind: str, key: str) -> object | None:
        path = self._path(kind, key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            payload = entry["payload"]
            if entry.get("version") != CACHE_VERSION or entry.get("sha256") != _checksum(payload):
                raise ValueError("checksum or version mismatch")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            self._discard(path, e)
            return None
        except OSError as e:
            log.warning("could not read cache entry %s (%s)", path.name, type(e).__name__)
            return None
        self._mark_used(path)
        return payload

    def _discard(self, path: Path, why: Exception) -> None:
        """Remove a damaged entry: it can never be trusted, and it takes room."""
        log.warning("removing unreadable cache entry %s (%s)", path.name, type(why).__name__)
        _remove(os.fspath(path))

    @staticmethod
    def _mark_used(path: Path) -> None:
        """A hit makes the entry the most recently used: its mtime is what eviction goes by."""
        try:
            os.utime(path)
        except OSError:
            pass  # a read-only cache still serves hits; it just cannot evict by use

    def _write(self, kind: str, key: str, payload: object) -> None:
        path = self._path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"version": CACHE_VERSION, "sha256": _checksum(payload), "payload": payload}
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(entry, f, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._added(path, _disk_bytes(path.stat()))
        except OSError as e:  # a full or read-only disk costs a cache entry, not the job
            log.warning("could not write cache entry %s: %s", path.name, e)

    # Size cap

    def _added(self, path: Path, size: int) -> None:
        """Count a write; count the files and evict when the estimate says so (see module doc)."""
        ledger = self._ledger
        with ledger.lock:
            ledger.written += size
            due = ledger.count_due(self.max_bytes)
        if due and ledger.counting.acquire(blocking=False):  # else another thread is counting
            try:
                total = self._evict(keep=path)
            finally:
                ledger.counting.release()
            with ledger.lock:
                ledger.counted, ledger.written = total, 0

    def _files(self) -> list[_File]:
        """Every entry and temporary file of both kinds; stale temporary files are removed."""
        files, now = [], time.time()
        for kind in KINDS:
            try:
                with os.scandir(self.root / kind) as it:
                    found = [e for e in it if e.name.endswith(".json") or e.name.startswith(TMP_PREFIX)
                             or (kind == "media" and e.is_file())]
            except FileNotFoundError:
                continue
            for e in found:
                try:
                    st = e.stat()
                except FileNotFoundError:  # evicted or renamed by another process meanwhile
                    continue
                writing = e.name.startswith(TMP_PREFIX)
                if writing and now - st.st_mtime > STALE_TMP_SECONDS and _remove(e.path):
                    continue
                files.append(_File(st.st_mtime, e.path, _disk_bytes(st), writing))
        return files

    def _evict(self, keep: Path) -> int:
        """Remove the least recently used entries until under EVICT_TO of the cap, if over it;
        never `keep` (the entry just written) nor a write in progress. Returns the bytes left."""
        files = self._files()
        total = sum(f.size for f in files)
        if total <= self.max_bytes:
            return total
        target, removed = EVICT_TO * self.max_bytes, 0
        for f in sorted(files, key=attrgetter("used", "path")):  # least recently used first
            if total <= target:
                break
            if f.writing or f.path == os.fspath(keep):
                continue
            if _remove(f.path):
                total -= f.size
                removed += 1
        log.info("cache over %d MB: removed the %d least recently used entries", self.max_bytes >> 20, removed)
        return total

    def size(self) -> int:
        """Bytes the cache takes on disk now (counts the files)."""
        return sum(f.size for f in self._files())

    # Media the browser plays (written by `core.playback`, under keyed names): counted under the
    # same cap and evicted by the same rule, least recently used first.

    @property
    def media_folder(self) -> Path:
        return self.root / "media"

    def media(self, name: str) -> Path | None:
        """A media file by name, if it is still there (marked as used); None for any name that is
        not a plain file name in the media folder."""
        if not name or name != Path(name).name or name.startswith("."):
            return None
        path = self.media_folder / name
        if not path.is_file():
            return None
        self._mark_used(path)
        return path

    def added_media(self, path: Path) -> None:
        """Count a file just written into `media_folder` towards the cap."""
        try:
            self._added(path, _disk_bytes(path.stat()))
        except OSError:
            pass

    # Whole transcripts

    def get_transcript(self, key: str, source: str | None = None) -> Transcript | None:
        """The cached transcript, as made from the file named `source` (the current request's):
        the name of whoever made the entry is not in it, and its notes are the current run's to add."""
        for kind in (KEPT, "transcripts", KEPT):  # the last: moved to `kept/` while this looked
            if (payload := self._read(kind, key)) is not None:
                break
        else:
            return None
        try:
            hit = Transcript.from_dict(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # the wrong shape
            self._discard(self._path(kind, key), e)
            return None
        if payload != _strip_run(payload):  # written before entries were kept anonymous
            self._write(kind, key, _strip_run(payload))
        hit.source, hit.meta.notes, hit.meta.summary = source, [], None
        return hit

    def put_transcript(self, key: str, transcript: Transcript) -> None:
        """Store the transcript without `source` (the uploader's file name) and without
        meta.notes (what happened in that run, naming the file). The rest of `meta` must be
        about the recording only."""
        self._write(self._transcript_kind(key), key, _strip_run(transcript.to_dict()))

    def remove_transcript(self, key: str) -> None:
        """Delete a cached transcript (taken out of the last library that held it)."""
        for kind in ("transcripts", KEPT):
            _remove(os.fspath(self._path(kind, key)))

    def _transcript_kind(self, key: str) -> str:
        return KEPT if self._path(KEPT, key).is_file() else "transcripts"

    def keep(self, key: str, kept: bool = True) -> None:
        """Take a cached transcript out of the cap (`kept`: a user's library holds it), or put
        it back under the cap (no such library holds it any more)."""
        src, dst = self._path("transcripts", key), self._path(KEPT, key)
        if not kept:
            src, dst = dst, src
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        except FileNotFoundError:
            return  # not cached, or already where it belongs
        except OSError as e:
            log.warning("could not move cache entry %s: %s", src.name, e)
            return
        if not kept:
            self._added(dst, _disk_bytes(dst.stat()))

    def transcript_ids(self) -> list[str]:
        """The ids of the cached transcripts, kept ones too, oldest first."""
        found = []
        for kind in ("transcripts", KEPT):
            for p in (self.root / kind).glob("*.json"):
                try:
                    found.append((p.stat().st_mtime, p.stem))
                except FileNotFoundError:  # evicted meanwhile
                    continue
        return [key for _, key in sorted(found) if len(key) == 64]

    def made(self, key: str) -> float | None:
        """When a cached transcript was last written or read (its file's mtime)."""
        try:
            return self._path(self._transcript_kind(key), key).stat().st_mtime
        except OSError:
            return None

    # Chunks: segments with times relative to the chunk

    def get_chunk(self, key: str) -> list[Segment] | None:
        payload = self._read("chunks", key)
        if payload is None:
            return None
        try:
            return [Segment(float(s[0]), float(s[1]), str(s[2])) for s in payload]
        except (IndexError, TypeError, ValueError) as e:  # the wrong shape
            self._discard(self._path("chunks", key), e)
            return None

    def put_chunk(self, key: str, segments: list[Segment]) -> None:
        self._write("chunks", key, [[s.start, s.end, s.text] for s in segments])

    # Voice prints (`speakers.listen.Heard`) and speakers' names, by transcript id

    def get_voices(self, key: str) -> bytes | None:
        payload = self._read("voices", key)
        try:
            return base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        except ValueError as e:
            self._discard(self._path("voices", key), e)
            return None

    def put_voices(self, key: str, data: bytes) -> None:
        self._write("voices", key, base64.b64encode(data).decode("ascii"))

    def get_names(self, key: str) -> dict[str, str]:
        payload = self._read("names", key)
        if not isinstance(payload, dict):
            return {}
        return {str(k): str(v) for k, v in payload.items()}

    def put_names(self, key: str, names: dict[str, str]) -> None:
        self._write("names", key, dict(names))

    # Summaries and chapters (`core.summary`): JSON, read back and checked by their owner

    def get_summary(self, key: str) -> dict | None:
        payload = self._read("summaries", key)
        return payload if isinstance(payload, dict) else None

    def put_summary(self, key: str, payload: dict) -> None:
        self._write("summaries", key, payload)

    # Public ids (`core.seal`): the way from the id a visitor or agent holds to the cache key

    def get_alias(self, public_id: str) -> str | None:
        """The cache key a public id was recorded for (marked used, like the entry it leads to);
        None for anything that is not a recorded id."""
        if not isinstance(public_id, str) or not re.fullmatch(r"[0-9a-f]{16,64}", public_id):
            return None
        payload = self._read("aliases", public_id)
        return payload if isinstance(payload, str) else None

    def get_player(self, key: str) -> str | None:
        """The name of the player's copy last made of a recording (it may have been evicted since)."""
        name = self._read("aliases", PLAYER + key)
        return name if isinstance(name, str) else None

    def put_player(self, key: str, name: str) -> None:
        self._write("aliases", PLAYER + key, name)

    def discard(self, kind: str, key: str) -> None:
        """Remove an entry, if there is one."""
        _remove(os.fspath(self._path(kind, key)))

    def put_alias(self, public_id: str, key: str) -> None:
        """Record the way back from `public_id` to `key` (written once, read many times)."""
        if self.get_alias(public_id) != key:
            self._write("aliases", public_id, key)
