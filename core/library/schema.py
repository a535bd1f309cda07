"""The library database's schema, as numbered migrations applied in order from the first release.

`PRAGMA user_version` says how many have been applied; opening a database runs the ones it has
not had, each in its own transaction, so an older file is brought up to date and a newer
program's file is refused rather than misread (`TooNew`). A migration is never edited once
released: a change is a new one at the end.

Tables: `recordings` (what a recording is: id = the transcript's cache key, duration, language,
speakers' names, the summary's first line), `members` (who holds it: owner, title as that owner
named it, when it was added), `sentences` (each segment: recording, start, end, speaker, text)
and `sentences_fts`, a contentless FTS5 index over each sentence's terms (`query.terms`), rowid
for rowid. `settings` keeps the version of the terms the index was made with. `vectors` holds a
sentence's meaning (384 float16), for the sentences embedded so far.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the first release
    """
    CREATE TABLE recordings (
        id TEXT PRIMARY KEY,
        duration REAL NOT NULL DEFAULT 0,
        language TEXT,
        speakers TEXT NOT NULL DEFAULT '[]',  -- JSON list of the names shown, in order of first appearance
        summary TEXT NOT NULL DEFAULT '',     -- the first line of its summary, once there is one
        indexed REAL NOT NULL                 -- when its sentences were last indexed (Unix time)
    );
    CREATE TABLE members (
        owner TEXT NOT NULL,
        recording TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        added REAL NOT NULL,
        PRIMARY KEY (owner, recording)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_recording ON members(recording);
    CREATE TABLE sentences (
        id INTEGER PRIMARY KEY,
        recording TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
        start REAL NOT NULL,
        end REAL NOT NULL,
        speaker TEXT,
        text TEXT NOT NULL
    );
    CREATE INDEX sentences_by_recording ON sentences(recording, start);
    CREATE VIRTUAL TABLE sentences_fts USING fts5(terms, content='', tokenize='unicode61 remove_diacritics 0');
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: sentences' meaning (`meaning.embed`), float16, made after the sentence is indexed
    """
    CREATE TABLE vectors (
        sentence INTEGER PRIMARY KEY REFERENCES sentences(id) ON DELETE CASCADE,
        v BLOB NOT NULL
    );
    """,
)


class TooNew(Exception):
    """The file was written by a newer version of the program, with migrations this one lacks."""


def migrate(con: sqlite3.Connection) -> int:
    """Apply the migrations `con`'s database has not had; the version it is at after."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise TooNew(f"library schema {version} is newer than this program's {len(MIGRATIONS)}")
    for number, sql in enumerate(MIGRATIONS[version:], version + 1):
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("PRAGMA user_version").fetchone()[0] < number:  # another process may have run it
                for statement in filter(str.strip, sql.split(";\n")):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {number}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
