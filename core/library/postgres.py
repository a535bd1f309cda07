"""The library in PostgreSQL (DATABASE_URL=postgresql://...), for app processes that share it.

The same `store.Library`, with what differs between the databases replaced: connections
(psycopg 3, one kept per thread, `?` placeholders turned into `%s`), the schema and its numbered
migrations (`schema_version`, run under an advisory lock so that two processes starting
together run each once), and the full-text index: each sentence's terms (`query.terms`, the
same words as in SQLite, Chinese and Japanese as character pairs) in a `tsvector` column with a
GIN index, matched with `to_tsquery('simple', ...)` (phrases with `<->`) and ranked by
`ts_rank`. A damaged PostgreSQL is the server's to repair: nothing is set aside here.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from . import query
from .store import Library

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE recordings (id TEXT PRIMARY KEY, duration DOUBLE PRECISION NOT NULL DEFAULT 0, language TEXT,
        speakers TEXT NOT NULL DEFAULT '[]', summary TEXT NOT NULL DEFAULT '', indexed DOUBLE PRECISION NOT NULL);
    CREATE TABLE members (owner TEXT NOT NULL, recording TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
        title TEXT NOT NULL, added DOUBLE PRECISION NOT NULL, PRIMARY KEY (owner, recording));
    CREATE INDEX members_by_recording ON members(recording);
    CREATE TABLE sentences (id BIGSERIAL PRIMARY KEY,
        recording TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE, start DOUBLE PRECISION NOT NULL,
        "end" DOUBLE PRECISION NOT NULL, speaker TEXT, text TEXT NOT NULL, terms TSVECTOR NOT NULL);
    CREATE INDEX sentences_by_recording ON sentences(recording, start);
    CREATE INDEX sentences_terms ON sentences USING GIN (terms);
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE vectors (sentence BIGINT PRIMARY KEY REFERENCES sentences(id) ON DELETE CASCADE, v BYTEA NOT NULL)
    """,
)
MIGRATION_LOCK = 2323  # the advisory lock id migrations run under


class _Connection:
    """A psycopg connection that takes SQLite's `?` placeholders."""

    def __init__(self, con):
        self.con = con

    def execute(self, sql: str, args=()):
        return self.con.execute(sql.replace("?", "%s"), tuple(args))

    def executemany(self, sql: str, rows) -> None:
        with self.con.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresLibrary(Library):
    def __init__(self, url: str):
        self.url = url  # a secret (it may hold a password): never logged
        self.path = None
        self.on_damage = None
        self._ready = False
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread keeps its connection: connecting costs milliseconds

    def __repr__(self) -> str:
        return "PostgresLibrary()"

    def _connect(self):
        import psycopg

        con = getattr(self._local, "con", None)
        if con is not None and not con.closed and not con.broken:
            return con
        con = self._local.con = psycopg.connect(self.url, autocommit=True, connect_timeout=15)
        try:
            if not self._ready:
                with self._lock:
                    self._migrate(con)
                    self._ready = True
        except BaseException:
            con.close()
            raise
        return con

    @staticmethod
    def _migrate(con) -> None:
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            if version > len(MIGRATIONS):
                from .schema import TooNew

                raise TooNew(f"library schema {version} is newer than this program's {len(MIGRATIONS)}")
            for number, sql in enumerate(MIGRATIONS[version:], version + 1):
                for statement in filter(str.strip, sql.split(";\n")):
                    con.execute(statement)
                con.execute("INSERT INTO schema_version VALUES (%s)", (number,))
            terms = con.execute("SELECT value FROM settings WHERE name = 'terms'").fetchone()
            if not terms or terms[0] != str(query.TERMS_VERSION):
                for sid, text in con.execute("SELECT id, text FROM sentences").fetchall():
                    con.execute("UPDATE sentences SET terms = to_tsvector('simple', %s) WHERE id = %s",
                                (query.terms(text), sid))
                con.execute("INSERT INTO settings VALUES ('terms', %s) ON CONFLICT (name) DO UPDATE "
                            "SET value = excluded.value", (str(query.TERMS_VERSION),))

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[_Connection]:
        con = self._connect()
        if write:
            with con.transaction():
                yield _Connection(con)
        else:
            yield _Connection(con)

    def _recover(self, why: Exception) -> None:
        raise why

    @staticmethod
    def _insert(con: _Connection, recording_id: str, rows: list[tuple]) -> None:
        con.executemany('INSERT INTO sentences (recording, start, "end", speaker, text, terms) '
                        "VALUES (?, ?, ?, ?, ?, to_tsvector('simple', ?))",
                        [(recording_id, start, end, speaker, text, query.terms(text))
                         for start, end, speaker, text in rows])

    @staticmethod
    def _unindex(con: _Connection, recording_id: str) -> None:
        con.execute("DELETE FROM sentences WHERE recording = ?", (recording_id,))

    @staticmethod
    def _matching(q: query.Query, every: bool) -> tuple[str, str, list]:
        tsquery = q.tsquery(every)
        return ("(SELECT id, -ts_rank(terms, to_tsquery('simple', ?)) AS rank FROM sentences "
                "WHERE terms @@ to_tsquery('simple', ?)) f JOIN sentences s ON s.id = f.id", "1 = 1",
                [tsquery, tsquery])

    def size(self) -> int:
        with self._db() as con:
            return int(con.execute("SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['recordings', "
                                   "'members', 'sentences', 'vectors', 'settings']) AS t").fetchone()[0])
