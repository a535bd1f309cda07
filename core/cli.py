"""Command line: `python -m core transcribe|ask|summary|info FILE`, `python -m core add FOLDER_OR_FILES...`
and `python -m core library list|search|ask|remove|rename|rebuild`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from .answer import chat
from .audio import chunking
from .service import models
from .answer import summary
from .config import Settings
from .errors import AppError, Cancelled
from .transcribe.pipeline import transcribe_file
from .transcribe.plan import plan
from .transcribe.progress import Progress
from .exports import EXPORTERS
from .library import LOCAL, sync as library
from .library import cli as library_cli
from .transcript import Transcript, format_timestamp

# Exit codes: 0 done, 1 an error (one `error:` line), 130 stopped (Ctrl-C). CUT: the output is
# there but covers only the first MAX_DURATION_MINUTES of a recording that goes on past them, so
# a script that checks for 0 never takes a cut transcript for the whole one.
EXIT_CUT = 3


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(transcribe_model=args.model, language=args.language, prompt=args.prompt,
                             concurrency=args.concurrency, chunk_seconds=args.chunk_seconds,
                             backend=args.backend, diarization=args.speakers)


class _Bar:
    """A tqdm bar on stderr, in seconds of audio; silent when stderr is not a terminal."""

    def __init__(self, name: str):
        self.name = name
        self.bar = None
        self.said: set[str] = set()  # messages already written, so a note is not written twice

    def __call__(self, p: Progress) -> None:
        from tqdm import tqdm

        if p.cached and p.stage == "done":
            return
        if p.message:
            self.said.add(str(p.message))
            tqdm.write(str(p.message), file=sys.stderr)
            return
        if self.bar is None and p.seconds_total:
            self.bar = tqdm(total=round(p.seconds_total), unit="s", desc=self.name, file=sys.stderr,
                            disable=None, leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                            "{n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}]{postfix}")
        if self.bar is not None:
            self.bar.n = min(round(p.seconds_done), self.bar.total)
            if p.chunks_done:
                self.bar.set_postfix_str(f"chunk {p.chunks_done}/{p.chunks_total or '?'}", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _stop_on_interrupt(cancel: threading.Event):
    """The first Ctrl-C stops the job the way a closed tab does: nothing new is sent, nothing is
    retried, what is in flight finishes and is cached. A second Ctrl-C quits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame) -> None:
        if cancel.is_set():
            os._exit(130)
        cancel.set()
        if sys.stderr.isatty():
            print("\nStopping: the parts in flight finish and are saved (Ctrl-C again to quit now)…",
                  file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warn_about_models(settings: Settings, *, chat: bool = True) -> None:
    """A line on stderr for each model in use that shuts down within WARN_DAYS. Printed once the
    recording has been read, so that an error stays the one line a failed command prints; not
    for a refused default, whose successor says so when it takes over."""
    for line in models.warnings(settings, chat=chat, unannounced=True):
        print(f"warning: {line}", file=sys.stderr)


def _transcribe(path: str, settings: Settings, use_cache: bool = True) -> Transcript:
    """The transcript, then each of its notes not yet said on stderr (a cut at the limit, damaged
    audio, speech left out...): the page shows them, and the CLI must not hide them. It is put
    in the local library, titled with the file's name."""
    bar = _Bar(Path(path).name[:30])
    cancel = threading.Event()
    try:
        with _stop_on_interrupt(cancel):
            transcript = transcribe_file(Path(path), settings, bar, use_cache=use_cache, cancel=cancel)
    finally:
        bar.close()
    for note in map(str, transcript.meta.notes):
        if note not in bar.said:
            print(f"warning: {note}", file=sys.stderr)
    library.saved(settings, transcript, LOCAL, Path(path).name, fresh=False)  # this machine's library
    return transcript


def _exit_code(transcript: Transcript) -> int:
    """0, or EXIT_CUT when the transcript stops at MAX_DURATION_MINUTES before the recording does."""
    return EXIT_CUT if transcript.meta.cut_at_limit else 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Print the transcript (txt with [hh:mm:ss] marks, srt, vtt, json, or rttm's speaker turns)."""
    settings = _settings(args)
    models.prefetch(settings, chat=False)  # the chat model is not used here
    transcript = _transcribe(args.file, settings, use_cache=not args.no_cache)
    text = EXPORTERS[args.format](transcript)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()  # the transcript first, then any warning after it
    _warn_about_models(settings, chat=False)
    return _exit_code(transcript)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question from the recording; without a question, chat until end of input."""
    settings = _settings(args)
    models.prefetch(settings)
    transcript = _transcribe(args.file, settings)
    _warn_about_models(settings)
    history: list[dict] = []
    questions = [args.question] if args.question else _read_questions()
    for question in questions:
        reply = chat.ask(transcript, question, history, settings, on_progress=_parts_read)
        answer = write_stream(reply.stream)
        if reply.notice:  # after the answer: one made in parts knows it all only then
            print(f"({reply.notice})", file=sys.stderr)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return _exit_code(transcript)


def write_stream(pieces) -> str:
    """Write an answer to stdout as it streams, then a newline; the whole answer."""
    answer = []
    for piece in pieces:
        answer.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return "".join(answer)


def _parts_read(done: int, total: int) -> None:
    """A long recording read in parts (a summary, a question about all of it), on a terminal."""
    if sys.stderr.isatty():
        print(f"\rReading the recording in parts: {done} of {total}", end="\n" if done == total else "",
              file=sys.stderr, flush=True)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print a summary and chapters ([mm:ss] Title); without a language model, chapters titled with keywords."""
    settings = _settings(args)
    models.prefetch(settings, chat=summary.uses_model(settings))
    transcript = _transcribe(args.file, settings)
    _warn_about_models(settings, chat=summary.uses_model(settings))
    result = summary.summarize(transcript, settings, on_progress=_parts_read)
    sys.stdout.write(summary.as_text(result) or "(nothing to summarize)\n")
    sys.stdout.flush()
    if notice := result.notice_in("en"):
        print(f"({notice})", file=sys.stderr)
    return _exit_code(transcript)


def _read_questions():
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("? " if interactive else "")
        except EOFError:
            return
        if line.strip():
            yield line


_NO_CHAT = "none (no language model: answers are the transcript's best passages)"


def cmd_info(args: argparse.Namespace) -> int:
    """Duration, chunk plan, estimated cost and the models' shutdown dates, before anything is sent."""
    settings = _settings(args)
    models.prefetch(settings)  # the catalogue only: nothing goes to the transcription endpoint
    p = plan(Path(args.file), settings)
    hours = p.duration >= 3600
    print(f"File:       {args.file}")
    print(f"Duration:   {format_timestamp(p.duration, hours=True)} ({p.duration:.1f} s)")
    local = settings.transcribe_backend == "local"
    day, used = models.current_date(), {s.chat: s for s in models.in_use(settings)}
    model = f"local {settings.local_model} (faster-whisper)" if local else models.describe(used[False], day)
    print(f"Model:      {model}")
    print(f"Chat model: {models.describe(used[True], day) if True in used else _NO_CHAT}")
    if p.utterances:  # hundreds of pieces: a summary, not a list
        print(f"Pieces:     {len(p.chunks)} utterance pieces of at most {chunking.PIECE_MAX_SECONDS:g} s (the model "
              f"returns text only: each piece's text gets the piece's times), {settings.concurrency} at a time; "
              f"{p.left_out_seconds:.0f} s of silence not sent")
    else:
        print(f"Chunks:     {len(p.chunks)} (target {settings.target_chunk_seconds:g} s, at most "
              f"{p.max_chunk_seconds:.0f} s and {settings.max_upload_mb:g} MB each, "
              f"{1 if local else settings.concurrency} at a time{'' if local else ', as ' + settings.upload_format})")
    for i, (start, end, hard) in enumerate([] if p.utterances else p.chunks, 1):
        how = "hard cut, overlapped" if hard else "cut in a pause" if i < len(p.chunks) else "end"
        print(f"  {i:3d}  {format_timestamp(start, hours=hours)} – {format_timestamp(end, hours=hours)}  {how}")
    cost = ("unknown for this model" if p.estimated_cost is None else
            "$0 (runs on this machine)" if local else f"${p.estimated_cost:.3f}")
    print(f"Estimated cost: {cost}{' (already cached: $0)' if p.cached else ''}")
    print(f"Cached:     {'yes' if p.cached else 'no'}")
    sys.stdout.flush()
    _warn_about_models(settings)
    return 0


def _transcription_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "openai", "local"],
                   help="where to transcribe (TRANSCRIBE_BACKEND; auto: OpenAI with a key, else local)")
    p.add_argument("--model", help="transcription model (TRANSCRIBE_MODEL)")
    p.add_argument("--language", help="spoken language, e.g. en, es (TRANSCRIBE_LANGUAGE)")
    p.add_argument("--prompt", help="vocabulary hint: names, jargon (TRANSCRIBE_PROMPT)")
    p.add_argument("--concurrency", type=int, help="requests in parallel (TRANSCRIBE_CONCURRENCY)")
    p.add_argument("--chunk-seconds", type=float, help="target chunk length (CHUNK_SECONDS)")
    p.add_argument("--speakers", metavar="auto|N|MIN-MAX|off",
                   help="speakers to find: auto, a count (3), a range (2-4) or off (DIARIZATION)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and cache events")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, extra in [("transcribe", cmd_transcribe, "format"), ("ask", cmd_ask, "question"),
                              ("summary", cmd_summary, None), ("info", cmd_info, None)]:
        p = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        p.set_defaults(func=func)
        p.add_argument("file", help="audio or video file")
        if extra == "question":
            p.add_argument("question", nargs="?", help="omit it to ask several, one per line")
        _transcription_options(p)
        if extra == "format":
            p.add_argument("-f", "--format", choices=sorted(EXPORTERS), default="txt")
            p.add_argument("-o", "--output", help="write to this file instead of standard output")
            p.add_argument("--no-cache", action="store_true", help="transcribe again even if cached")
    library_cli.register(sub, _transcription_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except Cancelled as e:
        print(f"error: {e}", file=sys.stderr)
        return 130
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: one line for the user, the details in the log
        logging.getLogger("core").info("unexpected error", exc_info=True)
        print(f"error: something went wrong inside the program ({type(e).__name__}); run with -v "
              "for details and please report it.", file=sys.stderr)
        return 1
