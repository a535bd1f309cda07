"""A cache written by the version before the code was regrouped still serves: same keys, same
entries, read into the typed transcript (tests/data/cache-before was written by that version)."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.config import Settings
from core.transcribe.pipeline import by_id, lookup, transcribe_file

DATA = Path(__file__).parent / "data" / "cache-before"
KEY = "9a168aa21dc2206d1c7c6450695aa92f1be6b0352ec9c0d4fa335ac0e13542d0"


def _settings(tmp_path: Path) -> Settings:
    """The settings the entry was made with; nothing listens at that address, so any request fails."""
    shutil.copytree(DATA / "cache", tmp_path / "cache")
    return Settings(api_key="k", base_url="http://127.0.0.1:9/v1", cache_dir=tmp_path / "cache", max_retries=0)


def test_an_entry_from_before_is_found_by_the_same_key(tmp_path):
    settings = _settings(tmp_path)
    hit = lookup(DATA / "tone.wav", settings)
    assert hit is not None, "the key of a recording and its settings is unchanged"
    assert [s.text for s in hit.segments] == ["Written by the version before.", "Still served."]
    assert (hit.duration, hit.language, hit.model, hit.source) == (1.0, "en", "whisper-1", "tone.wav")
    assert (hit.meta.id, hit.meta.backend, hit.meta.notes, hit.meta.damaged) == (KEY, "openai", [], False)


def test_a_job_is_served_from_it_without_a_request(tmp_path):
    settings = _settings(tmp_path)
    events = []
    t = transcribe_file(DATA / "tone.wav", settings, events.append)
    assert t.text == "Written by the version before. Still served." and t.meta.id == KEY
    assert events[-1].stage == "done" and events[-1].cached


def test_its_id_still_opens_it(tmp_path):
    settings = _settings(tmp_path)
    t = by_id(KEY, settings, source="again.wav")
    assert t is not None and t.source == "again.wav" and t.meta.id == KEY
