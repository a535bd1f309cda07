"""Does searching by meaning earn its place beside the full-text index? Measured on reworded queries.

    python bench/library_meaning.py

The library: real meeting speech (the nine AMI excerpts of shared/speech/meetings as tiny.en
transcribes them, bench/data/ami_tiny_en.json) and six meetings written the way people talk
(MEETINGS below), 92 sentences in all, indexed in a real `Library`. Two sets of queries, each
with the one sentence it is looking for:
- REWORDED: the question in other words than the sentence's ("budget" for "we are over by twenty
  thousand"), the case meaning is for;
- LITERAL: some of the sentence's own words, the case the full-text index is for (meaning must
  not make it worse).
Three ways to search: the full-text index (`Library.search`, BM25), meaning alone (cosine
similarity of all-MiniLM-L6-v2 int8 vectors, `core.library.meaning`), and both merged by
reciprocal rank fusion as the library does it (`Library.search` with a
vector: RRF, k=60, each list's top 20). Reported: found first (hit@1), found in
the first five (hit@5), mean reciprocal rank, and the time a query takes (embedding included);
and what indexing by meaning costs: the time to embed a 30-minute recording's sentences.
Results go to stdout as Markdown; bench/RESULTS.md has the section "Search by meaning (issue 23)".
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import numpy as np  # noqa: E402

from core.library.meaning import embed  # noqa: E402
from core.library.store import Library, Sentence  # noqa: E402

MEETINGS = {
    "Budget review": [
        "Okay so let's start with the numbers for this quarter.",
        "We are over by twenty thousand on the hardware line.",
        "Most of that is the new laptops for the support team.",
        "Finance wants a plan by the end of the month.",
        "I think we can push the monitors to next quarter.",
        "Travel is actually under what we planned, which helps a bit.",
        "Can someone send me the invoices from the vendor?",
        "We should not hire the contractor until this is sorted out.",
    ],
    "Product launch sync": [
        "Marketing would like the release to happen in March instead.",
        "The engineers say February is still realistic if nothing else slips.",
        "Sara pushed hard for the later date because of the trade show.",
        "We agreed to go with March in the end.",
        "The press release needs legal sign off before Friday.",
        "Beta testers reported that the app crashes when you rotate the phone.",
        "That crash is fixed in the build from yesterday.",
        "Pricing stays the same as last year.",
    ],
    "Hiring committee": [
        "We interviewed four people for the designer role this week.",
        "The second candidate had the strongest portfolio by far.",
        "Her salary expectations are a bit above our range.",
        "Tom felt the third candidate would not fit the team.",
        "Let's make an offer to the second one on Monday.",
        "If she declines we reopen the position in January.",
        "Remember to tell the others we went another way, politely.",
    ],
    "Office move": [
        "The lease on this floor ends in June.",
        "The new building is closer to the train station.",
        "Parking there costs extra, about fifty a month.",
        "Movers can come on the last weekend of May.",
        "IT has to set up the network two days before we arrive.",
        "People asked whether the kitchen will have a dishwasher.",
        "Yes, and there is a room for bikes in the basement.",
    ],
    "Customer call": [
        "The client is unhappy that the reports arrive late every morning.",
        "Their data export runs at six and ours starts at five.",
        "We could move our job to seven to pick up their file.",
        "They also want the dashboard in Spanish for the Madrid office.",
        "Translation will take about three weeks.",
        "They threatened to cancel the contract if it happens again.",
        "I promised to call them back on Thursday with a fix.",
    ],
    "Team retro": [
        "What went well: the deploys were smooth this sprint.",
        "What did not go well: too many meetings on Wednesdays.",
        "Nobody reviewed the pull requests on time.",
        "We will try a rotation for code review starting next week.",
        "Ahmed is leaving at the end of the month, so we need a handover.",
        "Let's celebrate the release with lunch on Friday.",
    ],
}

# (query, the title of the recording, the start of the sentence it is looking for)
REWORDED = [
    ("budget overrun", "Budget review", "We are over by twenty thousand"),
    ("spending too much money on equipment", "Budget review", "We are over by twenty thousand"),
    ("computers for the helpdesk staff", "Budget review", "Most of that is the new laptops"),
    ("postpone buying screens", "Budget review", "I think we can push the monitors"),
    ("when will the product ship", "Product launch sync", "Marketing would like the release"),
    ("who wanted to delay", "Product launch sync", "Sara pushed hard"),
    ("final decision on timing", "Product launch sync", "We agreed to go with March"),
    ("mobile application bug when turning the device", "Product launch sync", "Beta testers reported"),
    ("cost of the product unchanged", "Product launch sync", "Pricing stays the same"),
    ("best applicant", "Hiring committee", "The second candidate had the strongest"),
    ("wants more pay than we can offer", "Hiring committee", "Her salary expectations"),
    ("rejecting candidates kindly", "Hiring committee", "Remember to tell the others"),
    ("rental agreement expires", "Office move", "The lease on this floor"),
    ("near public transport", "Office move", "The new building is closer"),
    ("car spaces are not free", "Office move", "Parking there costs extra"),
    ("bicycle storage", "Office move", "Yes, and there is a room for bikes"),
    ("customer complains about delays", "Customer call", "The client is unhappy"),
    ("localize the interface", "Customer call", "They also want the dashboard in Spanish"),
    ("they might end the agreement", "Customer call", "They threatened to cancel"),
    ("colleague quitting", "Team retro", "Ahmed is leaving"),
    ("code reviews were late", "Team retro", "Nobody reviewed the pull requests"),
    ("legal dispute", "trn06", "But they, well, they've only just started realizing"),
    ("people should save copies of their files", "trn09", "My view on this was that the need"),
    ("commercials during the programme", "trn08", "I think there should be a break for ads"),
]
LITERAL = [
    ("twenty thousand", "Budget review", "We are over by twenty thousand"),
    ("laptops support team", "Budget review", "Most of that is the new laptops"),
    ("trade show", "Product launch sync", "Sara pushed hard"),
    ("press release legal", "Product launch sync", "The press release needs legal"),
    ("designer portfolio", "Hiring committee", "The second candidate had the strongest"),
    ("offer on Monday", "Hiring committee", "Let's make an offer"),
    ("train station", "Office move", "The new building is closer"),
    ("dishwasher", "Office move", "People asked whether the kitchen"),
    ("dashboard Spanish", "Customer call", "They also want the dashboard in Spanish"),
    ("pull requests", "Team retro", "Nobody reviewed the pull requests"),
    ("Java objects", "trn03", "stupid Java thing"),
    ("transcriptions second pass", "trn05", "So this is the second pass"),
]
K = 20  # results compared


def corpus() -> dict[str, list[Sentence]]:
    ami = json.loads((Path(__file__).parent / "data" / "ami_tiny_en.json").read_text())["transcripts"]
    out = {name: [Sentence(s, e, t) for s, e, t in rows] for name, rows in ami.items()}
    for title, lines in MEETINGS.items():
        out[title] = [Sentence(i * 20.0, i * 20.0 + 15, text) for i, text in enumerate(lines)]
    return out


def rank(found: list[tuple[str, str]], title: str, start: str) -> int | None:
    for i, (t, text) in enumerate(found):
        if t == title and text.startswith(start):
            return i
    return None


def main() -> None:
    recordings = corpus()
    library = Library(Path(tempfile.mkdtemp(prefix="meaning-")) / "library.sqlite3")
    rows: list[tuple[str, str]] = []
    for n, (title, sentences) in enumerate(recordings.items()):
        rid = f"{n:064x}"
        library.index(rid, 1800, "en", [], sentences)
        library.hold("me", rid, title)
        rows += [(title, s.text) for s in sentences]
    vectors = embed([text for _, text in rows])
    pending = library.unembedded(10_000)
    library.put_vectors([i for i, _ in pending], embed([text for _, text in pending]))

    def fts(q: str) -> list[tuple[str, str]]:
        return [(h.title, h.text) for h in library.search("me", q, K)]

    def meaning(q: str) -> list[tuple[str, str]]:
        scores = vectors @ embed([q])[0]
        return [rows[i] for i in np.argsort(-scores)[:K]]

    def hybrid(q: str) -> list[tuple[str, str]]:
        """As the library searches once it has vectors (`Library.search` with `meaning`)."""
        return [(h.title, h.text) for h in library.search("me", q, K, meaning=embed([q])[0])]

    embed(["warm up"])
    print(f"{len(recordings)} recordings, {len(rows)} sentences; {len(REWORDED)} reworded and {len(LITERAL)} "
          "literal queries\n")
    print("| queries | search | hit@1 | hit@5 | MRR | ms a query (median) |")
    print("|---|---|---|---|---|---|")
    for name, queries in (("reworded", REWORDED), ("literal", LITERAL)):
        for how, fn in (("full text (BM25)", fts), ("meaning (MiniLM int8)", meaning), ("hybrid (RRF)", hybrid)):
            ranks, times = [], []
            for q, title, start in queries:
                t0 = time.perf_counter()
                found = fn(q)
                times.append((time.perf_counter() - t0) * 1000)
                ranks.append(rank(found, title, start))
            hit1 = sum(r == 0 for r in ranks)
            hit5 = sum(r is not None and r < 5 for r in ranks)
            mrr = sum(1 / (r + 1) for r in ranks if r is not None) / len(ranks)
            print(f"| {name} | {how} | {hit1}/{len(ranks)} | {hit5}/{len(ranks)} | {mrr:.2f} | "
                  f"{statistics.median(times):.1f} |")
    sentences = [r[1] for r in rows] * 3  # about a 30-minute recording's 400 sentences
    t0 = time.perf_counter()
    embed(sentences[:400])
    print(f"\nEmbedding a 30-minute recording's 400 sentences: {time.perf_counter() - t0:.1f} s; "
          f"vectors: {400 * 384 * 4 / 1024:.0f} KB as float32")


if __name__ == "__main__":
    main()
