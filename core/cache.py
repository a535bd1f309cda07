"""On-disk cache of transcripts and of finished chunks.

Entries are JSON files named by a key (sha256 of the audio plus every setting that changes the
result). Each entry carries a checksum of its payload; a file that fails to parse, has the wrong
shape or the wrong checksum is ignored and replaced, never trusted. Writes go to a temporary file
in the same folder and are renamed into place, so a crash never leaves half an entry behind.
Chunk entries are what makes a failed job resumable: a rerun sends only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from .transcript import Segment, Transcript

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the meaning of a cached entry changes
HASH_BLOCK = 1 << 20  # bytes read at a time when hashing a file


def file_digest(path: Path) -> str:
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


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def _read(self, kind: str, key: str) -> object | None:
        path = self._path(kind, key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            payload = entry["payload"]
            if entry.get("version") != CACHE_VERSION or entry.get("sha256") != _checksum(payload):
                raise ValueError("checksum or version mismatch")
            return payload
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable cache entry %s (%s)", path.name, type(e).__name__)
            return None

    def _write(self, kind: str, key: str, payload: object) -> None:
        path = self._path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"version": CACHE_VERSION, "sha256": _checksum(payload), "payload": payload}
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(entry, f, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:  # a full or read-only disk costs a cache entry, not the job
            log.warning("could not write cache entry %s: %s", path.name, e)

    # Whole transcripts

    def get_transcript(self, key: str) -> Transcript | None:
        payload = self._read("transcripts", key)
        try:
            return Transcript.from_dict(payload) if isinstance(payload, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def put_transcript(self, key: str, transcript: Transcript) -> None:
        self._write("transcripts", key, transcript.to_dict())

    # Chunks: segments with times relative to the chunk

    def get_chunk(self, key: str) -> list[Segment] | None:
        payload = self._read("chunks", key)
        try:
            return [Segment(float(s[0]), float(s[1]), str(s[2])) for s in payload] if isinstance(payload, list) else None
        except (IndexError, TypeError, ValueError):
            return None

    def put_chunk(self, key: str, segments: list[Segment]) -> None:
        self._write("chunks", key, [[s.start, s.end, s.text] for s in segments])
