"""Chapters without a language model: the transcript cut every few minutes, on segment starts,
each stretch titled with the words that set it apart from the others. Nothing is sent."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from ..transcript import Transcript
from .retrieval import STOPWORDS, TOKEN, fold

KEYWORD_CHAPTER_SECONDS = 300.0  # a chapter about every five minutes, without a model
KEYWORDS_PER_TITLE = 4

# Spoken filler in English and Spanish, on top of `STOPWORDS` (written lower case, without
# accents, as `tokenize` folds them): they set no stretch apart.
FILLER = frozenset("""about after again all also always am any anything around back because been before being
both can come could day did didn doesn don done down even every going gonna got here just know let like little
lot lots maybe mean more most much need now off okay one only other out over people pretty put quite really
right said same say see should some something still sure take talk than thing things think time told too two
want way well were what yeah yes yet you'll actually basically course first good great kind last many next
sort very why isn wasn aren won wouldn couldn shouldn hasn haven hadn ll ve re
pues bueno entonces tambien porque todo toda todos todas nada algo cosa cosas vamos hay ahora aqui alli asi bien
creo digo hacer hace tiene tienen tengo esta estan estamos estaba eso esto ese esa muy mas ya ser sido era han
hemos vez veces otro otra otros otras mismo cada solo tan tanto poco mucho mucha muchos dos uno gracias claro""".split())


def keyword_chapters(transcript: Transcript, seconds: float = KEYWORD_CHAPTER_SECONDS,
                     per_title: int = KEYWORDS_PER_TITLE) -> tuple[tuple[float, str], ...]:
    """Chapters every `seconds` or so, each on a segment start (a last stretch under a third of
    that joins the one before), titled with the words that set their stretch apart from the
    others: term frequency times log((stretches + 1) / stretches with the word). (start, title) each."""
    stretches: list[list] = []
    for seg in (s for s in transcript.segments if s.text.strip()):
        if not stretches or seg.start >= stretches[-1][0].start + seconds:
            stretches.append([])
        stretches[-1].append(seg)
    if len(stretches) > 1 and stretches[-1][-1].end - stretches[-1][0].start < seconds / 3:
        last = stretches.pop()
        stretches[-1] += last
    counts, forms = [], Counter()
    for stretch in stretches:
        words = Counter()
        for seg in stretch:
            for key, surface in _keywords(seg.text):
                words[key] += 1
                forms[key, surface] += 1
        counts.append(words)
    df = Counter(key for words in counts for key in words)
    shown: dict[str, str] = {}  # each word as said most often
    for (key, surface), _ in forms.most_common():
        shown.setdefault(key, surface)
    chapters = []
    for stretch, words in zip(stretches, counts):
        order = {key: i for i, key in enumerate(words)}  # first said first, among equals
        best = sorted(words, key=lambda k: (-words[k] * math.log((len(stretches) + 1) / df[k]), order[k]))
        chapters.append((stretch[0].start, ", ".join(shown[k] for k in best[:per_title])))
    return tuple(chapters)


def _keywords(text: str) -> Iterator[tuple[str, str]]:
    """(folded word, word as said) for each word worth a title: not a function word or filler,
    not a number, three letters or more; Chinese and Japanese as character pairs. A name keeps
    its capital, if it is said anywhere but at the start of a sentence."""
    for match in TOKEN.finditer(text):
        word = match.group()
        if match.group(1):  # a run of CJK letters
            for pair in [word[i:i + 2] for i in range(len(word) - 1)] or [word]:
                key = fold(pair)
                if key not in STOPWORDS:
                    yield key, pair
            continue
        key = fold(word)
        if len(key) >= 3 and not key.isdigit() and key not in STOPWORDS and key not in FILLER:
            # A capital that starts a sentence says nothing about the word: it is written lower case.
            yield key, word.lower() if _SENTENCE_START.search(text[:match.start()]) else word


_SENTENCE_START = re.compile(r"(?:^|[.!?¡¿…]['\"”’)\]]*)\s*$")
