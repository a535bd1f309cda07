"""The limits a recording is held to (MAX_FILE_MB, MAX_DURATION_MINUTES), checked before anything
is decoded or sent, and the notes of a transcript that covers less than the recording."""

from __future__ import annotations

from pathlib import Path

from ..audio import decode
from ..config import Settings
from ..errors import TooLarge, UnsupportedMedia
from ..i18n import Note, Text, visitor_forms
from ..transcript import format_timestamp

# The limits, for a visitor: without the settings that set them.
visitor_forms({
    "{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).":
        "{name} is {mb:.0f} MB; the limit on this server is {limit:g} MB.",
    "{name} is {duration} long; the limit is {limit:g} min (MAX_DURATION_MINUTES).":
        "{name} is {duration} long; the limit on this server is {limit:g} min.",
    "{name} goes on past the {limit:g} min limit (MAX_DURATION_MINUTES), though its header says {header}: only the "
    "first {kept} were transcribed.": "{name} goes on past this server's {limit:g} min limit, though its header says "
                                      "{header}: only the first {kept} were transcribed.",
})


def check_limits(path: Path, info: decode.MediaInfo, settings: Settings) -> float:
    """Refuse, before anything is decoded, sent or paid for, what is over the configured limits."""
    size = path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        raise TooLarge("{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).",
                       name=path.name, mb=size / 2**20, limit=settings.max_file_mb)
    if not info.has_audio:
        raise UnsupportedMedia("{name} has no audio track.", name=path.name)
    duration = info.duration if info.duration is not None else decode.measure_duration(
        path, max_seconds=settings.max_duration_minutes * 60)
    if duration > settings.max_duration_minutes * 60:
        raise TooLarge("{name} is {duration} long; the limit is {limit:g} min (MAX_DURATION_MINUTES).",
                       name=path.name, duration=format_timestamp(duration, hours=True),
                       limit=settings.max_duration_minutes)
    return duration


def damage_note(name: str, duration: float, expected: float | None) -> Note:
    if expected:
        return Note(Text("{name} seems damaged or cut short: the transcript covers the {covered} of {expected} that "
                         "could be decoded.", name=name, covered=format_timestamp(duration),
                         expected=format_timestamp(expected)))
    return Note(Text("{name} seems damaged or cut short: the transcript covers the {covered} that could be decoded.",
                     name=name, covered=format_timestamp(duration)))


def cut_note(name: str, limit_minutes: float, expected: float | None, kept: float) -> Note:
    """The note of a recording decoded past MAX_DURATION_MINUTES, though its header said less."""
    return Note(Text("{name} goes on past the {limit:g} min limit (MAX_DURATION_MINUTES), though its header says "
                     "{header}: only the first {kept} were transcribed.", name=name, limit=limit_minutes,
                     header=format_timestamp(expected or 0, hours=True), kept=format_timestamp(kept, hours=True)))
