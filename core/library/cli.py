"""`python -m core library list|search|ask|remove|rename|rebuild` and `python -m core add FOLDER_OR_FILES...`.

The command line is the single user of this machine: it works on the local library (`LOCAL`).
Recordings are named on the command line by their id, a unique start of it (8 characters or
more), or their exact title. Exit codes: 0 done; 1 an error (one `error:` line), or a search
that found nothing, or an `add` where some files failed (each said on its own `warning:` line).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from ..audio.fetch import MEDIA_EXTENSIONS
from ..config import Settings
from ..errors import AppError, Cancelled
from ..transcript import format_timestamp
from . import LOCAL, ask, sync
from .store import Library, Recording

MIN_ID_PREFIX = 8


def _library() -> tuple[Library, Settings]:
    settings = Settings.from_env()
    return sync.open_library(settings), settings


def _date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise AppError("Not a date: {text} (write it as 2026-11-20).", text=text) from None


def resolve(library: Library, ref: str) -> Recording:
    """The local library's recording named by `ref` (see the module docstring)."""
    mine = library.recordings(LOCAL)
    found = [r for r in mine if r.id == ref] or [r for r in mine if r.title == ref] or (
        [r for r in mine if r.id.startswith(ref.lower())] if len(ref) >= MIN_ID_PREFIX else [])
    if not found:
        raise AppError("No recording {ref} in your library (see `python -m core library list`).", ref=ref)
    if len(found) > 1:
        raise AppError("{ref} names {n} recordings: give more of the id.", ref=ref, n=len(found))
    return found[0]


def cmd_list(args: argparse.Namespace) -> int:
    """The recordings of your library, newest first: id, date added, duration, title, summary."""
    library, _ = _library()
    for r in library.recordings(LOCAL):
        summary = f" · {r.summary}" if r.summary else ""
        print(f"{r.id[:12]}  {datetime.fromtimestamp(r.added):%Y-%m-%d %H:%M}  "
              f"{format_timestamp(r.duration, hours=True):>8}  {r.title}{summary}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Sentences of your recordings that say these words ("quoted" for a phrase), best first."""
    library, _ = _library()
    hits = sync.search(library, LOCAL, args.query, args.limit)
    for hit in hits:
        print(f"{hit.line()}  ({hit.recording[:12]})")
    if not hits:
        print("nothing in your library matches.", file=sys.stderr)
    return 0 if hits else 1


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question from your recordings (all, those named, or those added in a date range)."""
    from ..cli import _parts_read, write_stream

    library, settings = _library()
    ids = [resolve(library, ref).id for ref in args.recording] if args.recording else None
    answer = ask.ask(library, LOCAL, args.question, settings, ids=ids, since=_date(args.since),
                     until=_date(args.until), on_progress=_parts_read)
    text = write_stream(answer.stream)
    for link in ask.links(text, answer.sources):
        print(f"  {link.citation} → {link.recording[:12]} at {format_timestamp(link.seconds)}")
    for notice in answer.notices:
        print(f"({notice.localized('en')})", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Take a recording out of your library (its cached transcript goes too)."""
    library, settings = _library()
    recording = resolve(library, args.recording)
    sync.remove(settings, LOCAL, recording.id)
    print(f"removed: {recording.title}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    """Give a recording of your library another title."""
    library, _ = _library()
    recording = resolve(library, args.recording)
    if not args.title.strip():
        raise AppError("A title cannot be empty.")
    library.retitle(LOCAL, recording.id, args.title)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Make the library's index again from the cached transcripts."""
    settings = Settings.from_env()
    done = sync.rebuild(settings, on_progress=lambda n, total: print(f"\r{n}/{total}", end="", file=sys.stderr)
                        if sys.stderr.isatty() else None)
    print(f"indexed {done.indexed} transcripts ({done.adopted} added to your library), "
          f"dropped {done.dropped} no longer cached")
    _embed(sync.open_library(settings))
    return 0


def media_files(paths: list[str]) -> list[Path]:
    """The files named, and the recordings (by extension) in the folders named, in order, once each."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower().lstrip(".") in MEDIA_EXTENSIONS)
        elif path.exists():
            found.append(path)
        else:
            raise AppError("File not found: {path}", path=name)
    return list(dict.fromkeys(p.resolve() for p in found))


def cmd_add(args: argparse.Namespace) -> int:
    """Transcribe recordings (files, or every recording in a folder) into your library, skipping
    those already there; a line of progress for each."""
    from ..cli import _settings, _transcribe
    from ..service import models
    from ..transcribe.pipeline import lookup

    settings = _settings(args)
    files = media_files(args.paths)
    if not files:
        raise AppError("No recordings there (looked for: {kinds}).", kinds=", ".join(sorted(MEDIA_EXTENSIONS)))
    models.prefetch(settings, chat=False)
    library, failed = sync.open_library(settings), 0
    for n, path in enumerate(files, 1):
        step = f"[{n}/{len(files)}] {path.name}"
        try:
            hit = lookup(path, settings)
            if hit is not None and library.holds(LOCAL, hit.meta.id):
                print(f"{step}: already in the library", flush=True)
                continue
            transcript = _transcribe(str(path), settings)
            print(f"{step}: added ({format_timestamp(transcript.duration, hours=True)})", flush=True)
        except Cancelled:
            raise
        except AppError as e:
            failed += 1
            print(f"{step}: failed", flush=True)
            print(f"warning: {path.name}: {e}", file=sys.stderr, flush=True)
    _embed(library)
    return 1 if failed else 0


def _embed(library: Library) -> None:
    """Make the vectors that searching by meaning needs, saying how far it is on a terminal."""
    def progress(done: int) -> None:
        if sys.stderr.isatty():
            print(f"\rReading the meaning of the sentences: {done}", end="", file=sys.stderr, flush=True)
    if sync.embed_pending(library, progress) and sys.stderr.isatty():
        print(file=sys.stderr)


def register(sub: argparse._SubParsersAction, transcription_options) -> None:
    """Add `library ...` and `add` to the CLI's subcommands."""
    lib = sub.add_parser("library", help="your library of recordings: list, search, ask, remove",
                         description=__doc__).add_subparsers(dest="action", required=True)
    for name, func in [("list", cmd_list), ("search", cmd_search), ("ask", cmd_ask), ("remove", cmd_remove),
                       ("rename", cmd_rename), ("rebuild", cmd_rebuild)]:
        p = lib.add_parser(name, help=func.__doc__, description=func.__doc__)
        p.set_defaults(func=func)
        if name == "search":
            p.add_argument("query")
            p.add_argument("-n", "--limit", type=int, default=20, help="results at most (20)")
        elif name == "ask":
            p.add_argument("question")
            p.add_argument("-r", "--recording", action="append", help="ask only these (repeat it for several)")
            p.add_argument("--since", help="only recordings added on or after this date (2026-11-20)")
            p.add_argument("--until", help="only recordings added before this date")
        elif name in ("remove", "rename"):
            p.add_argument("recording", help="its id, the start of its id, or its title")
            if name == "rename":
                p.add_argument("title")
    add = sub.add_parser("add", help=cmd_add.__doc__, description=cmd_add.__doc__)
    add.set_defaults(func=cmd_add)
    add.add_argument("paths", nargs="+", metavar="FOLDER_OR_FILE")
    transcription_options(add)
