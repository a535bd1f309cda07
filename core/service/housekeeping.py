"""The app's private work folder, kept within bounds: one subfolder for each session's exports,
each fetched link, each tool's upload and each data URL decoded from a request.

A subfolder goes when its owner is done with it (a session ends, a job finishes), or, since
programs that call the API never say goodbye, once nobody has used it for the time to live;
and the whole folder stays under a size cap, the least recently used going first. A subfolder a
running job reads is held (`new(..., held=True)`, until `release`) and never removed while it is.

Each run of the app works in a folder of its own, `run-*`, locked for as long as the process
lives: a new run removes the folders of runs whose lock is free (the process ended, however it
ended), and never those of another app still running beside it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

LOCK = ".lock"
SWEEP_SECONDS = 30.0  # between two sweeps of the work folder


@dataclass
class _Folder:
    owner: str | None
    used: float  # time.monotonic() of its last use
    holds: int = 0


def folder_bytes(path: Path) -> int:
    """The size of the files under `path` (0 when it is gone)."""
    total = 0
    for f in path.rglob("*"):
        try:
            total += f.lstat().st_size
        except OSError:
            pass
    return total


def remove_leftovers(root: Path, old_after: float) -> int:
    """Remove what earlier runs left in `root`: the folders of runs that are over (their lock is
    free), and subfolders of the earlier layout, with no run around them, once unchanged for
    `old_after` seconds (an earlier version may still be running beside this one). Returns how
    many went."""
    removed = 0
    for path in root.iterdir() if root.is_dir() else ():
        if path.is_dir() and path.name.startswith("run-"):
            lock = FileLock(path / LOCK)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # another app is running and working in it
            try:
                shutil.rmtree(path, ignore_errors=True)
            finally:
                lock.release()
            (path / LOCK).unlink(missing_ok=True)
        elif (path.is_dir() and path.name.split("-")[0] in ("session", "tool", "fetch")
              and time.time() - path.stat().st_mtime > old_after):
            shutil.rmtree(path, ignore_errors=True)
        else:
            continue
        removed += 1
    return removed


class WorkFolders:
    """The subfolders of this run, with their owner (a session, or none), their last use and
    whether a job is reading them. Thread-safe: the page, the API, the jobs and the sweeper
    share it."""

    def __init__(self, root: Path, ttl_seconds: float, max_bytes: int, clock=time.monotonic):
        self.root, self.ttl, self.max_bytes, self.clock = Path(root), ttl_seconds, max_bytes, clock
        self._folders: dict[Path, _Folder] = {}
        self._lock = threading.Lock()
        self._run: Path | None = None
        self._run_lock: FileLock | None = None
        self._sweeper: threading.Thread | None = None

    @property
    def run(self) -> Path:
        """This run's folder, made (and the leftovers of earlier runs removed) on first use."""
        with self._lock:
            if self._run is None or not self._run.is_dir():
                self._start()
            return self._run

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if (n := remove_leftovers(self.root, self.ttl)):
            log.info("removed %d folder(s) left by an earlier run", n)
        run = Path(tempfile.mkdtemp(prefix="run-", dir=self.root))
        self._run_lock = FileLock(run / LOCK)
        self._run_lock.acquire(timeout=0)
        self._run = run

    def new(self, prefix: str, owner: str | None = None, *, held: bool = False) -> Path:
        """A new private subfolder; `owner` is the session it belongs to, if any. A `held` one is
        not swept until `release`d (or removed)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.run))
        with self._lock:
            self._folders[folder] = _Folder(owner, self.clock(), int(held))
        return folder

    def used(self, folder: Path | None) -> None:
        """Someone used the folder (made again if it went meanwhile): its time to live starts again."""
        if folder is None or Path(folder).parent != self._run:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._folders.setdefault(Path(folder), _Folder(None, 0.0)).used = self.clock()

    def release(self, folder: Path | None) -> None:
        """A job stopped reading the folder: it may be swept again, its time to live from now."""
        with self._lock:
            if folder is not None and (entry := self._folders.get(Path(folder))) is not None:
                entry.holds = max(0, entry.holds - 1)
                entry.used = self.clock()

    def remove(self, folder: Path | str | None) -> None:
        """The owner is done with the folder."""
        if not folder:
            return
        with self._lock:
            self._folders.pop(Path(folder), None)
        shutil.rmtree(folder, ignore_errors=True)

    def end(self, owner: str | None) -> None:
        """A session ended: every folder it owned goes (unless a job still reads it)."""
        if not owner:
            return
        with self._lock:
            mine = [f for f, e in self._folders.items() if e.owner == owner and not e.holds]
        for folder in mine:
            self.remove(folder)

    def sweep(self) -> list[Path]:
        """Remove the folders unused for the time to live, then the least recently used until
        the rest fit under the cap; held ones stay. Returns what was removed."""
        now = self.clock()
        with self._lock:
            self._adopt_strays(now)
            free = sorted(((e.used, f) for f, e in self._folders.items() if not e.holds))
            held = [f for f, e in self._folders.items() if e.holds]
        gone = [f for used, f in free if now - used > self.ttl]
        kept = [(f, folder_bytes(f)) for _, f in free if f not in gone]
        total = sum(size for _, size in kept) + sum(folder_bytes(f) for f in held)
        for folder, size in kept:  # oldest first
            if total <= self.max_bytes:
                break
            gone.append(folder)
            total -= size
        for folder in gone:
            self.remove(folder)
        if gone:
            log.info("work folder: removed %d folder(s), %.1f MB left", len(gone), total / 2**20)
        return gone

    def _adopt_strays(self, now: float) -> None:
        """Folders in the run that nobody registered (made by hand, or whose owner forgot
        them) are counted from now on; registered ones that are gone are forgotten."""
        if self._run is None:
            return
        for path in self._run.iterdir():
            if path.is_dir() and path not in self._folders:
                self._folders[path] = _Folder(None, now)
        for path in [f for f, e in self._folders.items() if not e.holds and not f.exists()]:
            del self._folders[path]

    def start(self) -> None:
        """For a server: the leftovers of earlier runs go now, and a daemon thread sweeps for as
        long as the process lives (every SWEEP_SECONDS, or a quarter of a shorter time to live)."""
        if self._sweeper is not None:
            return
        every = min(SWEEP_SECONDS, max(1.0, self.ttl / 4))
        _ = self.run

        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.sweep()
                except Exception:
                    log.warning("the work folder could not be swept", exc_info=True)

        self._sweeper = threading.Thread(target=loop, name="housekeeping", daemon=True)
        self._sweeper.start()
