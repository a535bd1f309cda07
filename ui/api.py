"""The app's endpoints for programs: `/transcribe` and `/ask` for API clients (gradio_client),
which keep a session; and the tools for AI agents (MCP, and any API client), which are
stateless: the recording's id carries the context. All go through the same job path as the page.
What a signed-in caller transcribes joins their library, as on the page (`_finished`)."""

from __future__ import annotations

import json

import gradio as gr

from core.answer import chat
from core.answer import summary as summaries
from core.exports import to_lines, to_txt
from core.i18n import piece_to_visitor, to_visitor, tr
from core.job import Done, Failed, Jobs, Source, job_settings, visitor_settings
from core.transcript import Transcript, speaker_stats

from .state import Session, forget
from .status import failure, lang_of, summary_line
from .visitor import user_of, visitor_of


async def _finished(jobs: Jobs, source: Source, settings, request: gr.Request | None, lang: str) -> Transcript:
    """The transcript of a source through the job path (no player's copy), or a `gr.Error`; the
    caller, known by their address, is charged for it. A signed-in caller's transcript joins their
    library; an anonymous caller's joins none but the local one of a single-user app (their ids
    reach it: `LibraryTools`)."""
    async for event in jobs.transcribe(source, settings, visitor=visitor_of(request, jobs.base, page=False),
                                       owner=user_of(request)):
        if isinstance(event, Failed):
            raise gr.Error(failure(event.error, lang))
        if isinstance(event, Done):
            return event.transcript
    raise gr.Error(failure(RuntimeError("the job ended without a transcript"), lang))


class ApiHandlers:
    def __init__(self, jobs: Jobs):
        self.jobs, self.base = jobs, jobs.base

    async def transcribe(self, file, url, language_code, vocabulary_hint, api_key, current: Session | None,
                         request: gr.Request):
        """Transcribe an uploaded file or a link: returns (status, transcript text, export files).
        The text has a "[hh:mm:ss] " line per sentence, "[hh:mm:ss] Name: " when its speaker is
        known (the files then include an .rttm). Then `/ask` answers about it in the same client
        session."""
        lang = lang_of(request)
        try:
            source = Source.chosen("upload" if file else "link", file, None, url)
            settings = job_settings(self.base, api_key, language_code, vocabulary_hint)
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None
        transcript = await _finished(self.jobs, source, settings, request, lang)
        forget(current)
        folder = self.jobs.folders.new("session-", owner=getattr(request, "session_hash", None))
        files = self.jobs.exports(transcript, folder)
        return (Session(transcript, folder), summary_line(transcript, lang), to_txt(transcript),
                [str(f) for f in files])

    def ask(self, question_text, api_key, current: Session | None, request: gr.Request):
        """Answer a question about the recording sent to `/transcribe`: the answer's text as it
        streams, its moments cited as [mm:ss]. Follow-up questions see the earlier ones."""
        lang = lang_of(request)
        if not current:
            raise gr.Error(tr(lang, "Process a recording first, then ask about it."))
        answer = ""
        try:
            settings = visitor_settings(self.base, api_key)
            self.jobs.asking(visitor_of(request, self.base, page=False), settings, question_text)
            reply = chat.ask(current.transcript, question_text, current.api_history, settings)
            for piece in reply.stream:
                answer += piece_to_visitor(piece, lang)
                yield current, answer
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None
        if notice := reply.notice_in(lang):
            answer = f"{answer}\n\n*{notice}*"
            yield current, answer
        current.api_history += [{"role": "user", "content": question_text.strip()},
                                {"role": "assistant", "content": answer}]
        yield current, answer


class Tools:
    """The tools offered to AI agents; their docstrings are what the agents read."""

    def __init__(self, jobs: Jobs):
        self.jobs, self.base = jobs, jobs.base

    def _recording(self, recording_id: str, lang: str) -> Transcript:
        """The transcript of an id `transcribe_recording` gave (`Jobs.recording`): a capability
        nobody can compute from the file; any other id gets the same sentence."""
        transcript = self.jobs.recording(recording_id.strip() if isinstance(recording_id, str) else "")
        if transcript is None:
            raise gr.Error(tr(lang, "No recording has that id here: transcribe it first."))
        return transcript

    async def transcribe_recording(self, media: str, language: str = "", vocabulary: str = "",
                                   request: gr.Request = None) -> str:
        """Transcribe a recording, with a timestamp on every line.

        Args:
            media: a link (https://...) to an audio or video file or to a video site's page, or the
                file itself as a data URL ("data:audio/mpeg;base64,...").
            language: the spoken language as an ISO 639-1 code ("en", "es"...); empty to detect it.
            vocabulary: names, jargon and spellings that appear in the recording (optional).

        Returns:
            JSON: {"id": the recording's id for ask_about_recording and summary_of_recording,
            "transcript": one line per sentence, "[mm:ss] text" ("[mm:ss] Name: text" when the
            speaker is known), "duration_seconds", "language", "notes": what the transcript
            leaves out or could not hear well, one sentence each (empty when nothing), and
            "cut_at_limit": true when the recording goes on past the server's length limit and only
            its beginning was transcribed}; with speakers also "speakers": [{"name", "seconds"
            spoken, "share" of the speech}], most talking first.
        """
        lang = lang_of(request)
        folder = self.jobs.folders.new("tool-", held=True)
        try:
            try:
                source = Source.from_tool(media, folder, self.base.max_file_mb)
            except Exception as e:
                raise gr.Error(failure(e, lang)) from None
            settings = job_settings(self.base, None, language, vocabulary)
            transcript = await _finished(self.jobs, source, settings, request, lang)
        finally:
            self.jobs.folders.remove(folder)
        result = {"id": self.jobs.public_id(transcript), "transcript": to_lines(transcript),
                  "duration_seconds": round(transcript.duration, 2), "language": transcript.language,
                  "notes": [to_visitor(n, lang) for n in transcript.meta.notes],
                  "cut_at_limit": transcript.meta.cut_at_limit}
        if stats := speaker_stats(transcript):
            result["speakers"] = [{"name": s.name, "seconds": round(s.seconds, 2), "share": round(s.share, 3)}
                                  for s in stats]
        return json.dumps(result, ensure_ascii=False)

    def ask_about_recording(self, recording_id: str, question: str, request: gr.Request = None) -> str:
        """Answer a question about a transcribed recording, only from what was said in it.

        Args:
            recording_id: the id transcribe_recording returned.
            question: the question, in any language.

        Returns:
            The answer, citing the moments it used as [mm:ss] (or [h:mm:ss]).
        """
        lang = lang_of(request)
        transcript = self._recording(recording_id, lang)
        try:
            self.jobs.asking(visitor_of(request, self.base, page=False), self.base, question)
            reply = chat.ask(transcript, question, [], self.base)
            answer = "".join(piece_to_visitor(piece, lang) for piece in reply.stream)
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None
        notice = reply.notice_in(lang)
        return f"{answer}\n\n({notice})" if notice else answer

    def summary_of_recording(self, recording_id: str, request: gr.Request = None) -> str:
        """The summary and chapters of a transcribed recording (made once, then cached).

        Args:
            recording_id: the id transcribe_recording returned.

        Returns:
            A few bullets, then the chapters as "[mm:ss] Title" lines (each time a segment start of
            the recording). Without a chat model: chapters by time titled with keywords, said so.
        """
        lang = lang_of(request)
        transcript = self._recording(recording_id, lang)
        try:
            self.jobs.asking(visitor_of(request, self.base, page=False), self.base, summary_of=transcript)
            return summaries.as_text(summaries.summarize(transcript, self.base), lang)
        except Exception as e:
            raise gr.Error(failure(e, lang)) from None

    def rename_speaker(self, recording_id: str, speaker: str, name: str, request: gr.Request = None) -> str:
        """Give a speaker of a transcribed recording a name, used from then on in its transcript,
        answers, summary and exports. Naming two speakers alike merges them into one.

        Args:
            recording_id: the id transcribe_recording returned.
            speaker: the speaker as the transcript names them now ("Speaker 2", or a name given before).
            name: the new name ("Ana"); empty to go back to "Speaker N".

        Returns:
            JSON: {"speakers": [{"name", "seconds" spoken, "share" of the speech}], most talking first}.
        """
        lang = lang_of(request)
        transcript = self._recording(recording_id, lang)
        wanted = (speaker or "").strip().casefold()
        label = next((k for k, v in transcript.meta.speakers.items() if wanted in (k.casefold(), v.casefold())), None)
        if label is None:
            raise gr.Error(tr(lang, "This recording has no speaker called {name}.", name=(speaker or "")[:60]))
        renamed = self.jobs.rename(transcript, self.base.diarization, label, name)
        return json.dumps({"speakers": [{"name": s.name, "seconds": round(s.seconds, 2), "share": round(s.share, 3)}
                                        for s in speaker_stats(renamed)]}, ensure_ascii=False)
