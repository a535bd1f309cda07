"""Speakers on the page, in a real browser: names in the transcript, a click on one to rename it,
the name everywhere (transcript, talking times, downloads) and after a reload, another count
found from the cached prints, and the rename tool for AI agents."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import speech
from support import process, wait_transcript

LINES = [("en", "Good morning, let us look at the budget for the next quarter."),
         ("en+f3", "We are over by twenty thousand because of the new servers."),
         ("en", "Then we should move the launch to March."),
         ("en+f3", "I agree, I will tell the marketing team this afternoon.")]


@pytest.fixture(scope="module")
def dialog(media_dir) -> Path:
    pcm = speech.silence(0.4) + b"".join(speech.speak_pcm(t, voice=v) + speech.silence(0.8) for v, t in LINES)
    return speech.write(pcm, media_dir / "two people.mp3")


def labels(page) -> list[str]:
    return page.locator("#transcript-doc button.spk").all_inner_texts()


def test_speakers_are_shown_renamed_by_a_click_and_kept(page, dialog, artifacts):
    process(page, dialog)
    wait_transcript(page, "March")
    assert labels(page) == ["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2"]  # a paragraph per turn
    assert page.locator("#speakers-view").inner_text().count("Speaker") == 2
    assert page.locator("#download-rttm").is_visible()
    page.screenshot(path=str(artifacts / "speakers-before-rename.png"), full_page=True)

    page.locator("#transcript-doc button.spk", has_text="Speaker 2").first.click()
    name = page.locator("#speaker-name input, #speaker-name textarea").first
    page.wait_for_function("() => document.querySelector('#speaker-pick input[value=\"S2\"]')?.checked")
    page.wait_for_function("() => document.querySelector('#speaker-name input, #speaker-name textarea')"
                           "?.value == 'Speaker 2'")  # the pick's answer has filled the box: type after it
    name.fill("Ana")
    page.locator("#rename").click()
    page.wait_for_function("() => [...document.querySelectorAll('#transcript-doc button.spk')]"
                           ".filter(b => b.innerText == 'Ana').length == 2")
    assert labels(page) == ["Speaker 1", "Ana", "Speaker 1", "Ana"]
    assert "Ana" in page.locator("#speakers-view").inner_text()
    page.screenshot(path=str(artifacts / "speakers-after-rename.png"), full_page=True)

    page.reload()
    page.wait_for_function("() => document.querySelector('#transcript-doc')?.innerText.includes('Ana')")
    assert labels(page) == ["Speaker 1", "Ana", "Speaker 1", "Ana"]

    page.locator("#input-panel .label-wrap").first.click()  # folded away once results are shown
    page.locator("#speakers input").first.click()
    page.get_by_role("option", name="1", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#transcript-doc button.spk').length == 1")
    assert labels(page) == ["Speaker 1"]


def test_the_rename_tool_names_a_speaker_for_every_later_answer(app, media_dir):
    from gradio_client import Client

    # Another recording than the page test's: names are kept per recording, for whoever holds its id.
    pcm = speech.silence(0.9) + b"".join(speech.speak_pcm(t, voice=v) + speech.silence(0.8) for v, t in LINES)
    mp3 = speech.write(pcm, media_dir / "two people again.mp3")
    client = Client(app[0], verbose=False)
    data_url = "data:audio/mpeg;base64," + base64.b64encode(mp3.read_bytes()).decode()
    made = json.loads(client.predict(data_url, "", "", api_name="/transcribe_recording"))
    assert "Speaker 2: We are over" in made["transcript"]
    renamed = json.loads(client.predict(made["id"], "Speaker 2", "Ana", api_name="/rename_speaker"))
    assert {s["name"] for s in renamed["speakers"]} == {"Speaker 1", "Ana"}
    with pytest.raises(Exception, match="no speaker called Nobody"):
        client.predict(made["id"], "Nobody", "X", api_name="/rename_speaker")
    answer = client.predict(made["id"], "What did Ana say?", api_name="/ask_about_recording")
    assert answer.strip()
