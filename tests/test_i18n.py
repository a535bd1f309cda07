"""Messages in the visitor's language: every message core shows has its Spanish translation,
Accept-Language is read safely, and real errors come out in Spanish (and unchanged in English)."""

from __future__ import annotations

import ast
import pickle
import string
from pathlib import Path

import httpx
import openai
import pytest

import core
from core.answer import chat
from core.answer.completion import ANSWERING
from core.audio import fetch
from core.audio import decode
from core.service.errors import explain
from core.config import Settings
from core.errors import AppError, ServiceError, TooLarge, UnsupportedMedia
from core.i18n import ES, LANGUAGES, Text, language_of, tr

CORE = Path(core.__file__).parent


def _error_classes() -> set[str]:
    """Names of AppError and every subclass of it defined in core."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages([str(CORE)], prefix="core."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, todo = set(), [AppError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


ERRORS = _error_classes()
TRANSLATED = ERRORS | {"Text", "tr"}


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _template_arg(node: ast.Call, name: str) -> ast.expr | None:
    """The argument holding the template: `tr`'s second, everyone else's first."""
    index = 1 if name == "tr" else 0
    return node.args[index] if len(node.args) > index else None


def _calls(source: str, names: set[str]):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and (name := _called(node)) in names:
            yield node, name


def _templates(source: str) -> list[tuple[int, str]]:
    """(line, template) of every string literal given as a message in `source`."""
    found = []
    for node, name in _calls(source, TRANSLATED):
        arg = _template_arg(node, name)
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append((node.lineno, arg.value))
    return found


def _untranslatable(source: str) -> list[tuple[int, str]]:
    """(line, call) of every message built before it reaches an error or a Text: f-strings,
    concatenations and `.format()`, which leave nothing to look up in a catalogue."""
    found = []
    for node, name in _calls(source, TRANSLATED):
        arg = _template_arg(node, name)
        if isinstance(arg, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format"):
            found.append((node.lineno, name))
    return found


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _problems(source: str) -> list[str]:
    problems = []
    for line, template in _templates(source):
        if template not in ES:
            problems.append(f"line {line}: no Spanish for {template!r}")
        elif _fields(ES[template]) != _fields(template):
            problems.append(f"line {line}: the Spanish of {template!r} has other placeholders")
    problems += [f"line {line}: {name}() is given a message already formatted" for line, name in
                 _untranslatable(source)]
    return problems


SOURCES = sorted(CORE.rglob("*.py")) + sorted((CORE.parent / "ui").glob("*.py")) + [CORE.parent / "app.py"]  # the page's own messages too


def test_the_walk_finds_the_messages():
    """The check below looks where the messages are: every module that raises has some."""
    every = [template for path in SOURCES for _, template in _templates(path.read_text(encoding="utf-8"))]
    assert len(every) >= 60
    assert {"UrlRefused", "UnsupportedMedia", "ServiceError", "TooLarge", "Cancelled", "NoSpeech"} <= ERRORS
    assert "{name} is empty (0 bytes)." in every and "Answering" in every


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_message_has_its_spanish(path):
    assert _problems(path.read_text(encoding="utf-8")) == []


def test_the_check_fails_on_an_untranslated_message(monkeypatch):
    untranslated = 'def f(x):\n    raise TooLarge("A message nobody translated: {x}.", x=x)\n'
    assert _problems(untranslated) == ["line 2: no Spanish for 'A message nobody translated: {x}.'"]
    assert _problems('raise UrlRefused(f"The host {host} could not be found.")\n') == [
        "line 1: UrlRefused() is given a message already formatted"]
    assert _problems('raise AppError(message + ".")\n') == ["line 1: AppError() is given a message already formatted"]
    assert _problems('x = service.Text("{a}".format(a=1))\n') == ["line 1: Text() is given a message already formatted"]
    monkeypatch.setitem(ES, "Stopped before {span} was sent.", "Detenido antes de enviar {tramo}.")
    assert _problems('x = tr("es", "Stopped before {span} was sent.", span=1)\n') == [
        "line 1: the Spanish of 'Stopped before {span} was sent.' has other placeholders"]
    assert _problems('raise NoSpeech("No speech was found in {name}: it seems to be silence, noise or music.", '
                     'name=n)\n') == []


def test_spanish_templates_are_sound():
    for english, spanish in ES.items():
        assert spanish.strip() and spanish != english, english
        assert _fields(spanish) == _fields(english), english
        for setting in ("MAX_FILE_MB", "OPENAI_API_KEY", "OPENAI_BASE_URL", "(413)", "(429)", "(401)", "model.bin"):
            assert (setting in english) == (setting in spanish), (setting, english)


# --- Accept-Language ---

@pytest.mark.parametrize("header, lang", [
    ("es-ES,es;q=0.9,en;q=0.8", "es"),
    ("en-US,en;q=0.9,es;q=0.8", "en"),
    ("fr-FR, es;q=0.5", "es"),
    ("fr-FR,fr;q=0.9", "en"),
    ("es", "es"),
    ("ES-mx", "es"),
    ("es_AR", "es"),
    ("en;q=0.5, es;q=0.6", "es"),
    ("es;q=0.6, en;q=0.6", "es"),  # equals: the first
    ("es;q=0, en;q=0.1", "en"),
    ("es;q=0", "en"),  # "not Spanish"
    ("*", "en"),
    ("es;q=0.3, *;q=0.5", "en"),
    (None, "en"),
    ("", "en"),
    (",,,;;;===", "en"),
    ("es;q=abc", "en"),  # an unreadable q: not taken
    ("es;q=2, en;q=0.1", "en"),
    ("es;q=-1", "en"),
    ("es;q=nan, en;q=0.1", "en"),
    ("es;q=inf", "en"),
    ("es;q=1e-1", "en"),
    ("es;q=", "en"),
    ("es;Q=0.7", "es"),
    ("  es-419 ; q=0.7 ", "es"),
    ("\x00es\xff", "en"),
    ("español", "en"),
])
def test_language_of(header, lang):
    assert language_of(header) == lang


def test_language_of_hostile_input():
    assert language_of("fr," * 200_000 + "es") == "en"  # past what is read
    assert language_of("x" * 1_000_000) == "en"
    assert language_of("es;q=" + "9" * 10_000) == "en"
    assert language_of(";" * 100_000) == "en"
    assert language_of("es;q=0." + "1" * 100_000) == "en"
    assert language_of(b"es") == "en"  # not a str
    assert language_of(42) == "en"
    assert set(LANGUAGES) == {"en", "es"}


# --- Text ---

def test_text_formats_and_falls_back():
    assert str(Text("{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).",
                    name="a.mp3", mb=3000.4, limit=2048.0)) == "a.mp3 is 3000 MB; the limit is 2048 MB (MAX_FILE_MB)."
    assert tr("es", "{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).",
              name="a.mp3", mb=3000.4, limit=2.5) == "a.mp3 ocupa 3000 MB; el límite es de 2,5 MB (MAX_FILE_MB)."
    assert tr("es", "Not in any catalogue: {x}.", x=1) == "Not in any catalogue: 1."
    assert tr("fr", "Type a question first.") == "Type a question first."
    assert tr("es-ES", "Type a question first.") == "Escribe primero una pregunta."
    assert tr(None, "Type a question first.") == "Type a question first."
    # a missing or unfit value: the English, else the template; never an exception
    assert tr("es", "{name} has no audio track.", file="a.mp4") == "{name} has no audio track."
    assert tr("es", "{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).", name="a", mb="x",
              limit=1) == "{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB)."
    assert tr("es", "Broken {", x=1) == "Broken {"
    assert tr("es", "Plain text with {braces} and no values") == "Plain text with {braces} and no values"
    # values that come from outside are not templates
    assert tr("es", "File not found: {path}", path="{0} {x.__class__}") == "No se encontró el archivo: {0} {x.__class__}"


def test_nested_text_is_translated_whole():
    what = Text("Transcribing {span}", span="0:05:00–0:10:00")
    text = Text("{what}: unexpected error ({error}).", what=what, error="KeyError")
    assert str(text) == "Transcribing 0:05:00–0:10:00: unexpected error (KeyError)."
    assert text.localized("es") == "Al transcribir 0:05:00–0:10:00: error inesperado (KeyError)."


def test_spanish_numbers():
    assert tr("es", "That question is {chars:,} characters long; keep it under {limit:,}.",
              chars=12345, limit=4000) == "Esa pregunta tiene 12.345 caracteres; acórtala a menos de 4.000."
    assert tr("en", "That question is {chars:,} characters long; keep it under {limit:,}.",
              chars=12345, limit=4000) == "That question is 12,345 characters long; keep it under 4,000."


# --- AppError ---

def test_app_error_keeps_its_english_and_redacts_both():
    e = AppError("The host {host} could not be found.", host="sk-abcdefghijklmnop.example")
    assert str(e) == "The host [redacted].example could not be found."
    assert e.localized("es") == "No se encontró el host [redacted].example."
    assert "sk-abc" not in repr(e.args)
    plain = AppError("A message from somewhere else {with braces}.")
    assert str(plain) == plain.localized("es") == "A message from somewhere else {with braces}."


def test_service_error_kwargs_are_not_params():
    e = ServiceError("{what}: {where} refused the API key (401). Check OPENAI_API_KEY.",
                     what=Text("Answering"), where=Text("the OpenAI API"), retryable=True, retry_after=2.0)
    assert e.retryable is True and e.retry_after == 2.0
    assert set(e.text.params) == {"what", "where"}
    assert e.localized("es") == "Al responder: la API de OpenAI rechazó la clave de API (401). Revisa OPENAI_API_KEY."


def test_error_from_a_text_and_pickled():
    text = Text("{name} has no audio track.", name="a.mp4")
    e = pickle.loads(pickle.dumps(UnsupportedMedia(text)))
    assert str(e) == "a.mp4 has no audio track."
    assert e.localized("es") == "a.mp4 no tiene pista de audio."
    s = pickle.loads(pickle.dumps(ServiceError("Stopped.", retryable=True, retry_after=3.0)))
    assert (s.retryable, s.retry_after, s.localized("es")) == (True, 3.0, "Detenido.")


# --- Real errors from real code paths ---

def test_empty_file(tmp_path):
    path = tmp_path / "vacío.mp3"
    path.write_bytes(b"")
    with pytest.raises(UnsupportedMedia) as err:
        decode.probe(path)
    assert str(err.value) == "vacío.mp3 is empty (0 bytes)."
    assert err.value.localized("es") == "vacío.mp3 está vacío (0 bytes)."
    with pytest.raises(UnsupportedMedia) as err:
        decode.check_file(tmp_path / "missing.wav")
    assert err.value.localized("es") == f"No se encontró el archivo: {tmp_path / 'missing.wav'}"


def test_not_media(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("just some text, not audio\n" * 50)
    with pytest.raises(UnsupportedMedia) as err:
        decode.probe(path)
    assert err.value.localized("es").startswith("notes.mp3 no es ")
    assert str(err.value).startswith("notes.mp3 is not ")


def test_too_large(tmp_path):
    from core.transcribe.limits import check_limits

    path = tmp_path / "big.wav"
    path.write_bytes(b"\0" * 3 * 2**20)
    info = decode.MediaInfo(duration=60.0, has_audio=True, container="wav")
    with pytest.raises(TooLarge) as err:
        check_limits(path, info, Settings(max_file_mb=1.5))
    assert str(err.value) == "big.wav is 3 MB; the limit is 1.5 MB (MAX_FILE_MB)."
    assert err.value.localized("es") == "big.wav ocupa 3 MB; el límite es de 1,5 MB (MAX_FILE_MB)."


def test_url_validation():
    with pytest.raises(fetch.UrlRefused) as err:
        fetch.check_url("ftp://example.com/a.mp3")
    assert str(err.value) == "Only http:// and https:// links can be fetched."
    assert err.value.localized("es") == "Solo se pueden descargar enlaces http:// y https://."
    with pytest.raises(fetch.UrlRefused) as err:
        fetch.check_url("https://user:pw@example.com/a.mp3")
    assert err.value.localized("es") == "No se descargan enlaces con nombre de usuario o contraseña."
    with pytest.raises(fetch.UrlRefused) as err:
        fetch.check_address("127.0.0.1", allow_private=False)
    assert err.value.localized("es") == ("Ese enlace apunta a una dirección privada o interna, a la que este "
                                         "servidor no accede.")


def test_question_too_long():
    with pytest.raises(AppError) as err:
        chat.check_question("¿" + "a" * 5000 + "?")
    assert str(err.value) == "That question is 5,002 characters long; keep it under 4,000."
    assert err.value.localized("es") == "Esa pregunta tiene 5.002 caracteres; acórtala a menos de 4.000."
    with pytest.raises(AppError) as err:
        chat.check_question("   ")
    assert err.value.localized("es") == "Escribe primero una pregunta."


def test_bad_setting():
    with pytest.raises(AppError) as err:
        Settings.from_env({"MAX_RETRIES": "many"})
    assert str(err.value) == "MAX_RETRIES must be a number, not 'many'."
    assert err.value.localized("es") == "MAX_RETRIES debe ser un número, no 'many'."
    with pytest.raises(AppError) as err:
        Settings.from_env({"CHUNK_SECONDS": "5"})
    assert str(err.value) == "CHUNK_SECONDS must be at least 10."
    assert err.value.localized("es") == "CHUNK_SECONDS debe ser como mínimo 10."
    with pytest.raises(AppError) as err:
        Settings.from_env({"TRANSCRIBE_BACKEND": "cloud"})
    assert str(err.value) == "TRANSCRIBE_BACKEND must be one of auto, openai, local."


def _response(status: int, **headers) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://x/v1/chat/completions"))


def test_service_errors_in_spanish():
    openai_settings = Settings(api_key="test")
    server = Settings(api_key="test", base_url="http://localhost:8000/v1")

    limited = openai.RateLimitError("slow down", response=_response(429, **{"retry-after": "7"}), body=None)
    e = explain(limited, server, model="gpt-4o", what=ANSWERING, chat=True)
    assert str(e) == ("Answering: the server at localhost:8000 is rate limiting requests (429). Wait a minute, "
                      "or lower TRANSCRIBE_CONCURRENCY.")
    assert e.localized("es") == ("Al responder: el servidor localhost:8000 está limitando las peticiones (429). "
                                 "Espera un minuto o reduce TRANSCRIBE_CONCURRENCY.")
    assert e.retryable and e.retry_after == 7.0

    quota = openai.RateLimitError("quota", response=_response(429),
                                  body={"code": "insufficient_quota", "message": "You exceeded your quota"})
    e = explain(quota, openai_settings, model="whisper-1", what=Text("Transcribing {span}", span="0:00:00–0:03:00"))
    assert str(e).startswith("Transcribing 0:00:00–0:03:00: the OpenAI account has no credit or quota left.")
    assert e.localized("es") == ("Al transcribir 0:00:00–0:03:00: a la cuenta de OpenAI no le queda crédito ni "
                                 "cuota. Añade crédito o sube el límite en la configuración de facturación y "
                                 "vuelve a intentarlo.")

    denied = openai.AuthenticationError("bad key sk-abcdefghijklmnop", response=_response(401), body=None)
    e = explain(denied, openai_settings, model="gpt-4o", what=ANSWERING, chat=True)
    assert str(e) == "Answering: the OpenAI API refused the API key (401). Check OPENAI_API_KEY."
    assert e.localized("es") == "Al responder: la API de OpenAI rechazó la clave de API (401). Revisa OPENAI_API_KEY."

    refused = openai.BadRequestError("no", response=_response(400), body={"error": {"message": "Bad file."}})
    e = explain(refused, server, model="whisper-1", what=Text("Transcribing {span}", span="1:00:00–1:03:00"))
    assert str(e) == "Transcribing 1:00:00–1:03:00: the server at localhost:8000 refused the request (400): Bad file."
    assert e.localized("es") == ("Al transcribir 1:00:00–1:03:00: el servidor localhost:8000 rechazó la "
                                 "petición (400): Bad file.")

    no_chat = openai.NotFoundError("nope", response=_response(404), body={"detail": "Not Found"})
    e = explain(no_chat, server, model="gpt-4o", what=ANSWERING, chat=True)
    assert str(e).startswith("Answering: the server at localhost:8000 has no chat endpoint (404 on /chat/completions).")
    assert e.localized("es").startswith("Al responder: el servidor localhost:8000 no tiene endpoint de chat")

    timeout = openai.APITimeoutError(request=httpx.Request("POST", "http://x"))
    e = explain(timeout, Settings(api_key="test", request_timeout=2.5), model="gpt-4o",
                what=ANSWERING, chat=True)
    assert str(e) == "Answering: the OpenAI API did not answer within 2.5 s (REQUEST_TIMEOUT)."
    assert e.localized("es") == "Al responder: la API de OpenAI no respondió en 2,5 s (REQUEST_TIMEOUT)."


def test_retired_model_in_spanish():
    gone = openai.NotFoundError("gone", response=_response(404),
                                body={"error": {"code": "model_not_found",
                                                "message": "The model `whisper-1` has been deprecated"}})
    settings = Settings(api_key="test", transcribe_model="whisper-1")  # chosen: nothing takes over
    e = explain(gone, settings, model="whisper-1", what=Text("Transcribing {span}", span="0:00:00–0:03:00"))
    english, spanish = str(e), e.localized("es")
    assert english.startswith("whisper-1 has been shut down by OpenAI; set TRANSCRIBE_MODEL")
    assert spanish.startswith("whisper-1 ha sido retirado por OpenAI; pon TRANSCRIBE_MODEL")


def test_every_visitor_form_has_its_spanish():
    """What a visitor is told instead of the owner's message (`VISITOR`), and the owner's message, both in Spanish."""
    import importlib
    import pkgutil

    from core.i18n import VISITOR

    for module in pkgutil.walk_packages([str(CORE)], prefix="core."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    assert len(VISITOR) >= 30
    missing = [t for pair in VISITOR.items() for t in pair if t not in ES]
    assert missing == []
    assert all(_fields(visitor) <= _fields(owner) | {"name"} for owner, visitor in VISITOR.items()), \
        "a visitor form is filled with the owner's values"
