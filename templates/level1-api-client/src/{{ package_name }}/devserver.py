"""A local server speaking the service's protocol, for offline work and tests.

It answers both wire formats the client speaks:

- OpenAI style: multipart POST /v1/audio/transcriptions (fields: file, model,
  response_format = json | verbose_json | text);
- Hugging Face style: POST /models/<model> with the raw audio bytes as the body.

It takes 16-bit PCM WAV files. The segment timestamps are real: found in the audio by
frame energy (see _audio.py). The words are not recognised but recorded: audio whose
sha256 is in recorded_transcripts.json gets its recorded transcript; any other audio
gets its segments with text saying that no transcript is recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ._audio import AudioFormatError, read_wav, speech_segments
from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_ACCEPTED_KEYS = ("dev",)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # the limit hosted transcription APIs commonly set
NO_TRANSCRIPT = "[no transcript recorded for this audio]"
RECORDINGS_FILE = "recorded_transcripts.json"


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
    spans = speech_segments(wav)
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
    return {
        "text": text,
        "language": language,
        "duration": round(wav.duration, 2),
        "segments": [
            {"start": start, "end": end, "text": words}
            for (start, end), words in zip(spans, texts, strict=True)
        ],
    }


def openai_body(result: dict[str, Any], verbose: bool) -> dict[str, Any]:
    if not verbose:
        return {"text": result["text"]}
    return {
        "task": "transcribe",
        "language": result["language"],
        "duration": result["duration"],
        "text": result["text"],
        "segments": [
            {"id": index, "seek": 0, **segment}
            for index, segment in enumerate(result["segments"])
        ],
    }


def huggingface_body(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": result["text"],
        "chunks": [
            {"text": segment["text"], "timestamp": [segment["start"], segment["end"]]}
            for segment in result["segments"]
        ],
    }


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body, by field name."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return {}
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


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
        if not 0 <= length <= MAX_UPLOAD_BYTES:
            self.close_connection = (
                True  # the unread body would garble the next request
            )
            self._error(
                413, f"need a Content-Length of at most {MAX_UPLOAD_BYTES}", openai
            )
            return
        body = self.rfile.read(length)
        if openai and self.path.split("?")[0] != "/v1/audio/transcriptions":
            self._error(404, f"no such endpoint: POST {self.path}", openai)
            return
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key not in self.server.accepted_keys:
            self._error(
                401, "missing or unknown API key (Authorization: Bearer ...)", openai
            )
            return
        if openai:
            self._openai(body)
        else:
            self._huggingface(body)

    def _openai(self, body: bytes) -> None:
        fields = multipart_fields(self.headers.get("Content-Type", ""), body)
        if "file" not in fields:
            self._error(
                400, "expected multipart/form-data with a 'file' field", openai=True
            )
            return
        response_format = fields.get("response_format", b"json").decode(
            errors="replace"
        )
        if response_format not in ("json", "verbose_json", "text"):
            self._error(
                400, f"unsupported response_format {response_format!r}", openai=True
            )
            return
        result = self._transcribe(fields["file"], openai=True)
        if result is None:
            return
        if "language" in fields:  # the caller's language wins, as with Whisper
            result["language"] = fields["language"].decode(errors="replace")
        if response_format == "text":
            self._send(200, result["text"].encode(), "text/plain; charset=utf-8")
        else:
            self._json(
                200, openai_body(result, verbose=response_format == "verbose_json")
            )

    def _huggingface(self, body: bytes) -> None:
        result = self._transcribe(body, openai=False)
        if result is not None:
            self._json(200, huggingface_body(result))

    def _transcribe(self, audio: bytes, openai: bool) -> dict[str, Any] | None:
        try:
            return transcribe(audio, self.server.recordings)
        except AudioFormatError as error:
            self._error(400, f"cannot decode the audio: {error}", openai)
            return None

    def _error(self, status: int, message: str, openai: bool) -> None:
        if openai:
            body: dict[str, Any] = {
                "error": {"message": message, "type": "invalid_request"}
            }
        else:
            body = {"error": message}
        self._json(status, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

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
    """The development server; port 0 picks a free port (see `url`)."""

    daemon_threads = True

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        accepted_keys: Iterable[str] = DEFAULT_ACCEPTED_KEYS,
        recordings: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.accepted_keys = frozenset(accepted_keys)
        # By the sha256 of the audio; the bundled recorded_transcripts.json by default.
        self.recordings = load_recordings() if recordings is None else recordings

    def handle_error(self, request: Any, client_address: Any) -> None:
        # To the server's log, not to stderr as socketserver does: its own stream.
        log.exception("error while answering %s", client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
