"""What the status line says while a job runs: each stage as it is, and a time left that a
resume (parts that come from the cache at once) does not fool."""

from __future__ import annotations

import pytest

from ui.status import describe as _describe
from core.transcribe.progress import Eta
from core.transcribe.pipeline import transcribe_file
from core.transcribe.progress import Progress


@pytest.mark.slow
def test_a_one_part_job_says_it_is_waiting_for_the_service(settings, server, short_talk):
    server.latency = lambda seconds: 1.0
    events: list[Progress] = []
    try:
        transcribe_file(short_talk[0], settings, events.append)
    finally:
        server.latency = None
    sent = next(i for i, p in enumerate(events) if p.sent)
    assert all(p.stage == "decoding" for p in events[:sent]), events[:sent]
    assert events[sent].stage == "sending" and events[sent].seconds_done == 0
    said = [_describe(p, None, "en") for p in events]
    assert said[0] == "Reading the recording…"
    assert said[sent] == "Sent to the service; waiting for the first words…"
    assert said[-1] == "Done." and said[-2] == "Transcribing: 00:10 of 00:10…"
    assert _describe(events[sent], None, "es") == "Enviado al servicio; esperando las primeras palabras…"


def p(done: float, *, sent: int = 1, cached: bool = False, stage: str = "transcribing") -> Progress:
    return Progress(stage, done, 100.0, 0, None, cached=cached, sent=sent)


def test_the_time_left_leaves_out_what_came_from_the_cache():
    eta = Eta()
    for done in (10, 20, 30, 40, 50):  # a resume: half the recording is in the cache, at once
        assert eta.update(p(done, sent=0, cached=True), now=0.0) is None
    assert eta.update(p(50, stage="sending"), now=0.0) is None  # the first request goes out
    assert eta.update(p(55), now=1.0) is None  # too soon to tell
    # 10 s of audio in 10 s of work: 40 s left (counting the cached half: 6.7 s, the old "about 5 s")
    assert eta.update(p(60), now=10.0) == 40.0
    eta.update(p(70, cached=True), now=12.0)  # one more part found in the cache
    assert eta.update(p(80), now=20.0) == 20.0  # 20 s of work for 20 s of audio: 20 s left
    assert _describe(p(80), 20.0, "en") == "Transcribing: 01:20 of 01:40 · about 20 s left…"
    assert _describe(p(80), 20.0, "es") == "Transcribiendo: 01:20 de 01:40 · faltan unos 20 s…"


def test_nothing_is_promised_before_work_is_seen():
    eta = Eta()
    assert eta.update(Progress("decoding", 0.0, 100.0, 0, None), now=0.0) is None
    assert eta.update(p(0, stage="sending"), now=0.0) is None
    assert eta.update(p(0, stage="sending"), now=30.0) is None  # waiting for the service is not progress
