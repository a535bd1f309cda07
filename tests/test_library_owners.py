"""Whose library (core/library/owners.py) and what the Library tab shows (ui/library_views.py):
a single-user app or a shared server, a visitor's owner id that only this server can read or
make, recordings named by public ids and kept apart by owner, agents reaching only the ids they
give, a removal that deletes cached files only when no one else holds them, and answers whose
citations open recordings while nothing of the model's text is rendered as markup."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import AppError
from core.job import Jobs
from core.library import LOCAL, sync
from core.library.owners import TOOLS, Shelf, single_user, visitor_owner
from core.seal import ServerKey
from core.transcript import Meta, Segment, Transcript
from ui import library_views as views

ANA, BOB = "visitor:" + "a" * 32, "visitor:" + "b" * 32


@pytest.fixture
def jobs(tmp_path) -> Jobs:
    return Jobs(Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off"))


def cached(jobs: Jobs, n: int, lines: list[str]) -> Transcript:
    """A transcript in the cache under a made-up cache key, a sentence every 30 s."""
    key = hashlib.sha256(str(n).encode()).hexdigest()
    t = Transcript([Segment(i * 30.0, i * 30.0 + 29, text) for i, text in enumerate(lines)], len(lines) * 30.0, "en",
                   meta=Meta(id=key))
    jobs.cache.put_transcript(key, t)
    return t


def placed(shelf: Shelf, transcript: Transcript, title: str, added: float) -> None:
    """A cached transcript in the shelf's library as if it joined it at `added` (Unix time)."""
    sync.index_transcript(shelf.library, transcript)
    shelf.library.hold(shelf.owner, transcript.meta.id, title, added)


@pytest.mark.parametrize("host, env, share, alone", [
    (None, {}, False, True), ("127.0.0.1", {}, False, True), ("localhost", {}, False, True), ("::1", {}, False, True),
    (None, {"GRADIO_SERVER_NAME": "0.0.0.0"}, False, False), ("192.168.1.5", {}, False, False),
    (None, {"SPACE_ID": "someone/app"}, False, False), ("127.0.0.1", {}, True, False)])
def test_whose_library_a_single_user_app_or_a_shared_server(host, env, share, alone):
    assert single_user(host, share, env) is alone


def test_a_visitors_owner_id_is_random_and_only_this_server_reads_or_makes_it(jobs):
    owner, kept = visitor_owner(jobs.key, "")
    assert re.fullmatch(r"visitor:[0-9a-f]{32}", owner) and owner not in kept
    assert visitor_owner(jobs.key, kept) == (owner, None)
    other = ServerKey(b"another server's secret, 32 bytes")
    for forged in (other.seal(owner, "library-owner"), jobs.key.seal(owner, "recent"), kept[:-2] + "AA",
                   jobs.key.seal("local", "library-owner"), owner, None, 7):
        fresh, new = visitor_owner(jobs.key, forged)
        assert fresh != owner and fresh.startswith("visitor:") and new


def test_owners_see_only_their_recordings_by_public_ids(jobs):
    alpha = cached(jobs, 1, ["The budget is over by twenty thousand.", "We move the launch to March."])
    beta = cached(jobs, 2, ["The concert starts at seven.", "The launch of the roast is on Friday."])
    ana, bob = Shelf(jobs, ANA), Shelf(jobs, BOB)
    ana.hold(alpha, "Weekly sync")
    bob.hold(beta, "Coffee podcast")
    Shelf(jobs, "visitor:" + "c" * 32).hold(beta)  # no title, no file name: a date, never the cache key
    assert Shelf(jobs, "visitor:" + "c" * 32).entries()[0].recording.title.startswith("Recording of 20")
    (mine,) = ana.entries()
    assert mine.id == jobs.key.public_id(alpha.meta.id) and mine.recording.title == "Weekly sync"
    theirs = bob.entries()[0].id
    assert [f.hit.title for f in ana.search("launch")] == ["Weekly sync"]
    assert [f.id for f in ana.search("launch")] == [mine.id]
    assert ana.internal(theirs) is None and ana.internal(alpha.meta.id) is None and ana.recording(theirs) is None
    assert not ana.rename(theirs, "Mine now") and not ana.remove(theirs)
    assert [e.recording.title for e in bob.entries()] == ["Coffee podcast"]
    assert ana.rename(mine.id, "  Sync of the week ") and ana.entries("week")[0].recording.title == "Sync of the week"
    assert ana.entries("concert") == [] and ana.entries("march") == []  # title, summary, speakers, language
    with pytest.raises(AppError):
        ana.rename(mine.id, "   ")


def test_an_agent_reaches_only_the_ids_it_gives(jobs):
    alpha = cached(jobs, 1, ["The budget is over by twenty thousand."])
    beta = cached(jobs, 2, ["The concert starts at seven."])
    tools = Shelf(jobs, TOOLS)
    given = jobs.public_id(alpha)  # what transcribe_recording returned
    jobs.public_id(beta)  # someone else's recording, whose id this agent does not have
    keys = tools.reach([given])
    assert keys == [alpha.meta.id] and tools.search("concert", keys) == []
    assert [f.id for f in tools.search("budget", keys)] == [given]
    for wrong in ("0" * 32, alpha.meta.id, given[:-1] + ("1" if given.endswith("0") else "0"), ""):
        with pytest.raises(AppError, match="No recording has that id here"):
            tools.reach([given, wrong])


def test_removing_deletes_the_cached_files_only_when_no_one_else_holds_the_recording(jobs):
    alpha = cached(jobs, 1, ["The budget is over by twenty thousand."])
    media = jobs.cache.media_folder / f"{jobs.key.name('media', 'file digest')}.mp3"
    captions = jobs.cache.media_folder / f"{jobs.key.name('captions', alpha.meta.id)}.vtt"
    for path in (media, captions):
        path.write_bytes(b"x")
    ana, bob = Shelf(jobs, ANA), Shelf(jobs, BOB)
    ana.hold(alpha, "Weekly sync", media.name)
    bob.hold(alpha, "Budget talk")
    public = ana.entries()[0].id
    assert ana.player(public) == media.name
    assert ana.remove(public) and ana.entries() == [] and not ana.remove(public)
    assert jobs.cache.get_transcript(alpha.meta.id) is not None and media.exists()  # Bob still holds it
    assert bob.remove(public)
    assert jobs.cache.get_transcript(alpha.meta.id) is None and not media.exists() and not captions.exists()
    assert jobs.recording(public) is None


def test_a_kept_library_outlives_the_cache_cap_and_an_anonymous_one_lives_with_it(tmp_path):
    """The local library's transcript moves out of the cap and stays while the cache evicts;
    an anonymous visitor's goes with the cap, and leaves their library and its index."""
    jobs = Jobs(Settings(cache_dir=tmp_path / "cache", api_key=None, diarization="off", cache_max_mb=0.05))
    mine = cached(jobs, 1, ["The budget is over by twenty thousand."])
    theirs = cached(jobs, 2, ["The concert starts at seven."])
    local, ana = Shelf(jobs, LOCAL), Shelf(jobs, ANA)
    local.hold(mine, "Weekly sync")
    ana.hold(theirs, "Coffee podcast")
    assert (jobs.cache.root / "kept" / f"{mine.meta.id}.json").is_file()
    for n in range(3, 40):  # 37 transcripts of ~2 kB each: twice the 50 kB cap
        cached(jobs, n, [f"Filler sentence number {n} of a long day, " * 10])
    assert jobs.cache.get_transcript(mine.meta.id) is not None and jobs.cache.get_transcript(theirs.meta.id) is None
    assert jobs.cache.size() <= 0.05 * 2**20
    assert [e.recording.title for e in local.entries()] == ["Weekly sync"]
    assert ana.entries() == [] and theirs.meta.id not in ana.library.indexed()
    assert [f.hit.title for f in local.search("budget")] == ["Weekly sync"]
    assert sync.rebuild(jobs.base).indexed == jobs.cache.transcript_ids().__len__() and local.entries()


def test_removing_the_last_holder_forgets_everything_kept_of_the_recording(jobs):
    """Its transcript, summaries, voice prints, speakers' names, player's copy, captions and
    public id: none of it is left once no library holds it; while another does, all of it stays."""
    from core.answer.summary import cache_key
    from core.speakers.attach import every_names_key, names_key, voices_key
    from core.speakers.cluster import Count

    alpha = cached(jobs, 1, ["The budget is over by twenty thousand."])
    key, cache = alpha.meta.id, jobs.cache
    media = cache.media_folder / f"{jobs.key.name('media', 'file digest')}.mp3"
    captions = cache.media_folder / f"{jobs.key.name('captions', key)}.vtt"
    for path in (media, captions):
        path.write_bytes(b"x")
    summary = cache_key(alpha, jobs.base, jobs.base.chat_model)
    cache.put_summary(summary, {"bullets": ["Over budget."]})
    cache.put_voices(voices_key(key), b"prints")
    cache.put_names(names_key(key, Count(2, 2)), {"S1": "Ana"})
    assert names_key(key, Count(2, 2)) in every_names_key(key) and names_key(key, Count()) in every_names_key(key)
    local, ana = Shelf(jobs, LOCAL), Shelf(jobs, ANA)
    local.hold(alpha, "Weekly sync", media.name)
    ana.hold(alpha, "Budget")
    public = local.entries()[0].id
    assert local.internal(public) == key  # the way back from the public id, recorded
    before = {p.relative_to(cache.root) for p in cache.root.rglob("*") if p.is_file()}
    assert local.remove(public)  # Ana still holds it: nothing goes, and it is under the cap again
    assert {p.relative_to(cache.root) for p in cache.root.rglob("*") if p.is_file()} == {
        p if p.parts[0] != "kept" else Path("transcripts", *p.parts[1:]) for p in before}
    assert ana.remove(public)
    assert [p for p in cache.root.rglob("*") if p.is_file() and p.parent != cache.root] == []
    assert jobs.recording(public) is None and sync.cached_ids(jobs.base) == []


def test_an_answer_links_its_citations_and_renders_nothing_of_the_models_markup():
    text = ('The launch moves **to March** [Weekly sync · 01:30] <img src="http://evil.example/x.png">\n\n'
            '![x](http://evil.example/y.png) <script>alert(1)</script> [Not given · 00:10] [Weekly sync · 1:02:03]')
    shown = views.answer(text, {"Weekly sync": "f" * 32}, ["Read in 2 parts."])
    assert "<img" not in shown and "<script" not in shown and "&lt;img" in shown
    assert re.findall(r'data-rec="(\w+)" data-t="([\d.]+)"', shown) == [("f" * 32, "90.00"), ("f" * 32, "3723.00")]
    assert "[Not given · 00:10]" in shown and "<strong>to March</strong>" in shown and "data-done" in shown
    assert "data-done" not in views.answer("streaming", {})


def test_a_search_covers_only_the_recordings_chosen_and_added_in_the_span(jobs):
    """Chosen by public ids (none: all), added today, in the last 7 or 30 days, this year; an id
    of another owner's recording, a cache key or a made-up id reaches nothing."""
    now = datetime(2026, 6, 15, 12, 0).timestamp()
    ana, bob = Shelf(jobs, ANA), Shelf(jobs, BOB)
    ages = {"Standup": 1 / 24, "Review": 3, "Planning": 20, "Offsite": 100, "Kickoff": 400}  # days before now
    for n, (title, days) in enumerate(ages.items()):
        placed(ana, cached(jobs, n, [f"The launch was discussed at the {title.lower()}."]), title, now - days * 86400)
    bobs = cached(jobs, 9, ["The launch is cancelled."])
    placed(bob, bobs, "Launch", now)
    theirs = bob.public(bobs.meta.id)  # the way from its public id is recorded, as when Bob opens it
    ids = {e.recording.title: e.id for e in ana.entries()}

    def titles(*chosen, span="any"):
        return sorted(f.hit.title for f in ana.search("launch", **ana.scope(chosen, span, now)))

    assert titles() == sorted(ages)
    assert [titles(span=s) for s in ("today", "week", "month", "year", "no such span")] == [
        ["Standup"], ["Review", "Standup"], ["Planning", "Review", "Standup"],
        ["Offsite", "Planning", "Review", "Standup"], sorted(ages)]
    assert titles(ids["Kickoff"], ids["Review"]) == ["Kickoff", "Review"]
    assert titles(ids["Kickoff"], ids["Review"], span="month") == ["Review"]
    assert titles(theirs, ids["Review"]) == ["Review"]
    for nothing_of_ana in (theirs, bobs.meta.id, "0" * 32, ""):
        assert titles(nothing_of_ana) == [] and ana.scope([nothing_of_ana])["ids"] == []
    assert [f.hit.title for f in bob.search("launch", **bob.scope([ids["Review"]]))] == []
    assert views.still_there([ids["Review"], theirs, ids["Kickoff"]], ana.entries()) == [ids["Review"], ids["Kickoff"]]


def test_a_question_is_answered_only_from_the_recordings_in_scope(settings, server):
    """What reaches the model: the passages of the recordings chosen, or of those added in the
    span; of none of another owner's, even when their id is chosen."""
    jobs = Jobs(settings.replace(diarization="off"))
    now = time.time()
    ana, bob = Shelf(jobs, ANA), Shelf(jobs, BOB)
    placed(ana, cached(jobs, 1, ["The budget is over by twenty thousand."]), "Weekly sync", now - 3600)
    placed(ana, cached(jobs, 2, ["The concert starts at seven."]), "Coffee podcast", now - 40 * 86400)
    placed(ana, cached(jobs, 3, ["The museum opens in May."]), "Old tour", now - 400 * 86400)
    bobs = cached(jobs, 4, ["The secret budget of the garden party."])
    placed(bob, bobs, "Garden", now)
    ids = {e.recording.title: e.id for e in ana.entries()}

    def sent(*chosen, span="any"):
        reply = ana.ask("What was said?", jobs.base, **ana.scope(chosen, span))
        "".join(reply.stream)
        return server.requests("chat")[-1].info["messages"][1]["content"], reply.sources

    data, sources = sent(ids["Coffee podcast"])
    assert "Recording: Coffee podcast" in data and "budget" not in data and "museum" not in data
    assert sources == {"Coffee podcast": ids["Coffee podcast"]}
    data, sources = sent(span="month")
    assert "Recording: Weekly sync" in data and "concert" not in data and "museum" not in data
    assert "garden" not in data and set(sources) == {"Weekly sync"}
    data, sources = sent(bob.public(bobs.meta.id))
    assert "Recording:" not in data and "garden" not in data and sources == {}
    data, _ = sent()
    assert all(f"Recording: {t}" in data for t in ids) and "garden" not in data
