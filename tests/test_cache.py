"""The on-disk cache on its own: the size cap, least-recently-used eviction, anonymous entries."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import cache as cache_mod
from core.cache import Cache, make_key
from core.config import Settings
from core.transcript import Meta, Segment, Transcript

ROOT = Path(__file__).parent.parent
CAP = 256 * 1024  # bytes: a few dozen realistic entries
WORDS = "the budget for our new library was approved on tuesday morning by the council".split()
HOUR = 3600.0


def segments(n: int, seed: int) -> list[Segment]:
    """Segments like Whisper's: a sentence of ~12 words every ~6 s."""
    rng = random.Random(seed)
    return [Segment(6.0 * i, 6.0 * i + 5.5, " ".join(rng.choices(WORDS, k=12)).capitalize() + ".")
            for i in range(n)]


def put_chunk(c: Cache, i: int) -> str:
    """A 3-minute chunk's entry: 30 segments, ~3 KB."""
    key = make_key("chunk", i)
    c.put_chunk(key, segments(30, i))
    return key


def put_transcript(c: Cache, i: int, minutes: int = 10, **kw) -> str:
    key = make_key("transcript", i)
    c.put_transcript(key, Transcript(segments(minutes * 10, i), minutes * 60.0, "en", "whisper-1", **kw))
    return key


def disk_bytes(root: Path) -> int:
    """What the cache takes on disk, counted independently of the cache's own counting."""
    return sum(max(p.stat().st_size, p.stat().st_blocks * 512) for p in root.rglob("*") if p.is_file())


def path_of(root: Path, kind: str, key: str) -> Path:
    return root / kind / f"{key}.json"


def age(root: Path, kind: str, keys: list[str], hours_ago: float) -> None:
    """Pretend the entries were last used long ago, oldest first, a second apart."""
    for n, key in enumerate(keys):
        t = time.time() - hours_ago * HOUR + n
        os.utime(path_of(root, kind, key), (t, t))


def test_over_the_cap_the_least_recently_used_entries_go_first(tmp_path):
    c = Cache(tmp_path, max_bytes=CAP)
    old = []
    while c.size() < 0.8 * CAP:
        old.append(put_chunk(c, len(old)))
    age(tmp_path, "chunks", old, hours_ago=2)
    # The two oldest entries are used again: reading them makes them the most recently used.
    assert c.get_chunk(old[0]) == segments(30, 0) and c.get_chunk(old[1]) is not None

    new = [put_transcript(c, i) for i in range(3)] + [put_chunk(c, 1000 + i) for i in range(10)]

    assert disk_bytes(tmp_path) == c.size() <= CAP
    kept = {k for k in old if path_of(tmp_path, "chunks", k).exists()}
    assert {old[0], old[1]} <= kept, "entries read lately are kept"
    unread = old[2:]
    gone = [k for k in unread if k not in kept]
    assert gone and gone == unread[:len(gone)], "the least recently used went, oldest first"
    assert all(c.get_transcript(k) for k in new[:3]) and all(c.get_chunk(k) for k in new[3:])


def test_filling_far_past_the_cap_stays_under_it(tmp_path):
    c = Cache(tmp_path, max_bytes=CAP)
    for i in range(150):  # ~4x the cap, chunks and transcripts mixed
        put_chunk(c, i) if i % 5 else put_transcript(c, i, minutes=5)
        assert disk_bytes(tmp_path) <= CAP, "one process knows what it wrote: never over"
    assert c.get_chunk(make_key("chunk", 149)) is not None, "the newest entries are there"


def test_entries_another_process_wrote_are_counted(tmp_path):
    ours = Cache(tmp_path, max_bytes=CAP)
    first = [put_chunk(ours, i) for i in range(5)]
    age(tmp_path, "chunks", first, hours_ago=3)
    # Another process (with no cap of its own) fills the folder past our cap behind our back.
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
              "from core.cache import Cache, make_key; from core.transcript import Segment;"
              "c = Cache(Path(sys.argv[1]), max_bytes=10**12);"
              "[c.put_chunk(make_key('theirs', i), [Segment(0.0, 5.0, 'word ' * 2000)]) for i in range(40)]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(ROOT)], check=True)
    theirs = [make_key("theirs", i) for i in range(40)]
    age(tmp_path, "chunks", theirs, hours_ago=1)
    assert disk_bytes(tmp_path) > 1.3 * CAP

    # Our estimate does not know of them; within RESCAN_FRACTION of the cap written, we count again.
    mine = []
    while sum(path_of(tmp_path, "chunks", k).stat().st_size for k in mine) < cache_mod.RESCAN_FRACTION * CAP:
        mine.append(put_chunk(ours, 500 + len(mine)))
    assert disk_bytes(tmp_path) <= CAP
    assert not any(path_of(tmp_path, "chunks", k).exists() for k in first), "our oldest went first"
    assert not path_of(tmp_path, "chunks", theirs[0]).exists(), "then theirs, oldest first"
    assert all(path_of(tmp_path, "chunks", k).exists() for k in mine)


def test_the_entry_being_written_is_never_evicted(tmp_path):
    c = Cache(tmp_path, max_bytes=64 * 1024)
    small = [put_chunk(c, i) for i in range(3)]
    big = put_transcript(c, 0, minutes=60)  # ~100 KB: over the cap on its own
    assert c.get_transcript(big) is not None
    assert not any(path_of(tmp_path, "chunks", k).exists() for k in small)


def test_writes_do_not_count_the_files_each_time(tmp_path, monkeypatch):
    counts = []
    files = Cache._files
    monkeypatch.setattr(Cache, "_files", lambda self: counts.append(1) or files(self))
    c = Cache(tmp_path, max_bytes=100 * 2**20)
    for i in range(300):
        put_chunk(c, i)
    assert len(counts) == 1, "counted once, on the first write; ~1 MB written is far from 5% of 100 MB"
    # Another Cache object on the same folder in this process shares the estimate.
    put_chunk(Cache(tmp_path, max_bytes=100 * 2**20), 1000)
    assert len(counts) == 1


def test_stale_temporary_files_count_and_are_removed(tmp_path):
    c = Cache(tmp_path, max_bytes=CAP)
    first = put_chunk(c, 0)
    stale, live = tmp_path / "chunks" / ".tmp-dead.json", tmp_path / "chunks" / ".tmp-live.json"
    stale.write_bytes(b"x" * CAP)  # a writer that died minutes ago left it
    live.write_bytes(b"x" * 20_000)  # a write in progress
    old = time.time() - cache_mod.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    before = disk_bytes(tmp_path)
    assert c.size() == before - CAP, "counting removes the stale one, counts the live one"
    assert not stale.exists() and live.exists()

    stale.write_bytes(b"x" * CAP)
    os.utime(stale, (old, old))
    for i in range(1, 4):  # the estimate does not know of it: the next count finds it
        put_chunk(c, i)
    with pytest.MonkeyPatch.context() as m:  # force the count a write would do once due
        m.setattr(cache_mod, "RESCAN_FRACTION", 0.0)
        put_chunk(c, 4)
    assert not stale.exists() and live.exists()
    assert c.get_chunk(first) is not None, "nothing real was evicted for it"


def test_damaged_entries_are_removed_when_read(tmp_path):
    c = Cache(tmp_path, max_bytes=CAP)
    key = put_chunk(c, 0)
    p = path_of(tmp_path, "chunks", key)
    p.write_text(p.read_text()[:40])
    assert c.get_chunk(key) is None
    assert not p.exists()
    c._write("chunks", key, {"not": "segments"})  # checksum right, shape wrong
    c._write("transcripts", key, [1, 2, 3])
    assert c.get_chunk(key) is None and c.get_transcript(key) is None
    assert not list(tmp_path.rglob("*.json"))


def test_default_cap_is_the_settings_default(tmp_path):
    assert Cache(tmp_path).max_bytes == int(Settings().cache_max_mb * 2**20)


# Nothing about who made an entry

def test_a_cached_transcript_holds_no_file_name_or_notes(tmp_path):
    c = Cache(tmp_path)
    notes = ["Board meeting (confidential).mp3 seems damaged or cut short: the transcript covers 09:58.",
             "Downloading the model…"]
    t = Transcript(segments(20, 1), 120.0, "en", "whisper-1", "Board meeting (confidential).mp3",
                   Meta(backend="openai", notes=notes))
    key = make_key("transcript", "x")
    c.put_transcript(key, t)

    on_disk = path_of(tmp_path, "transcripts", key).read_text(encoding="utf-8")
    assert "Board meeting" not in on_disk and "confidential" not in on_disk
    assert "Downloading" not in on_disk and "notes" not in on_disk
    assert json.loads(on_disk)["payload"]["meta"] == {"backend": "openai"}

    hit = c.get_transcript(key, source="interview.mp3")
    assert hit.source == "interview.mp3", "named after the request that finds it"
    assert hit.meta == Meta(backend="openai", notes=[])
    assert (hit.segments, hit.duration, hit.language, hit.model) == (t.segments, t.duration, "en", "whisper-1")
    assert c.get_transcript(key).source is None


def test_entries_from_before_lose_their_file_name_when_read(tmp_path):
    c = Cache(tmp_path)
    key = make_key("transcript", "old")
    old = Transcript(segments(5, 2), 30.0, "en", "whisper-1", "Private call.m4a", Meta(backend="openai", notes=["x"]))
    c._write("transcripts", key, old.to_dict())  # the format that stored the name
    assert "Private call" in path_of(tmp_path, "transcripts", key).read_text()

    assert c.get_transcript(key, source="mine.m4a").source == "mine.m4a"
    assert "Private call" not in path_of(tmp_path, "transcripts", key).read_text()
    assert c.get_transcript(key, source="again.m4a").segments == old.segments


@pytest.mark.parametrize("source", [None, "a.mp3"])
def test_round_trip(tmp_path, source):
    c = Cache(tmp_path)
    key = put_transcript(c, 7, minutes=1, source=source)
    hit = c.get_transcript(key, source=source)
    assert hit.source == source and hit.segments == segments(10, 7)


@pytest.mark.slow
def test_a_hit_carries_the_current_visitors_name_and_nothing_of_the_first(settings, server, long_talk, tmp_path):
    """Through the pipeline: a second visitor's copy of a cut-short file is named as theirs, and
    the cache keeps nothing that names the first visitor's file; the CACHE_MAX_MB cap applies."""
    import shutil

    from core.transcribe.pipeline import lookup, transcribe_file

    first = tmp_path / "Secret board call.mp3"
    first.write_bytes(long_talk[0].read_bytes()[: long_talk[0].stat().st_size // 2])  # cut short
    t1 = transcribe_file(first, settings)
    assert t1.source == first.name and "Secret board call.mp3 seems damaged" in t1.meta.notes[0]
    for p in settings.cache_dir.rglob("*.json"):
        assert "Secret" not in p.read_text(encoding="utf-8"), p
    mine = tmp_path / "mine.mp3"
    shutil.copy(first, mine)
    server.clear()
    t2 = transcribe_file(mine, settings)
    assert server.requests() == [], "a cache hit"
    assert t2.source == "mine.mp3" and t2.meta.notes == [t1.meta.notes[0].replace(first.name, "mine.mp3")]
    assert lookup(mine, settings).source == "mine.mp3"
    small = settings.replace(cache_max_mb=0.01)
    transcribe_file(mine, small.replace(language="en"))
    assert Cache(settings.cache_dir).size() <= 0.01 * 2**20 * 1.05
