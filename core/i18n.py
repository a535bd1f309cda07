"""Messages in the visitor's language: English, or Spanish.

Gettext style: a message is its English template (`str.format` syntax), which is also the key
of its translation, and the values it is filled with (`Text`). The English text is what logs,
the CLI and `str()` show; `Text.localized` fills the translation of the template instead, if
there is one (`ES`, in `i18n_es`), else the English template. Values that are `Text` themselves (the "what"
of a service error, "Transcribing 0:05:00–0:10:00") are localized the same way, so a message
built from pieces is translated whole. Values that are not (file names, model names, a
server's or ffmpeg's own words) are shown as they are.

Formatting never raises: a missing or unfit value falls back to the English text, and at worst
to the template itself. A `Text` without values is not formatted at all, so a plain message may
hold braces.

In Spanish, numbers take a decimal comma ("2,5 MB") and, where the template groups digits
(`{n:,}`), a point between thousands ("12.000").

`language_of` picks the language from an Accept-Language header.
"""

from __future__ import annotations

import string

from .i18n_es import ES  # the Spanish catalogue

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"

MAX_HEADER_CHARS = 4096  # of an Accept-Language header that is read; the rest is ignored
MAX_HEADER_ITEMS = 64  # languages read from it


def _quality(params: str) -> float | None:
    """The q-value of one Accept-Language item's parameters (";q=0.8"), 1 when absent, None
    when it is not a number from 0 to 1."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            value = value.strip()
            if not value or len(value) > 8 or not all(c.isdigit() or c == "." for c in value):
                return None
            try:
                q = float(value)
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def language_of(accept_language: str | None) -> str:
    """The language of `LANGUAGES` a browser prefers, from its Accept-Language header
    ("es-ES,es;q=0.9,en;q=0.8" -> "es"); English when it names none of them. Never raises."""
    if not isinstance(accept_language, str) or not accept_language:
        return DEFAULT_LANGUAGE
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in accept_language[:MAX_HEADER_CHARS].split(",")[:MAX_HEADER_ITEMS]:
        tag, _, params = item.partition(";")
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        if primary == "*":
            primary = DEFAULT_LANGUAGE  # "any language": ours
        if primary not in LANGUAGES:
            continue
        q = _quality(params)
        if q is not None and q > best_q:  # the first of equals wins
            best, best_q = primary, q
    return best


_ES_NUMBERS = str.maketrans({",": ".", ".": ","})


class _Formatter(string.Formatter):
    """`str.format`, with numbers written the way `lang` writes them."""

    def __init__(self, lang: str):
        super().__init__()
        self.lang = lang

    def format_field(self, value, format_spec):
        text = super().format_field(value, format_spec)
        if self.lang == "es" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return text.translate(_ES_NUMBERS)
        return text


# What a web visitor is told instead of a message meant for the owner (the CLI, the log) that
# names a server, a setting, a folder or a file: the owner's template -> the visitor's, filled
# with the same values. Each module adds the forms of the messages it writes (`visitor_forms`);
# the Spanish of both is in ES.
VISITOR: dict[str, str] = {}


def visitor_forms(forms: dict[str, str]) -> dict[str, str]:
    """Add the visitor's forms of some owner messages to `VISITOR` (and give them back)."""
    VISITOR.update(forms)
    return forms


class Text:
    """A message to translate: its English template and the values it is filled with."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: object):
        self.template = str(template)
        self.params = params

    def localized(self, lang: str | None) -> str:
        """The message in `lang` (English for a language without a catalogue or a template
        without a translation). Never raises."""
        lang = str(lang or "").lower().split("-")[0]
        translated = CATALOGUES.get(lang, {}).get(self.template)
        if not self.params:
            return self.template if translated is None else translated
        if translated is not None and (text := _try_fill(translated, self.params, lang)) is not None:
            return text
        text = _try_fill(self.template, self.params, DEFAULT_LANGUAGE)  # a broken translation: in English
        return self.template if text is None else text

    def for_visitor(self) -> Text:
        """This message as a web visitor is told it: its `VISITOR` form (the values' too)."""
        params = {key: value.for_visitor() if isinstance(value, Text) else value for key, value in self.params.items()}
        return Text(VISITOR.get(self.template, self.template), **params)

    def __str__(self) -> str:
        return self.localized(DEFAULT_LANGUAGE)

    def __repr__(self) -> str:
        params = "".join(f", {key}={value!r}" for key, value in self.params.items())
        return f"Text({self.template!r}{params})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Text):
            return NotImplemented
        return self.template == other.template and self.params == other.params

    def __hash__(self) -> int:
        return hash(self.template)


def _try_fill(template: str, params: dict, lang: str) -> str | None:
    """`template` filled with `params` (those that are `Text` in `lang`), None if it cannot be."""
    try:
        values = {key: value.localized(lang) if isinstance(value, Text) else value for key, value in params.items()}
        return _Formatter(lang).vformat(template, (), values)
    except Exception:  # noqa: BLE001 - a missing or unfit value: a message must show all the same
        return None


class Note(str):
    """A note for the user (`Progress.message`, a transcript's `meta["notes"]`) that is plain
    English text wherever a `str` goes (logs, the CLI, JSON exports), and that the page can still
    show in the visitor's language: `Note(Text(template, **params)).localized(lang)`."""

    def __new__(cls, text: Text | str):
        text = text if isinstance(text, Text) else Text(str(text))
        note = super().__new__(cls, str(text))
        note.text = text
        return note

    def localized(self, lang: str | None) -> str:
        return self.text.localized(lang)

    def __reduce__(self):  # copies and pickles keep the translation
        return Note, (self.text,)


def localized(message: object, lang: str | None) -> str:
    """A note or message in `lang`: a `Note` or `Text` by its template, a plain string when it is a
    catalogue key (the notes without values), else as it is."""
    if isinstance(message, (Note, Text)):
        return message.localized(lang)
    return Text(str(message)).localized(lang)


def text_of(message: object) -> Text:
    """A `Note`'s or a `Text`'s own `Text` (its template, to translate), else the message as a plain `Text`."""
    return message.text if isinstance(message, Note) else message if isinstance(message, Text) else Text(str(message))


def to_visitor(message: object, lang: str | None) -> str:
    """`localized` for a web visitor (the page, the API, the MCP tools): a note or message in its
    `VISITOR` form, without the servers, settings or folders the owner's form names."""
    return text_of(message).for_visitor().localized(lang)


def piece_to_visitor(piece: str, lang: str | None) -> str:
    """A piece of an answer for a web visitor: a model's words as they are, a `Note` of ours
    (the passages-only header) in its visitor's form."""
    return to_visitor(piece, lang) if isinstance(piece, Note) else piece


def tr(lang: str | None, template: str, /, **params: object) -> str:
    """`template` filled with `params`, in `lang`: `Text(template, **params).localized(lang)`."""
    return Text(template, **params).localized(lang)


CATALOGUES: dict[str, dict[str, str]] = {"es": ES}
