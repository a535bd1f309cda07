"""The library in SQLite: one file in the cache folder, in WAL mode, shared by the app's processes.

Every read goes through an owner's memberships: a recording another owner holds is never
listed, searched or passed to a model for this one, whatever ids or words are asked for.
A damaged file (not a database, a malformed page) is set aside and a new one made; `on_damage`
(see `sync.open_library`) then fills it again from the cached transcripts, which the index
only ever copies: a damaged index never costs a transcript.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..transcript import format_timestamp
from . import query, schema

log = logging.getLogger(__name__)

FILE_NAME = "library.sqlite3"  # in the cache folder
BUSY_SECONDS = 15.0  # how long a writer waits for another process's write before giving up
MAX_OWNER_CHARS = 200
SEARCH_LIMIT = 20
RANKED_AT_MOST = 20_000  # matches ranked for a search, the newest first (see `Library._ranked`)
RRF_K, RRF_DEPTH = 60, 20  # reciprocal rank fusion of words and meaning: its constant, each list's length


@dataclass(frozen=True)
class Recording:
    """A recording as an owner's library lists it."""

    id: str
    title: str
    added: float  # Unix time it joined this owner's library
    duration: float
    language: str | None
    speakers: tuple[str, ...]
    summary: str  # the first line of its summary ("" until there is one)


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Hit:
    """A sentence found: where it was said, by whom, and how well it matched (higher is better)."""

    recording: str
    title: str
    start: float
    speaker: str | None
    text: str
    score: float

    def line(self) -> str:
        """recording · [mm:ss] · speaker · sentence"""
        return " · ".join(p for p in (self.title, f"[{format_timestamp(self.start)}]", self.speaker, self.text) if p)


def _damaged(e: sqlite3.DatabaseError) -> bool:
    """Whether the error says the file is damaged (not a locked database, nor a mistake of ours)."""
    words = str(e).lower()
    return "malformed" in words or "not a database" in words or "corrupt" in words


def _recovering(method):
    """Run a `Library` method; when the file turns out damaged, recover it and run it once more."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if not _damaged(e):
                raise
            self._recover(e)
        return method(self, *args, **kwargs)
    return run


def check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner or len(owner) > MAX_OWNER_CHARS:
        raise ValueError("an owner is a non-empty string")
    return owner


class Library:
    _NEWEST = "sentences_fts.rowid"  # the matches' order, newest first, as the full-text index walks them
    def __init__(self, path: Path, on_damage: Callable[["Library"], None] | None = None):
        self.path = Path(path)
        self.on_damage = on_damage
        self._ready = False
        self._lock = threading.Lock()  # one set-up or recovery at a time in this process

    # Connections: one per operation (cheap, and safe across threads and processes)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                with self._lock:
                    if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        con.execute("PRAGMA journal_mode = WAL")
                    schema.migrate(con)
                    self._check_terms(con)
                    self._ready = True
            con.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection, in a transaction when writing."""
        con = self._connect()
        try:
            if write:
                con.execute("BEGIN IMMEDIATE")
            yield con
            if write:
                con.execute("COMMIT")
        except BaseException:
            if write and con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _recover(self, why: Exception) -> None:
        """Set the damaged file aside (kept for a look, replacing an older one) and start anew."""
        with self._lock:
            log.warning("the library index is damaged (%s): rebuilding it from the cached transcripts", why)
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    os.replace(src, Path(f"{self.path}.damaged{suffix}"))
            self._ready = False
        if self.on_damage:
            self.on_damage(self)

    def _check_terms(self, con: sqlite3.Connection) -> None:
        """Make the index's terms again when they were made by another version of `query.terms`."""
        row = con.execute("SELECT value FROM settings WHERE name = 'terms'").fetchone()
        if row and row[0] == str(query.TERMS_VERSION):
            return
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('delete-all')")
        for rowid, text in con.execute("SELECT id, text FROM sentences").fetchall():
            con.execute("INSERT INTO sentences_fts(rowid, terms) VALUES (?, ?)", (rowid, query.terms(text)))
        con.execute("INSERT OR REPLACE INTO settings VALUES ('terms', ?)", (str(query.TERMS_VERSION),))
        con.execute("COMMIT")

    # What a recording says: one copy, whoever holds it

    @_recovering
    def index(self, recording_id: str, duration: float, language: str | None, speakers: Iterable[str],
              sentences: Iterable[Sentence]) -> None:
        """Put (or put again) a recording's sentences in the index, in one transaction."""
        rows = [(s.start, s.end, s.speaker, s.text) for s in sentences if s.text.strip()]
        with self._db(write=True) as con:
            con.execute("INSERT INTO recordings (id, duration, language, speakers, indexed) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET duration = excluded.duration, language = excluded.language, "
                        "speakers = excluded.speakers, indexed = excluded.indexed",
                        (recording_id, duration, language, json.dumps(list(speakers)), time.time()))
            self._unindex(con, recording_id)
            self._insert(con, recording_id, rows)

    # The full-text index: what differs between databases (see `postgres.PostgresLibrary`)

    @staticmethod
    def _insert(con, recording_id: str, rows: list[tuple]) -> None:
        for start, end, speaker, text in rows:
            rowid = con.execute('INSERT INTO sentences (recording, start, "end", speaker, text) '
                                "VALUES (?, ?, ?, ?, ?)", (recording_id, start, end, speaker, text)).lastrowid
            con.execute("INSERT INTO sentences_fts(rowid, terms) VALUES (?, ?)", (rowid, query.terms(text)))

    @staticmethod
    def _unindex(con, recording_id: str) -> None:
        old = con.execute("SELECT id, text FROM sentences WHERE recording = ?", (recording_id,)).fetchall()
        con.executemany("INSERT INTO sentences_fts(sentences_fts, rowid, terms) VALUES ('delete', ?, ?)",
                        [(rowid, query.terms(text)) for rowid, text in old])
        con.execute("DELETE FROM sentences WHERE recording = ?", (recording_id,))

    @staticmethod
    def _matching(q: query.Query, every: bool) -> tuple[str, str, str, list]:
        """The full-text part of a search: the FROM clause giving `s`, the sentences; the WHERE
        condition that matches; the rank (lower first); their arguments, rank's first."""
        return ("sentences_fts JOIN sentences s ON s.id = sentences_fts.rowid", "sentences_fts MATCH ?",
                "bm25(sentences_fts)", [q.fts5(every)])

    def _ranked(self, con, q: query.Query, every: bool, where: str, args: list, limit: int) -> list[tuple]:
        """(id, recording, title, start, speaker, text, rank) of the best `limit` matches in
        scope, ranked among the newest RANKED_AT_MOST matches: a word in a third of a large
        library's sentences is not ranked against all of them (bench/RESULTS.md)."""
        source, condition, rank, fts_args = self._matching(q, every)
        return con.execute(
            f"SELECT * FROM (SELECT s.id, s.recording, m.title, s.start, s.speaker, s.text, {rank} AS rank "
            f"FROM {source} JOIN members m ON m.recording = s.recording WHERE {condition} AND {where} "
            f"ORDER BY {self._NEWEST} DESC LIMIT ?) AS found ORDER BY rank, recording, start LIMIT ?",
            [*fts_args, *args, RANKED_AT_MOST, limit]).fetchall()

    @_recovering
    def summarized(self, recording_id: str, summary: str) -> None:
        """Keep the first line of a recording's summary, for the listing."""
        line = next((ln.strip(" -*•\t") for ln in (summary or "").splitlines() if ln.strip(" -*•\t")), "")
        with self._db(write=True) as con:
            con.execute("UPDATE recordings SET summary = ? WHERE id = ?", (line[:300], recording_id))

    @_recovering
    def indexed(self) -> set[str]:
        """The ids of every recording in the index, whoever holds it (for `sync`)."""
        with self._db() as con:
            return {r[0] for r in con.execute("SELECT id FROM recordings")}

    @_recovering
    def has(self, recording_id: str) -> bool:
        """Whether the index holds the recording (whoever holds it)."""
        with self._db() as con:
            return con.execute("SELECT 1 FROM recordings WHERE id = ?", (recording_id,)).fetchone() is not None

    @_recovering
    def forget(self, recording_id: str) -> None:
        """Take a recording out of the index and out of every library (its transcript is gone)."""
        with self._db(write=True) as con:
            self._unindex(con, recording_id)
            con.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))

    # Who holds what

    @_recovering
    def hold(self, owner: str, recording_id: str, title: str, added: float | None = None) -> bool:
        """Put an indexed recording in the owner's library (kept as it is if already there);
        False when the index does not have the recording."""
        with self._db(write=True) as con:
            if not con.execute("SELECT 1 FROM recordings WHERE id = ?", (recording_id,)).fetchone():
                return False
            con.execute("INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (check_owner(owner), recording_id, title.strip() or recording_id[:12], added or time.time()))
            return True

    @_recovering
    def holds(self, owner: str, recording_id: str) -> bool:
        with self._db() as con:
            return con.execute("SELECT 1 FROM members WHERE owner = ? AND recording = ?",
                               (check_owner(owner), recording_id)).fetchone() is not None

    @_recovering
    def holders(self, recording_id: str) -> list[str]:
        """The owners whose libraries hold the recording (for the cache: whether one keeps it)."""
        with self._db() as con:
            rows = con.execute("SELECT owner FROM members WHERE recording = ?", (recording_id,)).fetchall()
            return [r[0] for r in rows]

    @_recovering
    def retitle(self, owner: str, recording_id: str, title: str) -> bool:
        """Rename a recording in the owner's library; False if the owner does not hold it."""
        if not title.strip():
            raise ValueError("a title cannot be empty")
        with self._db(write=True) as con:
            return con.execute("UPDATE members SET title = ? WHERE owner = ? AND recording = ?",
                               (title.strip(), check_owner(owner), recording_id)).rowcount > 0

    @_recovering
    def drop(self, owner: str, recording_id: str) -> tuple[bool, bool]:
        """Take a recording out of the owner's library: (whether the owner held it, whether no
        one holds it now, in which case it is out of the index too)."""
        with self._db(write=True) as con:
            held = con.execute("DELETE FROM members WHERE owner = ? AND recording = ?",
                               (check_owner(owner), recording_id)).rowcount > 0
            orphan = held and not con.execute("SELECT 1 FROM members WHERE recording = ?",
                                              (recording_id,)).fetchone()
            if orphan:
                self._unindex(con, recording_id)
                con.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))
            return held, orphan

    # Reading, always as one owner

    @staticmethod
    def _scope(owner: str, ids: Iterable[str] | None, since: float | None, until: float | None
               ) -> tuple[str, list]:
        sql, args = "m.owner = ?", [check_owner(owner)]
        if ids is not None:
            ids = list(dict.fromkeys(ids))
            sql += f" AND m.recording IN ({','.join('?' * len(ids))})" if ids else " AND 1 = 0"
            args += ids
        if since is not None:
            sql, args = sql + " AND m.added >= ?", args + [since]
        if until is not None:
            sql, args = sql + " AND m.added < ?", args + [until]
        return sql, args

    @_recovering
    def recordings(self, owner: str, ids: Iterable[str] | None = None, since: float | None = None,
                   until: float | None = None) -> list[Recording]:
        """The owner's recordings, newest first."""
        where, args = self._scope(owner, ids, since, until)
        with self._db() as con:
            rows = con.execute("SELECT r.id, m.title, m.added, r.duration, r.language, r.speakers, r.summary "
                               f"FROM members m JOIN recordings r ON r.id = m.recording WHERE {where} "
                               "ORDER BY m.added DESC, m.title", args).fetchall()
        return [Recording(i, t, a, d, lang, tuple(json.loads(sp)), su) for i, t, a, d, lang, sp, su in rows]

    def _hybrid(self, q: query.Query, vector: np.ndarray, where: str, args: list, limit: int) -> list[Hit]:
        """Reciprocal rank fusion (RRF_K) of the full-text results (any of the words) and the
        sentences nearest in meaning, each list's best RRF_DEPTH; the score is the fused one."""
        fused: dict[int, float] = {}
        with self._db() as con:
            ranked = [[r[0] for r in self._ranked(con, q, False, where, args, RRF_DEPTH)] if q else [],
                      [i for i, _ in self._nearest(con, vector, where, args, RRF_DEPTH)]]
            for found in ranked:
                for rank, sid in enumerate(found):
                    fused[sid] = fused.get(sid, 0.0) + 1 / (RRF_K + rank + 1)
            best = sorted(fused, key=lambda sid: -fused[sid])[:limit]
            if not best:
                return []
            rows = {r[0]: r[1:] for r in con.execute(
                "SELECT s.id, s.recording, m.title, s.start, s.speaker, s.text FROM sentences s JOIN members m "
                f"ON m.recording = s.recording WHERE s.id IN ({','.join('?' * len(best))}) AND {where}",
                [*best, *args])}
        return [Hit(*rows[sid], fused[sid]) for sid in best if sid in rows]

    @_recovering
    def text_chars(self, owner: str, ids: Iterable[str] | None = None, since: float | None = None,
                   until: float | None = None) -> int:
        """Characters of all the sentences of the owner's recordings in scope (to see whether they fit)."""
        where, args = self._scope(owner, ids, since, until)
        with self._db() as con:
            return con.execute(f"SELECT coalesce(sum(length(s.text) + 1), 0) FROM members m JOIN sentences s "
                               f"ON s.recording = m.recording WHERE {where}", args).fetchone()[0]

    @_recovering
    def search(self, owner: str, text: str, limit: int = SEARCH_LIMIT, ids: Iterable[str] | None = None,
               since: float | None = None, until: float | None = None, any_words: bool = True,
               meaning: np.ndarray | None = None) -> list[Hit]:
        """The owner's sentences that match `text` (`query.parse`), best first (BM25): those
        with all its words, or else (`any_words`) those with any of them. With `meaning` (the
        text's vector, `meaning.embed`), merged with the sentences closest in meaning (`_hybrid`)."""
        q = query.parse(text)
        where, args = self._scope(owner, ids, since, until)
        if meaning is not None:
            return self._hybrid(q, meaning, where, args, limit)
        if not q:
            return []
        with self._db() as con:
            for every in (True, False) if any_words and len(q.phrases) > 1 else (True,):
                if rows := self._ranked(con, q, every, where, args, limit):
                    return [Hit(r, t, st, sp, tx, -score) for _, r, t, st, sp, tx, score in rows]
        return []

    # Meaning: vectors made apart (`sync.embed_pending`), used by `search` where there are some

    @_recovering
    def unembedded(self, limit: int) -> list[tuple[int, str]]:
        """Sentences (id, text) that have no vector yet, by recording."""
        with self._db() as con:
            return con.execute("SELECT s.id, s.text FROM sentences s LEFT JOIN vectors v ON v.sentence = s.id "
                               "WHERE v.sentence IS NULL ORDER BY s.recording, s.id LIMIT ?", (limit,)).fetchall()

    @_recovering
    def has_vectors(self) -> bool:
        with self._db() as con:
            return con.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None

    @_recovering
    def put_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        with self._db(write=True) as con:
            con.executemany("INSERT INTO vectors VALUES (?, ?) ON CONFLICT (sentence) DO UPDATE SET v = excluded.v",
                            [(i, v.astype(np.float16).tobytes()) for i, v in zip(ids, vectors)])

    def _nearest(self, con: sqlite3.Connection, vector: np.ndarray, where: str, args: list, k: int
                 ) -> list[tuple]:
        """The k sentences in scope closest in meaning to `vector` (a unit vector)."""
        rows = con.execute("SELECT s.id, v.v FROM vectors v JOIN sentences s ON s.id = v.sentence "
                           f"JOIN members m ON m.recording = s.recording WHERE {where}", args).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), -1)
        scores = matrix.astype(np.float32) @ vector.astype(np.float32)
        best = np.argsort(-scores)[:k]
        return [(rows[i][0], float(scores[i])) for i in best]

    @_recovering
    def sentences(self, owner: str, recording_id: str, start: float = 0.0, end: float = float("inf")
                  ) -> list[Sentence]:
        """The sentences of one of the owner's recordings that start in [start, end)."""
        with self._db() as con:
            rows = con.execute('SELECT s.start, s."end", s.text, s.speaker FROM sentences s JOIN members m '
                               "ON m.recording = s.recording AND m.owner = ? WHERE s.recording = ? "
                               "AND s.start >= ? AND s.start < ? ORDER BY s.start",
                               (check_owner(owner), recording_id, start, min(end, 1e12))).fetchall()
        return [Sentence(*row) for row in rows]

    def size(self) -> int:
        """Bytes the library's files take (the database and its write-ahead log)."""
        return sum(Path(f"{self.path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{self.path}{s}").exists())
