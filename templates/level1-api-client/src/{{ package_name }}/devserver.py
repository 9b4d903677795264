"""A local server speaking the services' protocols, for offline work and tests.

It answers both wire formats the client speaks, in the shapes the official SDKs parse:

- OpenAI style: multipart POST /v1/audio/transcriptions with the fields OpenAI
  documents (file, model, language, prompt, response_format = json | verbose_json |
  text | srt | vtt, temperature, timestamp_granularities[]); verbose_json segments carry
  every field of OpenAI's schema, and errors come as {"error": {"message", "type",
  "param", "code"}};
- Hugging Face style: POST /models/<model> with the raw audio bytes as the body;
  errors as {"error": message}, and while the model "loads" (`model_loading`
  seconds after start) a 503 with `estimated_time`, unless the request sends
  `x-wait-for-model: true`, which is held until the model is ready.

It takes 16-bit PCM WAV files. The segment timestamps are real: found in the audio by
frame energy (see _audio.py). The words are not recognised but recorded: audio whose
sha256 is in recorded_transcripts.json gets its recorded transcript; any other audio
gets its segments with text saying that no transcript is recorded. What a recogniser
would measure is filled in as follows: `compression_ratio` by Whisper's formula (text
bytes over their zlib-compressed bytes), `no_speech_prob` as the share of the
segment's frames below the speech threshold, `avg_logprob` 0.0 (log 1) for recorded
words and NO_WORDS_LOGPROB, below OpenAI's failure line of -1, where none are recorded;
`tokens` stays empty (there is no tokenizer here), and word times split each segment
in proportion to the words' lengths.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import uuid
import zlib
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ._audio import AudioFormatError, frame_energies, quiet_share, read_wav
from ._audio import speech_segments as find_speech
from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_ACCEPTED_KEYS = ("dev",)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # OpenAI's documented 25 MB
NO_TRANSCRIPT = "[no transcript recorded for this audio]"
NO_WORDS_LOGPROB = -2.0
RECORDINGS_FILE = "recorded_transcripts.json"
OPENAI_PATH = "/v1/audio/transcriptions"
# The extensions OpenAI accepts; it tells the format by the file name.
# fmt: off
OPENAI_EXTENSIONS = (
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
)
# fmt: on
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
# OpenAI's newer models answer json and text only.
JSON_AND_TEXT_ONLY = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe")
# Whisper reports the language by name (ISO-639-1 code: Whisper's name for it).
# fmt: off
LANGUAGES = {
    "af": "afrikaans", "am": "amharic", "ar": "arabic", "as": "assamese",
    "az": "azerbaijani", "ba": "bashkir", "be": "belarusian", "bg": "bulgarian",
    "bn": "bengali", "bo": "tibetan", "br": "breton", "bs": "bosnian", "ca": "catalan",
    "cs": "czech", "cy": "welsh", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "et": "estonian", "eu": "basque", "fa": "persian",
    "fi": "finnish", "fo": "faroese", "fr": "french", "gl": "galician",
    "gu": "gujarati", "ha": "hausa", "haw": "hawaiian", "he": "hebrew", "hi": "hindi",
    "hr": "croatian", "ht": "haitian creole", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "is": "icelandic", "it": "italian", "ja": "japanese",
    "jw": "javanese", "ka": "georgian", "kk": "kazakh", "km": "khmer", "kn": "kannada",
    "ko": "korean", "la": "latin", "lb": "luxembourgish", "ln": "lingala", "lo": "lao",
    "lt": "lithuanian", "lv": "latvian", "mg": "malagasy", "mi": "maori",
    "mk": "macedonian", "ml": "malayalam", "mn": "mongolian", "mr": "marathi",
    "ms": "malay", "mt": "maltese", "my": "myanmar", "ne": "nepali", "nl": "dutch",
    "nn": "nynorsk", "no": "norwegian", "oc": "occitan", "pa": "punjabi",
    "pl": "polish", "ps": "pashto", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sa": "sanskrit", "sd": "sindhi", "si": "sinhala", "sk": "slovak",
    "sl": "slovenian", "sn": "shona", "so": "somali", "sq": "albanian", "sr": "serbian",
    "su": "sundanese", "sv": "swedish", "sw": "swahili", "ta": "tamil", "te": "telugu",
    "tg": "tajik", "th": "thai", "tk": "turkmen", "tl": "tagalog", "tr": "turkish",
    "tt": "tatar", "uk": "ukrainian", "ur": "urdu", "uz": "uzbek", "vi": "vietnamese",
    "yi": "yiddish", "yo": "yoruba", "yue": "cantonese", "zh": "chinese",
}
# fmt: on
# Reported when neither the request nor the recording names a language: the dev
# server cannot detect one, and OpenAI's schema has no room for "unknown".
DEFAULT_LANGUAGE = "english"
# Whisper reads audio in 30-second windows of 100 frames a second; `seek` is the
# frame where a segment's window starts.
WINDOW_SECONDS = 30
FRAMES_PER_SECOND = 100


def load_recordings() -> dict[str, dict[str, Any]]:
    """The recorded transcripts by audio sha256; none if the file was deleted."""
    source = resources.files(__package__).joinpath(RECORDINGS_FILE)
    try:
        recordings = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ConfigError(f"{RECORDINGS_FILE} is not valid JSON: {error}") from None
    if not isinstance(recordings, dict) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("segments"), list)
        and all(isinstance(text, str) for text in entry["segments"])
        for entry in recordings.values()
    ):
        raise ConfigError(
            f'{RECORDINGS_FILE}: expected {{sha256: {{"segments": [sentence, ...]}}}}'
        )
    return recordings


def transcribe(audio: bytes, recordings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Segments found in the audio, with the recorded words if this audio has any."""
    wav = read_wav(audio)
    spans = find_speech(wav)
    recording = recordings.get(hashlib.sha256(audio).hexdigest())
    if recording is None:
        texts = [NO_TRANSCRIPT] * len(spans)
        text, language = NO_TRANSCRIPT, None
    else:
        texts = list(recording["segments"])
        text, language = " ".join(texts), recording.get("language")
        if len(texts) != len(spans) and spans:
            # The recorded phrases don't match the pauses found: one segment.
            spans, texts = [(spans[0][0], spans[-1][1])], [text]
    energies = frame_energies(wav)
    logprob = NO_WORDS_LOGPROB if recording is None else 0.0
    return {
        "text": text,
        "language": language,
        "duration": round(wav.duration, 2),
        "segments": [
            {
                "start": start,
                "end": end,
                "text": words,
                "avg_logprob": logprob,
                "no_speech_prob": round(quiet_share(energies, start, end), 3),
            }
            for (start, end), words in zip(spans, texts, strict=True)
        ],
    }


def language_name(code: str | None) -> str:
    """Whisper's name for an ISO-639-1 code (a name is kept as it is)."""
    if code is None:
        return DEFAULT_LANGUAGE
    return LANGUAGES.get(code.lower(), code.lower())


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetition: text bytes over their zlib-compressed size."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 3) if data else 0.0


def word_times(segment: dict[str, Any]) -> list[dict[str, Any]]:
    """The segment's words, its time split among them in proportion to length."""
    words = segment["text"].split()
    total = sum(len(word) for word in words)
    start, span = segment["start"], segment["end"] - segment["start"]
    timed = []
    for word in words:
        end = start + span * len(word) / total
        timed.append({"word": word, "start": round(start, 2), "end": round(end, 2)})
        start = end
    return timed


def openai_body(
    result: dict[str, Any],
    verbose: bool,
    temperature: float = 0.0,
    granularities: Iterable[str] = ("segment",),
) -> dict[str, Any]:
    """The json or verbose_json answer, with the fields of OpenAI's schema."""
    usage = {"type": "duration", "seconds": math.ceil(result["duration"])}
    if not verbose:
        return {"text": result["text"], "usage": usage}
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": result["language"],
        "duration": result["duration"],
        "text": result["text"],
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": index,
                "seek": int(segment["start"] // WINDOW_SECONDS)
                * WINDOW_SECONDS
                * FRAMES_PER_SECOND,
                "start": segment["start"],
                "end": segment["end"],
                "text": " " + segment["text"],  # Whisper's segments start with a space
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": segment["avg_logprob"],
                "compression_ratio": compression_ratio(segment["text"]),
                "no_speech_prob": segment["no_speech_prob"],
            }
            for index, segment in enumerate(result["segments"])
        ]
    if "word" in granularities:
        body["words"] = [
            word for segment in result["segments"] for word in word_times(segment)
        ]
    body["usage"] = usage
    return body


def timestamp(seconds: float, decimal: str) -> str:
    """HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT)."""
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{decimal}{milliseconds:03d}"


def subtitles(result: dict[str, Any], response_format: str) -> str:
    """The segments as SRT or WebVTT cues."""
    decimal = "," if response_format == "srt" else "."
    cues = []
    for index, segment in enumerate(result["segments"], start=1):
        times = (
            f"{timestamp(segment['start'], decimal)} --> "
            f"{timestamp(segment['end'], decimal)}"
        )
        number = f"{index}\n" if response_format == "srt" else ""
        cues.append(f"{number}{times}\n{segment['text']}\n")
    text = "\n".join(cues)
    return f"WEBVTT\n\n{text}" if response_format == "vtt" else text


def huggingface_body(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": result["text"],
        "chunks": [
            {"text": segment["text"], "timestamp": [segment["start"], segment["end"]]}
            for segment in result["segments"]
        ],
    }


class Part:
    """One part of a multipart/form-data body."""

    def __init__(self, value: bytes, filename: str | None) -> None:
        self.value = value
        self.filename = filename

    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


def multipart_fields(content_type: str, body: bytes) -> dict[str, list[Part]]:
    """The parts of a multipart/form-data body, by field name, in order."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return {}
    fields: dict[str, list[Part]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            value = payload if isinstance(payload, bytes) else b""
            fields.setdefault(name, []).append(Part(value, part.get_filename()))
    return fields


class RequestError(Exception):
    """A request the server refuses: the status, and OpenAI's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type


def openai_request(fields: dict[str, list[Part]]) -> dict[str, Any]:
    """The request's options, checked as OpenAI checks them; RequestError if not."""
    if "file" not in fields:
        raise RequestError(
            400, "expected multipart/form-data with a 'file' field", "file"
        )
    file = fields["file"][0]
    model = fields["model"][0].text() if "model" in fields else ""
    if not model:
        raise RequestError(400, "you must provide a model parameter", "model")
    extension = os.path.splitext(file.filename or "")[1].lstrip(".").lower()
    if extension not in OPENAI_EXTENSIONS:
        raise RequestError(
            400,
            f"Invalid file format. Supported formats: {list(OPENAI_EXTENSIONS)}",
            "file",
            "invalid_value",
        )
    response_format = (
        fields["response_format"][0].text() if "response_format" in fields else "json"
    )
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(
            400,
            f"Invalid value {response_format!r} for response_format: expected one of "
            f"{', '.join(RESPONSE_FORMATS)}",
            "response_format",
            "invalid_value",
        )
    if model.startswith(JSON_AND_TEXT_ONLY) and response_format not in ("json", "text"):
        raise RequestError(
            400,
            f"response_format '{response_format}' is not compatible with model "
            f"'{model}'. Use 'json' or 'text' instead.",
            "response_format",
            "unsupported_value",
        )
    granularities = [
        part.text() for part in fields.get("timestamp_granularities[]", [])
    ]
    if any(value not in ("word", "segment") for value in granularities):
        raise RequestError(
            400,
            f"Invalid timestamp_granularities {granularities}: expected word, segment",
            "timestamp_granularities",
            "invalid_value",
        )
    if granularities and response_format != "verbose_json":
        raise RequestError(
            400,
            "timestamp_granularities need response_format 'verbose_json'",
            "timestamp_granularities",
        )
    try:
        temperature = (
            float(fields["temperature"][0].text()) if "temperature" in fields else 0.0
        )
    except ValueError:
        temperature = math.nan  # not a number: refused with the out-of-range ones
    if not 0 <= temperature <= 1:
        raise RequestError(
            400,
            "temperature must be a number from 0 to 1",
            "temperature",
            "invalid_value",
        )
    language = fields["language"][0].text().lower() if "language" in fields else None
    if language is not None and language not in LANGUAGES:
        raise RequestError(
            400,
            f"Invalid language '{language}'. Language parameter must be specified "
            "in ISO-639-1 format.",
            "language",
            "invalid_value",
        )
    return {
        "audio": file.value,
        "response_format": response_format,
        "temperature": temperature,
        "granularities": granularities or ["segment"],
        "language": language,
    }


class _Handler(BaseHTTPRequestHandler):
    server: DevServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.request_id = f"req_{uuid.uuid4().hex[:16]}"
        openai = not self.path.startswith("/models/")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        try:
            if length < 0:
                self.close_connection = True  # no telling where the body ends
                raise RequestError(411, "a Content-Length header is required")
            if length > MAX_UPLOAD_BYTES:
                self.close_connection = True  # the unread body would garble the next
                raise RequestError(
                    413,
                    f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded "
                    f"({length} bytes read)",
                )
            body = self.rfile.read(length)
            if openai and self.path.split("?")[0] != OPENAI_PATH:
                raise RequestError(404, f"Invalid URL (POST {self.path})")
            self._authenticate()
            if openai:
                self._openai(body)
            else:
                self._huggingface(body)
        except RequestError as error:
            self._error(error, openai)

    def _authenticate(self) -> None:
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise RequestError(
                401, "You didn't provide an API key (Authorization: Bearer ...)"
            )
        if key not in self.server.accepted_keys:
            raise RequestError(
                401, "Incorrect API key provided", code="invalid_api_key"
            )

    def _openai(self, body: bytes) -> None:
        fields = multipart_fields(self.headers.get("Content-Type", ""), body)
        request = openai_request(fields)
        result = self._transcribe(request["audio"])
        language = request["language"] or result["language"]
        result["language"] = language_name(language)
        response_format = request["response_format"]
        if response_format == "text":
            self._text(result["text"] + "\n")
        elif response_format in ("srt", "vtt"):
            self._text(subtitles(result, response_format))
        else:
            self._json(
                200,
                openai_body(
                    result,
                    verbose=response_format == "verbose_json",
                    temperature=request["temperature"],
                    granularities=request["granularities"],
                ),
            )

    def _huggingface(self, body: bytes) -> None:
        model = self.path.removeprefix("/models/").split("?")[0]
        remaining = self.server.ready_at - time.monotonic()
        if remaining > 0:
            if self.headers.get("x-wait-for-model", "").lower() != "true":
                self._json(
                    503,
                    {
                        "error": f"Model {model} is currently loading",
                        "estimated_time": round(remaining, 3),
                    },
                )
                return
            time.sleep(remaining)  # held until the model is ready, as asked
        self._json(200, huggingface_body(self._transcribe(body)))

    def _transcribe(self, audio: bytes) -> dict[str, Any]:
        try:
            return transcribe(audio, self.server.recordings)
        except AudioFormatError as error:
            raise RequestError(
                400, f"cannot decode the audio: {error}", "file"
            ) from None

    def _error(self, error: RequestError, openai: bool) -> None:
        if openai:
            body: dict[str, Any] = {
                "error": {
                    "message": error.message,
                    "type": error.error_type,
                    "param": error.param,
                    "code": error.code,
                }
            }
        else:
            body = {"error": error.message}
        self._json(error.status, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _text(self, text: str) -> None:
        self._send(200, text.encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", self.request_id)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class DevServer(ThreadingHTTPServer):
    """The development server; port 0 picks a free port (see `url`).

    `model_loading`: for this many seconds after start, Hugging Face requests get
    the 503 "model is loading" answer, as a cold model on the hosted service does.
    """

    daemon_threads = True

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        accepted_keys: Iterable[str] = DEFAULT_ACCEPTED_KEYS,
        recordings: dict[str, dict[str, Any]] | None = None,
        model_loading: float = 0.0,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.accepted_keys = frozenset(accepted_keys)
        # By the sha256 of the audio; the bundled recorded_transcripts.json by default.
        self.recordings = load_recordings() if recordings is None else recordings
        self.ready_at = time.monotonic() + model_loading

    def handle_error(self, request: Any, client_address: Any) -> None:
        # To the server's log, not to stderr as socketserver does: its own stream.
        log.exception("error while answering %s", client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
