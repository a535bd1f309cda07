"""Sign-in with this server's accounts (APP_USERS), the app as a subprocess on 127.0.0.1: each
signed-in user's library is theirs alone, from any client or browser (so on a local app too,
where without sign-in the library is this machine's); nobody else's recording is listed,
searched or answered for them; a wrong password or no sign-in gets nothing, and no password
reaches the log."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

import speech
from conftest import TEST_KEY
from support import process, start_app, transcript_text, wait_transcript

pytestmark = pytest.mark.slow

PASSWORDS = {"ana": "ana-Very-Secret-1", "bob": "bob-Very-Secret-2"}
ALPHA, BETA, GAMMA = speech.SENTENCES[:5], speech.SENTENCES[5:], speech.SENTENCES[1:3]


@pytest.fixture(scope="module")
def talks(media_dir):
    """Three recordings: alpha (budget..doctor), beta (concert..museum), gamma (travel, revenue)."""
    paths = [media_dir / f"{name} talk.wav" for name in ("alpha", "beta", "gamma")]
    for path, sentences in zip(paths, (ALPHA, BETA, GAMMA)):
        speech.recording(path, sentences)
    return paths


@pytest.fixture(scope="module")
def signed_app(fake_server, tmp_path_factory):
    """The app on 127.0.0.1 (a single-user address) with two accounts."""
    tmp = tmp_path_factory.mktemp("signin")
    users = tmp / "users.txt"
    users.write_text("# who may sign in\n" + "".join(f"{n}:{p}\n" for n, p in PASSWORDS.items()))
    users.chmod(0o600)
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "UPLOAD_FORMAT": "flac", "SUMMARY": "off", "APP_USERS": str(users)}, tmp)
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


def client(url, name, password=None):
    from gradio_client import Client

    return Client(url, auth=(name, password or PASSWORDS[name]), verbose=False)


def data_url(path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def found(c, query: str) -> list[str]:
    """The texts search_recordings finds in the caller's own library (no ids given)."""
    return [f["text"] for f in json.loads(c.predict(query, [], api_name="/search_recordings"))]


def status_of(url: str, data: bytes | None = None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def test_each_signed_in_users_library_is_their_own_from_any_client(signed_app, talks, fake_server):
    url, tmp = signed_app
    alpha, beta, _ = talks
    ana, bob = client(url, "ana"), client(url, "bob")
    ana_alpha = json.loads(ana.predict(data_url(alpha), "", "", api_name="/transcribe_recording"))["id"]
    bob_beta = json.loads(bob.predict(data_url(beta), "", "", api_name="/transcribe_recording"))["id"]

    assert any("revenue" in t for t in found(ana, "revenue")) and found(ana, "concert") == []
    assert any("concert" in t for t in found(bob, "concert")) and found(bob, "revenue") == []
    again = client(url, "ana")  # the same user from another client: the same library
    assert any("revenue" in t for t in found(again, "quarterly revenue")) and found(again, "museum") == []

    reply = json.loads(again.predict("When does the concert start?", [], api_name="/ask_across_recordings"))
    sent = fake_server.requests("chat")[-1].info["messages"][1]["content"]
    assert "concert" not in sent.lower() and "museum" not in sent.lower(), sent  # none of bob's passages went out
    assert set(reply["sources"].values()) <= {ana_alpha}

    # An id of someone else's recording does not open their library: bob's recording joins ana's,
    # found by its id, and ana's stays out of bob's.
    assert json.loads(ana.predict("museum", [bob_beta], api_name="/search_recordings"))
    assert found(bob, "revenue") == []


def test_no_access_without_signing_in_or_with_a_wrong_password(signed_app, talks):
    from gradio_client import Client

    url, tmp = signed_app
    with pytest.raises(Exception):
        Client(url, verbose=False)  # anonymous: Gradio's login refuses the page's config
    for name, password in (("ana", "bob-Very-Secret-2"), ("ana", ""), ("carol", "ana-Very-Secret-1")):
        with pytest.raises(Exception):
            client(url, name, password or "x")
    assert status_of(url + "config") == 401
    assert status_of(url + "gradio_api/info") == 401
    body = json.dumps({"data": ["revenue", []]}).encode()
    assert status_of(url + "gradio_api/call/search_recordings", body) == 401
    wrong = urllib.parse.urlencode({"username": "ana", "password": "nope"}).encode()
    assert status_of(url + "login", wrong) == 400
    log = (tmp / "app.log").read_text()
    assert not any(p in log for p in PASSWORDS.values()) and "nope" not in log


def login(chromium, url, name):
    """A new browser, signed in through Gradio's login page."""
    ctx = chromium.new_context(locale="en-US", viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    sign_in(page, name)
    return page


def sign_in(page, name):
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.locator("#status .status").wait_for()


def library(page) -> list[str]:
    page.get_by_role("tab", name="Library").click()
    page.locator("#library-list table.lib-list, #library-list .lib-empty").first.wait_for()
    return page.locator("#library-list tbody tr td:first-child").all_inner_texts()


def test_a_signed_in_browser_shows_its_users_library_and_the_next_user_none_of_it(
        chromium, signed_app, talks, artifacts):
    url, tmp = signed_app
    alpha, beta, gamma = talks
    anonymous = chromium.new_context().new_page()
    anonymous.goto(url)
    anonymous.get_by_role("button", name="Login").wait_for()
    anonymous.get_by_text("Inicia sesión para llegar a tu biblioteca de grabaciones.").wait_for()
    anonymous.screenshot(path=str(artifacts / "signin-login-page.png"))
    assert anonymous.locator("#library-tab").count() == 0

    ana = login(chromium, url, "ana")
    before = library(ana)  # what ana transcribed through the API is here too (titled by its id there)
    ana.get_by_role("tab", name="Transcribe").click()
    process(ana, gamma)
    wait_transcript(ana, "travel")
    listed = library(ana)
    assert listed[0] == "gamma talk.wav" and len(listed) == len(before) + 1
    ana.screenshot(path=str(artifacts / "library-signed-in-ana.png"), full_page=True)

    other = login(chromium, url, "ana")  # ana in a second browser: the same library
    assert library(other) == listed

    ana.locator("#sign-out").click()  # ana signs out of this browser only; bob signs in on it
    sign_in(ana, "bob")
    other.reload()
    assert library(other) == listed
    assert "gamma talk.wav" not in library(ana) and len(library(ana)) <= 1  # at most what bob transcribed
    assert "travel" not in transcript_text(ana)  # ana's last recording (gamma) is not brought back
    assert "Your last recording is back" not in ana.locator("#status").inner_text()
    ana.screenshot(path=str(artifacts / "library-signed-in-bob-after-ana.png"), full_page=True)


@pytest.fixture(scope="module")
def hf_app(fake_server, tmp_path_factory):
    """The app as on a Space with `hf_oauth: true`, its sign-in provider the tests' own
    (tests/fakeoidc.py) in place of huggingface.co: Gradio's real OAuth routes, offline."""
    from fakeoidc import FakeOIDC

    provider = FakeOIDC()
    provider.start()
    tmp = tmp_path_factory.mktemp("signin-hf")
    proc, url = start_app({"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": fake_server.base_url,
                           "UPLOAD_FORMAT": "flac", "SUMMARY": "off", "SIGN_IN": "huggingface",
                           "SYSTEM": "spaces", "SPACE_ID": "someone/talk-to-your-audio", "OAUTH_CLIENT_ID": provider.client_id,
                           "OAUTH_CLIENT_SECRET": provider.client_secret, "OAUTH_SCOPES": "openid profile",
                           "OPENID_PROVIDER_URL": provider.url}, tmp)
    yield url, provider
    proc.terminate()
    proc.wait(timeout=20)
    provider.stop()


def hf_sign_in(page, provider, name):
    provider.user = name
    page.locator("#sign-in").click()
    page.locator("#sign-in").filter(has_text=name).wait_for()
    page.locator("#status .status").wait_for()


def test_hugging_face_sign_in_gives_the_account_its_library_and_leaves_the_visitors(chromium, hf_app, talks,
                                                                                     artifacts):
    url, provider = hf_app
    issued = provider.tokens_issued
    alpha, beta, _ = talks
    page = chromium.new_context(locale="en-US", viewport={"width": 1300, "height": 1000}).new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("#status .status").wait_for()
    process(page, alpha)  # anonymous: the browser's own library
    wait_transcript(page, "budget")
    assert library(page) == ["alpha talk.wav"]

    hf_sign_in(page, provider, "ana-hf")
    assert library(page) == []  # the account's library, not the browser's
    page.get_by_role("tab", name="Transcribe").click()
    process(page, beta)
    wait_transcript(page, "concert")
    assert library(page) == ["beta talk.wav"]
    page.screenshot(path=str(artifacts / "library-signed-in-huggingface.png"), full_page=True)

    again = chromium.new_context(locale="en-US").new_page()  # ana-hf in another browser
    again.set_default_timeout(60_000)
    again.goto(url)
    hf_sign_in(again, provider, "ana-hf")
    assert library(again) == ["beta talk.wav"]
    bob = chromium.new_context(locale="en-US").new_page()
    bob.set_default_timeout(60_000)
    bob.goto(url)
    hf_sign_in(bob, provider, "bob-hf")
    assert library(bob) == []

    assert provider.tokens_issued == issued + 3  # each sign-in went through the provider
    page.locator("#sign-in").click()  # signed out: the browser's own library again
    page.locator("#sign-in").filter(has_text="Sign in").wait_for()
    page.locator("#status .status").wait_for()
    assert library(page) == ["alpha talk.wav"]
