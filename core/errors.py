"""Errors shown to the user.

Every `AppError` message is meant to be displayed as it is: one or two sentences that say what
went wrong and what the user can do. The UI turns them into `gr.Error` in the visitor's language
(`AppError.localized`), the CLI prints them in English (`str`) and exits 1. Library errors are
wrapped with ``raise ... from e`` so the cause stays in tracebacks for developers, never in front
of users.

A message is an English template and its values, never a finished f-string, so that it can be
translated (`core.i18n`): ``TooLarge("{name} is {mb:.0f} MB; ...", name=path.name, mb=...)``.
Every template needs its translation in `core.i18n.ES` (tests/test_i18n.py checks).
"""

from __future__ import annotations

import re

from .i18n import Text

# Anything shaped like an OpenAI key ("sk-...", "sk-proj-...") or a bearer token.
_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+[A-Za-z0-9_\-.*]+)")
# The user name and password of a URL ("http://admin:hunter2@host"), up to the host.
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]+@")


def redact(text: str) -> str:
    """Remove anything that looks like an API key, and the credentials of any URL, from a text
    before it is shown or logged."""
    return _URL_CREDENTIALS.sub("***@", _SECRET.sub("[redacted]", text))


class AppError(Exception):
    """An error whose message is displayed to the user.

    `message` is an English template filled with `params` (or a `Text`); `str(error)` is the
    English message, `error.localized(lang)` the message in another language. Both are redacted.

    `str()` is for whoever runs the program (the CLI, the log): it may name a server, a setting to
    change. `visitor`, when given, says the same to a visitor of the page, who can change neither,
    without them (filled with the same `params`); `for_visitor` is the one a visitor is shown.
    """

    def __init__(self, message: str | Text, /, *, visitor: Text | None = None, **params: object):
        if isinstance(message, Text):
            text = Text(message.template, **{**message.params, **params}) if params else message
        else:
            text = Text(message, **params)
        super().__init__(redact(str(text)))
        self.text = text
        self.visitor = Text(visitor.template, **{**params, **visitor.params}) if visitor is not None else None

    @property
    def for_visitor(self) -> Text:
        """The message a web visitor is shown: `visitor` if there is one, else the message's
        `VISITOR` form (`Text.for_visitor`: the message itself when it names nothing internal)."""
        return self.visitor if self.visitor is not None else self.text.for_visitor()

    def localized(self, lang: str | None) -> str:
        """The message in `lang` ("en", "es"; English for any other)."""
        return redact(self.text.localized(lang))


class MissingApiKey(AppError):
    """No API key where one is needed."""


class UnsupportedMedia(AppError):
    """The file cannot be read as audio."""


class ServiceError(AppError):
    """The transcription or chat service refused or failed a request."""

    def __init__(self, message: str | Text, /, *, retryable: bool = False, retry_after: float | None = None,
                 **params: object):
        super().__init__(message, **params)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked to wait, if it said


class TranscriptionFailed(AppError):
    """Some part of the recording could not be transcribed; the rest is kept in the cache."""


class NoSpeech(AppError):
    """The recording has no speech to transcribe (silence, noise, music)."""


class TooLarge(AppError):
    """Over a configured size or duration limit; said before anything is uploaded or paid for."""


class Cancelled(AppError):
    """The job was stopped (Ctrl-C, a closed tab); what finished is cached."""


class NoSpeakers(AppError):
    """Asked for what only speakers give (an RTTM export) of a transcript without them."""
