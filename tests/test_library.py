"""The library: owners kept apart, search (ranking, phrases, Chinese and Japanese), asking across
recordings through the test server, removal, rebuilding from the cache and a damaged index.

Transcripts are written into a real cache folder and indexed in a real SQLite file; questions go
through the real `openai` client to tests/fakeopenai.py, whose stand-in model answers from the
lines it is sent and cites them as written."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import pytest

from core import cli
from core.cache import Cache
from core.config import Settings
from core.library import LOCAL, ask, schema, sync
from core.library.store import FILE_NAME, Library
from core.transcript import Meta, Segment, Transcript
from tests import pgserver

WEEKLY = ["Welcome everyone to the weekly sync.", "Marketing wants to move the launch to March.",
          "Engineering thinks the launch can stay in February.", "We decided to move the launch to March.",
          "The budget is over by twenty thousand dollars."]
INTERVIEW = ["Thanks for joining this interview.", "I grew up on a farm near the river.",
             "The launch of my first company failed.", "My grandmother taught me to bake bread."]
PODCAST = ["This episode is about coffee.", "Espresso needs a fine grind.", "Launch day for our new roast is Friday."]


def key(n: int) -> str:
    """A transcript id, as the cache makes them."""
    return hashlib.sha256(str(n).encode()).hexdigest()


def make(settings: Settings, n: int, lines: list[str], title: str, owner: str | None = LOCAL,
         language: str = "en", speaker: str | None = None, step: float = 30.0) -> Transcript:
    """A transcript cached under id `key(n)`, a sentence every `step` seconds, indexed and held by `owner`."""
    segments = [Segment(i * step, i * step + step - 1, text, "S1" if speaker else None) for i, text in enumerate(lines)]
    t = Transcript(segments, len(lines) * step, language, meta=Meta(id=key(n), speakers={"S1": speaker} if speaker else {}))
    Cache(settings.cache_dir).put_transcript(key(n), t)
    sync.saved(settings, t, owner, title)
    return t


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of the tests' own, on 127.0.0.1 (tests/pgserver.py)."""
    bin_dir = pgserver.programs()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed here (Debian's postgresql package; .ci/run installs it)")
    pytest.importorskip("psycopg", reason="psycopg (requirements.txt) is not installed")
    server = pgserver.Server(bin_dir).start()
    yield server
    server.stop()


# PostgreSQL's runs are in the full suite only: starting its server takes seconds
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db(request) -> str | None:
    """Where the library is: None for SQLite in the cache folder, or a new PostgreSQL database's URL."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres").new_database()


@pytest.fixture
def local(tmp_path, db) -> Settings:
    """No language model: only the index is tested."""
    return Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off", database_url=db)


@pytest.fixture
def on_sqlite(tmp_path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off")


def lines(hits) -> list[str]:
    return [h.line() for h in hits]


def test_schema_is_migrated_and_a_newer_file_is_refused(on_sqlite):
    lib = sync.open_library(on_sqlite)
    lib.recordings(LOCAL)
    con = sqlite3.connect(lib.path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 1}")
    con.close()
    with pytest.raises(schema.TooNew):
        Library(lib.path).recordings(LOCAL)


def test_nothing_of_one_owner_reaches_another(local, settings, server, db):
    settings = settings.replace(database_url=db)
    make(local, 1, WEEKLY, "Weekly sync", owner="alice")
    make(local, 2, INTERVIEW, "Interview", owner="bob")
    make(local, 3, PODCAST, "Coffee podcast", owner="alice")
    lib = sync.open_library(local)
    lib.hold("bob", key(3), "Bob's coffee")  # one recording both hold, under their own titles

    assert [r.title for r in lib.recordings("alice")] == ["Coffee podcast", "Weekly sync"]
    assert [r.title for r in lib.recordings("bob")] == ["Bob's coffee", "Interview"]
    assert lib.recordings("carol") == [] and lib.search("carol", "launch") == []
    assert {h.recording for h in lib.search("alice", "launch")} == {key(1), key(3)}
    assert {h.title for h in lib.search("bob", "launch")} == {"Interview", "Bob's coffee"}
    # Naming another owner's recording reaches nothing of it
    assert lib.search("alice", "grandmother", ids=[key(2)]) == []
    assert lib.recordings("alice", ids=[key(2)]) == [] and lib.sentences("alice", key(2)) == []
    assert not lib.retitle("alice", key(2), "mine now") and lib.drop("alice", key(2)) == (False, False)
    # Nor does asking: the model is sent only the asker's passages
    answer = ask.ask(lib, "alice", "Who taught the grandmother to bake bread?", settings)
    text = "".join(answer.stream)
    sent = str(server.requests("chat")[-1].info["messages"][:-1])  # all but the question
    assert "grandmother" not in sent and "farm" not in sent and "Interview" not in sent and "Weekly sync" in sent
    assert "don't know" in text and set(answer.sources.values()) <= {key(1), key(3)}


def test_search_ranks_the_best_sentence_first_and_falls_back_to_any_word(local):
    make(local, 1, WEEKLY, "Weekly sync")
    make(local, 2, PODCAST, "Coffee podcast")
    lib = sync.open_library(local)
    hits = lib.search(LOCAL, "move launch march")
    assert lines(hits)[:2] == ["Weekly sync · [00:30] · Marketing wants to move the launch to March.",
                               "Weekly sync · [01:30] · We decided to move the launch to March."]
    assert len(hits) == 2  # every word is in these two only
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    # No sentence has all the words: any of them; BM25 (SQLite) puts the rarer word first, while
    # PostgreSQL's ts_rank knows no word's rarity
    hits = lib.search(LOCAL, "espresso launch")
    assert "Espresso needs a fine grind." in [h.text for h in hits] and len(hits) == 5
    if not local.database_url:
        assert hits[0].text == "Espresso needs a fine grind."
    assert lib.search(LOCAL, "the of and") == [] and lib.search(LOCAL, "zebra") == []


def test_a_quoted_phrase_matches_those_words_in_that_order(local):
    make(local, 1, WEEKLY + ["March is when the launch will move."], "Weekly sync")
    lib = sync.open_library(local)
    assert len(lib.search(LOCAL, "launch move march")) == 3
    assert [h.start for h in lib.search(LOCAL, '"move the launch to march"')] == [30.0, 90.0]
    assert [h.text for h in lib.search(LOCAL, '"launch will move"')] == ["March is when the launch will move."]
    assert lib.search(LOCAL, '"march the launch"') == []


def test_chinese_and_japanese_are_found_without_spaces(local):
    make(local, 1, ["我们今天讨论产品发布的时间。", "预算超支了两万块钱。", "北京大学的老师也来了。"], "周会", language="zh")
    make(local, 2, ["来週の会議で予算を決めます。", "東京の天気は晴れです。"], "定例会議", language="ja")
    lib = sync.open_library(local)
    assert lines(lib.search(LOCAL, "预算是多少？")) == ["周会 · [00:30] · 预算超支了两万块钱。"]
    assert [h.title for h in lib.search(LOCAL, "予算")] == ["定例会議"]  # 予算, not the Chinese 预算
    assert lib.search(LOCAL, "北京大学")[0].start == 60.0
    assert lib.search(LOCAL, "東京の天気")[0].text == "東京の天気は晴れです。"
    assert lib.search(LOCAL, "ＴＯＫＹＯ") == [] and lib.search(LOCAL, "钱")[0].start == 30.0  # one character


def test_speakers_and_summary_are_listed_and_a_rename_reaches_the_index(local, monkeypatch):
    if local.database_url:  # a rename knows the cache and the environment, as the app's does
        monkeypatch.setenv("DATABASE_URL", local.database_url)
    t = make(local, 1, WEEKLY, "Weekly sync", speaker="Speaker 1")
    lib = sync.open_library(local)
    assert lib.search(LOCAL, "budget")[0].line() == ("Weekly sync · [02:00] · Speaker 1 · The budget is over by "
                                                    "twenty thousand dollars.")
    t.meta.speakers = {"S1": "Ana"}
    sync.renamed(Cache(local.cache_dir), "auto", t)
    assert lib.search(LOCAL, "budget")[0].speaker == "Ana" and lib.recordings(LOCAL)[0].speakers == ("Ana",)
    sync.summarized(local, key(1), "- The launch moves to March [01:30]\n- The budget is over")
    assert lib.recordings(LOCAL)[0].summary == "The launch moves to March [01:30]"


def test_ask_across_sends_passages_of_several_recordings_and_cites_them(settings, server, db):
    settings = settings.replace(database_url=db)
    make(settings, 1, WEEKLY, "Weekly sync 2026-11-20")
    make(settings, 2, INTERVIEW, "Interview with Ana")
    make(settings, 3, PODCAST, "Coffee podcast")
    lib = sync.open_library(settings)
    answer = ask.ask(lib, LOCAL, "When did the first company launch fail?", settings)
    text = "".join(answer.stream)
    data = server.requests("chat")[-1].info["messages"][1]["content"]
    for title, moment, said in [("Weekly sync 2026-11-20", "01:30", "We decided to move the launch"),
                                ("Interview with Ana", "01:00", "The launch of my first company failed"),
                                ("Coffee podcast", "01:00", "Launch day for our new roast")]:
        assert f"Recording: {title}" in data and f"[{title} · {moment}] {said}" in data
    assert text == "According to the recording, The launch of my first company failed [Interview with Ana · 01:00]."
    assert ask.links(text, answer.sources) == [ask.Link("[Interview with Ana · 01:00]", key(2), 60.0)]
    assert ask.links("[Not a title · 01:00] [Interview with Ana · 99]", answer.sources) == []

    unknown = "".join(ask.ask(lib, LOCAL, "What is the capital of Peru?", settings).stream)
    assert "don't know" in unknown and not ask.links(unknown, answer.sources)


def test_ask_across_a_large_library_sends_the_best_passages(settings, server, db):
    settings = settings.replace(context_tokens=500, database_url=db)
    filler = [f"Item {i} of the agenda was read aloud without comment." for i in range(60)]
    make(settings, 1, filler[:30] + ["The vendor contract was signed by Maria."] + filler[30:], "Board meeting")
    make(settings, 2, filler, "Another meeting")
    lib = sync.open_library(settings)
    answer = ask.ask(lib, LOCAL, "Who signed the vendor contract?", settings)
    text = "".join(answer.stream)
    assert ask.links(text, answer.sources) == [ask.Link("[Board meeting · 15:00]", key(1), 900.0)]
    sent = server.requests("chat")[-1].info["messages"][1]["content"]
    assert "vendor contract" in sent and sent.count("\n[") < 10 and "Item 59" not in sent
    assert "best match" in answer.notices[0].localized("en")


def test_a_question_about_every_recording_is_read_in_parts(settings, server, db):
    settings = settings.replace(context_tokens=500, database_url=db)
    filler = [f"Item {i} of the agenda was read aloud without comment." for i in range(40)]
    make(settings, 1, filler[:20] + ["The decision was to hire two engineers."] + filler[20:], "Monday meeting")
    make(settings, 2, filler[:5] + ["The decision was to cancel the offsite."] + filler[5:], "Friday meeting")
    lib = sync.open_library(settings)
    answer = ask.ask(lib, LOCAL, "List every decision in all the meetings.", settings)
    text = "".join(answer.stream)
    assert "[Monday meeting · 10:00]" in text and "[Friday meeting · 02:30]" in text
    assert len(server.requests("chat")) > 3 and "read in" in answer.notices[0].localized("en")
    assert {link.recording for link in ask.links(text, answer.sources)} == {key(1), key(2)}


def test_ask_across_without_a_model_gives_the_matching_sentences(local):
    make(local, 1, WEEKLY, "Weekly sync")
    text = "".join(ask.ask(sync.open_library(local), LOCAL, "What is the budget?", local).stream)
    assert "not a generated answer" in text and "Weekly sync · [02:00] · The budget is over" in text


def test_remove_keeps_what_another_owner_holds(local):
    make(local, 1, WEEKLY, "Weekly sync", owner="alice")
    lib = sync.open_library(local)
    lib.hold("bob", key(1), "Sync")
    assert sync.remove(local, "alice", key(1))
    assert lib.recordings("alice") == [] and lib.search("bob", "budget")
    assert Cache(local.cache_dir).get_transcript(key(1)) is not None
    assert sync.remove(local, "bob", key(1)) and not sync.remove(local, "bob", key(1))
    assert Cache(local.cache_dir).get_transcript(key(1)) is None and not lib.has(key(1))


def test_rebuild_from_the_cache_keeps_owners_and_adopts_the_rest(local):
    make(local, 1, WEEKLY, "Weekly sync", owner="alice")
    make(local, 2, INTERVIEW, "Interview", owner=None)  # indexed, but no one holds it
    make(local, 3, PODCAST, "Coffee podcast")
    Cache(local.cache_dir).remove_transcript(key(3))  # gone from the cache (evicted)
    done = sync.rebuild(local)
    assert (done.indexed, done.adopted, done.dropped) == (2, 1, 1)
    lib = sync.open_library(local)
    assert [r.title for r in lib.recordings("alice")] == ["Weekly sync"]
    assert [r.id for r in lib.recordings(LOCAL)] == [key(2)]
    assert re.fullmatch(r"Recording of \d{4}-\d\d-\d\d \d\d:\d\d", lib.recordings(LOCAL)[0].title)
    if not local.database_url:  # an index lost whole: every cached transcript comes back, in the local library
        (local.cache_dir / FILE_NAME).unlink()
        sync.rebuild(local)
        assert {r.id for r in lib.recordings(LOCAL)} == {key(1), key(2)} and lib.search(LOCAL, "grandmother")


@pytest.mark.parametrize("damage", ["garbage", "pages"])
def test_a_damaged_index_is_rebuilt_and_loses_no_transcript(on_sqlite, damage):
    local = on_sqlite
    for n, (lines_, title) in enumerate([(WEEKLY, "Weekly sync"), (INTERVIEW, "Interview"), (PODCAST, "Podcast")]):
        make(local, n, lines_ * 40, title)
    path = local.cache_dir / FILE_NAME
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"this is not a database" * 100)
    else:  # pages in the middle overwritten, the header intact
        data[8192:len(data) - 4096] = b"\xff" * (len(data) - 4096 - 8192)
    path.write_bytes(bytes(data))
    lib = sync.open_library(local)
    hits = lib.search(LOCAL, "grandmother")
    assert len(hits) == 20 and {r.id for r in lib.recordings(LOCAL)} == {key(0), key(1), key(2)}
    assert (local.cache_dir / f"{FILE_NAME}.damaged").exists()
    assert all(Cache(local.cache_dir).get_transcript(key(n)) for n in range(3))


def test_cli_library_commands(local, monkeypatch, capsys):
    monkeypatch.setenv("CACHE_DIR", str(local.cache_dir))
    if local.database_url:
        monkeypatch.setenv("DATABASE_URL", local.database_url)
    make(local, 1, WEEKLY, "Weekly sync")
    make(local, 2, PODCAST, "Coffee podcast")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("library", "list")
    assert code == 0 and out.splitlines()[1].startswith(key(1)[:12]) and "Weekly sync" in out
    code, out, _ = run("library", "search", '"launch to March"')
    assert code == 0 and out.count("Weekly sync · [") == 2
    assert run("library", "search", "zebra")[::2] == (1, "nothing in your library matches.\n")
    code, out, _ = run("library", "ask", "What about the budget?", "-r", "Weekly sync")
    assert code == 0 and "The budget is over" in out and "Espresso" not in out
    for args, message in [(("library", "remove", "nothing"), "error: No recording nothing in your library"),
                          (("library", "remove", key(1)[:6]), f"error: No recording {key(1)[:6]}"),  # too short
                          (("library", "ask", "x", "--since", "yesterday"), "error: Not a date: yesterday"),
                          (("library", "rename", "Weekly sync", " "), "error: A title cannot be empty."),
                          (("add", str(local.cache_dir / "missing")), "error: File not found")]:
        code, out, err = run(*args)
        assert code == 1 and err.startswith(message) and len(err.splitlines()) == 1, (args, err)
    assert run("library", "rename", key(1)[:10], "Sync of the week")[0] == 0
    assert run("library", "remove", "Sync of the week") == (0, "removed: Sync of the week\n", "")
    assert [line.split("  ")[-1] for line in run("library", "list")[1].splitlines()] == ["Coffee podcast"]


@pytest.mark.slow  # transcribes real speech through the test server, in new processes
def test_add_a_folder_with_progress_then_skip_what_is_there(server_env, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests import speech

    folder = tmp_path / "recordings"
    (folder / "week 2").mkdir(parents=True)
    speech.recording(folder / "standup.mp3", speech.SENTENCES[:2])
    speech.recording(folder / "week 2" / "review.wav", speech.SENTENCES[2:4])
    (folder / "notes.txt").write_text("not a recording")
    (folder / "broken.mp3").write_text("not audio either")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=Path(__file__).parent.parent,
                              capture_output=True, text=True, timeout=300)

    first = run("add", str(folder), "--speakers", "off")
    assert first.returncode == 1, first.stderr  # one file failed: said, and the others added
    assert [re.sub(r"\(0:00:\d\d\)", "(0:00:ss)", line) for line in first.stdout.splitlines()] == [
        "[1/3] broken.mp3: failed", "[2/3] standup.mp3: added (0:00:ss)", "[3/3] review.wav: added (0:00:ss)"]
    assert [line for line in first.stderr.splitlines() if line.startswith("warning: broken.mp3")]
    again = run("add", str(folder / "standup.mp3"), str(folder / "week 2"), "--speakers", "off")
    assert again.returncode == 0 and again.stdout.splitlines() == ["[1/2] standup.mp3: already in the library",
                                                                   "[2/2] review.wav: already in the library"]
    listed = run("library", "list").stdout
    assert "standup.mp3" in listed and "review.wav" in listed
    found = run("library", "search", speech.SENTENCES[0][1])
    assert found.returncode == 0 and found.stdout.startswith("standup.mp3 · [00:0")
    # `transcribe` puts a recording in the library too
    speech.recording(tmp_path / "solo.mp3", speech.SENTENCES[4:5])
    assert run("transcribe", str(tmp_path / "solo.mp3"), "--speakers", "off").returncode == 0
    assert "solo.mp3" in run("library", "list").stdout


@pytest.mark.slow  # loads the embedding model (seconds on 2 cores)
def test_search_by_meaning_finds_other_words_and_keeps_owners_apart(local):
    make(local, 1, WEEKLY, "Weekly sync", owner="alice")
    make(local, 2, INTERVIEW, "Interview", owner="bob")
    lib = sync.open_library(local)
    assert sync.search(lib, "alice", "money overspent") == []  # no word in common, no vectors yet
    assert sync.embed_pending(lib) == len(WEEKLY) + len(INTERVIEW) and sync.embed_pending(lib) == 0
    assert sync.search(lib, "alice", "money overspent")[0].text == "The budget is over by twenty thousand dollars."
    assert any(h.text.endswith("move the launch to March.") for h in sync.search(lib, "alice", "postpone the release")[:3])
    assert sync.search(lib, "alice", '"stay in February"')[0].start == 60.0  # words still count
    assert {h.recording for h in sync.search(lib, "alice", "baking with grandma", limit=50)} == {key(1)}
    assert sync.search(lib, "bob", "baking with grandma")[0].text == "My grandmother taught me to bake bread."


@pytest.mark.slow  # transcribes real speech through the test server, in new processes
def test_two_processes_share_a_postgresql_library(server_env, postgres, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests import speech

    url = postgres.new_database()
    speech.recording(tmp_path / "standup.mp3", speech.SENTENCES[:2])

    def run(cache: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": url, "CACHE_DIR": str(tmp_path / cache)}
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=Path(__file__).parent.parent, env=env,
                              capture_output=True, text=True, timeout=300)

    added = run("cache-a", "add", str(tmp_path / "standup.mp3"), "--speakers", "off")
    assert added.returncode == 0 and added.stdout.startswith("[1/1] standup.mp3: added"), added.stderr
    assert not (tmp_path / "cache-a" / FILE_NAME).exists()  # the library is in PostgreSQL, not SQLite
    found = run("cache-b", "library", "search", speech.SENTENCES[1][1])  # another process, another machine's cache
    assert found.returncode == 0 and found.stdout.startswith("standup.mp3 · [00:0"), found.stderr
    assert "Lisbon" in found.stdout
