"""A search box's text as an FTS5 query over the index's terms (`terms`).

The index holds, for each sentence, its words as `answer.retrieval.tokenize` makes them (folded:
lower case, no accents, one width; Chinese and Japanese as overlapping character pairs, and each
character on its own), so a query is cut the same way and the search works in every script the
single-recording retrieval does. "Quoted words" are a phrase (the words in that order); the other
words must all be there, or, when no sentence holds them all, any of them, ranked
by BM25 either way. Function words ("the", "de", 的) are left out unless quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..answer.retrieval import STOPWORDS, tokenize

TERMS_VERSION = 1  # bump when `terms` changes what it makes: the index's terms are then made again

_QUOTED = re.compile(r'"([^"]*)"')


def terms(text: str) -> str:
    """The words of a sentence as the full-text index holds them, separated by spaces."""
    return " ".join(tokenize(text, passage=True))


def _words(text: str) -> list[str]:
    """The query's content words: Chinese and Japanese as their character pairs (each a word,
    so that a question's wording need not be the sentence's), function words left out."""
    return [w for w in tokenize(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class Query:
    """The words and phrases of a search, each a tuple of terms that must stand in that order."""

    phrases: tuple[tuple[str, ...], ...]

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def fts5(self, every: bool) -> str:
        """As SQLite's FTS5 reads it: every phrase (AND), or any (OR)."""
        return (" AND " if every else " OR ").join('"' + " ".join(p) + '"' for p in self.phrases)

    def tsquery(self, every: bool) -> str:
        """As PostgreSQL's to_tsquery('simple', ...) reads it (<-> for words in a row)."""
        return (" & " if every else " | ").join("(" + " <-> ".join(p) + ")" for p in self.phrases)


def parse(text: str) -> Query:
    """The phrases of a search box's text (see the module docstring)."""
    phrases: list[tuple[str, ...]] = []
    for i, piece in enumerate(_QUOTED.split(text or "")):
        if i % 2:  # inside quotes: every word counts, in order
            if words := tokenize(piece):
                phrases.append(tuple(words))
        else:
            phrases += [(w,) for w in _words(piece)]
    return Query(tuple(dict.fromkeys(phrases)))
