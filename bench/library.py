"""The library's index at scale: 1,000 synthetic 30-minute transcripts on SQLite.

    python bench/library.py                     # 1,000 recordings, about 2 minutes on 2 cores
    python bench/library.py --recordings 100    # a quick look
    python bench/library.py --postgres          # the same in PostgreSQL (a throwaway server, tests/pgserver.py)

Each transcript is 30 minutes of sentences of 6-22 words (a sentence every ~4.5 s, about 400 a
recording, 2.4 words a second: a speaking pace), drawn from a Zipf-distributed vocabulary of
20,000 words, so that common words are in most recordings and rare ones in a few, as in speech;
a speaker on each sentence. Measured:
- adding one recording's transcript to the index (`Library.index` + `hold`, one transaction),
  median and worst of 20, on the full index;
- the size of the database file;
- search latency (median and 95th percentile of 30 runs of each kind of query): a rare word, a
  common word, two words (all of them), a quoted phrase, words no sentence holds all of (any of
  them), for the owner of every recording and for an owner of 10 of them (a visitor's library in
  a shared index); side by side with the baseline: scanning every transcript's text in memory
  for the word (a regular expression over the sentences already loaded, no ranking), which is
  what finding a sentence across recordings costs without an index.
Results go to stdout as Markdown; bench/RESULTS.md has the section "Library index (issue 23)".
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from core.library.store import Library, Sentence  # noqa: E402

SECONDS = 30 * 60
VOCABULARY = 20_000


def vocabulary(rng: random.Random) -> list[str]:
    letters = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def transcript(rng: random.Random, words: list[str], weights: list[float]) -> list[Sentence]:
    out, t = [], 0.0
    while t < SECONDS:
        n = rng.randint(6, 22)
        length = n / 2.4
        text = " ".join(rng.choices(words, weights, k=n)).capitalize() + "."
        out.append(Sentence(t, t + length, text, f"Speaker {rng.randint(1, 4)}"))
        t += length + rng.uniform(0.2, 1.0)
    return out


def timed(fn, runs: int) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="in PostgreSQL instead of SQLite")
    args = parser.parse_args()
    server = None
    if args.postgres:
        from core.library.postgres import PostgresLibrary
        from tests import pgserver

        server = pgserver.Server(pgserver.programs()).start()
        library = PostgresLibrary(server.new_database())
    else:
        library = Library(Path(tempfile.mkdtemp(prefix="library-bench-")) / "library.sqlite3")
    try:
        run(library, args.recordings)
    finally:
        if server:
            server.stop()


def run(library: Library, recordings: int) -> None:
    rng = random.Random(23)
    words = vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(words))]  # Zipf: the i-th word is 1/i as frequent
    texts: list[list[str]] = []
    build = 0.0
    for n in range(recordings):
        sentences = transcript(rng, words, weights)
        texts.append([s.text for s in sentences])
        rid = f"{n:064x}"
        started = time.perf_counter()
        library.index(rid, SECONDS, "en", [f"Speaker {i}" for i in range(1, 5)], sentences)
        library.hold("everyone", rid, f"Meeting {n}", added=n)
        if n % 100 == 0:  # a visitor holds 10 of them
            library.hold("visitor", rid, f"Meeting {n}", added=n)
        build += time.perf_counter() - started
    count = sum(map(len, texts))

    adds = []
    for i in range(20):
        sentences = transcript(rng, words, weights)
        start = time.perf_counter()
        library.index(f"{10**6 + i:064x}", SECONDS, "en", ["Speaker 1"], sentences)
        library.hold("everyone", f"{10**6 + i:064x}", "New", added=10**6)
        adds.append((time.perf_counter() - start) * 1000)

    rare, common = words[15_000], words[3]
    # Two words that are often, but not always, in the same sentence; a phrase that was said
    pair = f"{words[40]} {words[41]}"
    said = texts[7][12].rstrip(".").lower().split()
    phrase = '"' + " ".join(said[2:5]) + '"'
    none_together = f"{words[19_000]} {words[19_001]} {words[19_002]}"
    queries = [("a rare word", rare), ("a common word", common), ("two words", pair), ("a phrase", phrase),
               ("three rare words, never together", none_together)]

    size = library.size()
    print(f"{type(library).__name__}: {recordings} recordings of 30 min, {count:,} sentences; indexed in {build:.0f} s "
          f"({build / recordings * 1000:.0f} ms a recording); database {size / 2**20:.0f} MB "
          f"({size / recordings / 1024:.0f} KB a recording)\n")
    print(f"Adding one 30-minute transcript ({len(sentences)} sentences): median {statistics.median(adds):.0f} ms, "
          f"worst {max(adds):.0f} ms\n")
    print("| query | results | every recording: median / p95 ms | a visitor's 10: median / p95 ms "
          "| baseline scan: median ms | speedup (median) |")
    print("|---|---|---|---|---|---|")
    for name, q in queries:
        hits = library.search("everyone", q)
        everyone = timed(lambda: library.search("everyone", q), 30)
        visitor = timed(lambda: library.search("visitor", q), 30)
        pattern = re.compile(r"\b" + re.escape(q.strip('"').split()[0]) + r"\b", re.IGNORECASE)
        scan = timed(lambda: [s for t in texts for s in t if pattern.search(s)], 3)
        print(f"| {name} | {len(hits)} | {everyone[0]:.1f} / {everyone[1]:.1f} | {visitor[0]:.1f} / {visitor[1]:.1f} "
              f"| {scan[0]:.0f} | {scan[0] / everyone[0]:.0f}x |")


if __name__ == "__main__":
    main()
