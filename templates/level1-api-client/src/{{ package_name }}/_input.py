"""Audio input in the forms the official SDKs take, and the content type to send it as.

A path, the bytes themselves, a binary file object, or a `(filename, content)` /
`(filename, content, content_type)` tuple whose content is bytes or a binary file
object. The content type is the one given, else the file name's, else the one the
audio's own first bytes show; `application/octet-stream` when none of them tells.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO

from ._errors import AudioInputError, AudioTooLargeError

FileContent = bytes | IO[bytes]
AudioInput = (
    str
    | os.PathLike[str]
    | bytes
    | IO[bytes]
    | tuple[str | None, FileContent]
    | tuple[str | None, FileContent, str | None]
)

# By extension; the mimetypes module's answers vary by system (audio/x-wav, say).
AUDIO_TYPES = {
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".mp4": "audio/mp4",
    ".mpeg": "audio/mpeg",
    ".mpga": "audio/mpeg",
    ".oga": "audio/ogg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".webm": "audio/webm",
}
EXTENSIONS = {
    "audio/aac": ".aac",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "audio/webm": ".webm",
}
UNKNOWN_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class AudioFile:
    """What is sent: a file name, the bytes, and their content type."""

    filename: str
    content: bytes
    content_type: str


def sniff_content_type(head: bytes) -> str | None:
    """The audio type that a file's first bytes show, if they show one."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head.startswith(b"ID3") or (
        len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0
    ):
        # An ID3 tag, or an MPEG audio frame's sync bits (AAC's ADTS starts 0xFFF1/9).
        return "audio/aac" if head[1:2] in (b"\xf1", b"\xf9") else "audio/mpeg"
    return None


def read_audio(file: AudioInput, limit: Limit | None = None) -> AudioFile:
    """Read any accepted input into an AudioFile; AudioInputError if it cannot be.

    A file on disk over `limit` is refused by its size, before it is read: a
    file of gigabytes would otherwise fill memory first."""
    content_type: str | None = None
    filename: str | None
    if isinstance(file, tuple):
        if len(file) not in (2, 3):
            raise AudioInputError(
                f"an audio tuple has 2 or 3 items (filename, content[, content_type]), "
                f"not {len(file)}"
            )
        filename, source = file[0], file[1]
        if len(file) == 3:
            content_type = file[2]
        content = _read(source)
    elif isinstance(file, bytes | bytearray | memoryview):
        filename, content = None, bytes(file)
    elif isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        filename, content = os.path.basename(path), _read_path(path, limit)
    else:
        name = getattr(file, "name", None)
        filename = os.path.basename(name) if isinstance(name, str) else None
        content = _read(file)
    if not content_type and filename:
        content_type = AUDIO_TYPES.get(os.path.splitext(filename)[1].lower())
    if not content:
        # A service answers an empty upload with an error about the format.
        raise AudioInputError(f"{filename or 'the audio'} is empty: no audio to send")
    content_type = content_type or sniff_content_type(content[:16]) or UNKNOWN_TYPE
    filename = filename or "audio"
    if os.path.splitext(filename)[1].lower() not in AUDIO_TYPES:
        # Services tell the format by the name's extension (OpenAI refuses a name
        # without one), so a name that lacks it gets the one the content shows.
        filename += EXTENSIONS.get(content_type, "")
    return AudioFile(filename=filename, content=content, content_type=content_type)


def check_nameable(audio: AudioFile) -> None:
    """Refuse audio whose format neither its name nor its bytes tell: the openai
    format sends the format in the file name, and the service refuses a name
    without an audio extension."""
    extension = os.path.splitext(audio.filename)[1].lower()
    if extension in AUDIO_TYPES or audio.content_type != UNKNOWN_TYPE:
        return
    kinds = ", ".join(sorted({ext.lstrip(".") for ext in EXTENSIONS.values()}))
    raise AudioInputError(
        f"cannot tell the audio format of {audio.filename!r}: no audio extension in "
        f"the name, and the first bytes are none of {kinds}; name it, as in "
        "client.transcribe(('talk.mp3', data))"
    )


@dataclass(frozen=True)
class Limit:
    """The most bytes a service takes in one request, and the service's name."""

    size: int
    service: str

    def check(self, filename: str, size: int) -> None:
        if size > self.size:
            raise AudioTooLargeError(
                f"{filename} is {size / 1e6:.1f} MB ({size} bytes); the "
                f"{self.service} service takes at most {self.size} bytes "
                f"({self.size / 2**20:g} MB): "
                "compress it (mono, a lower bit rate) or split it",
                size=size,
                limit=self.size,
            )


def _read_path(path: str, limit: Limit | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            if limit is not None:
                limit.check(os.path.basename(path), os.fstat(handle.fileno()).st_size)
            return handle.read()
    except FileNotFoundError:
        raise AudioInputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise AudioInputError(f"{path} is a folder, not an audio file") from None
    except OSError as error:
        raise AudioInputError(f"cannot read {path}: {error.strerror}") from None


def _read(source: object) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    read = getattr(source, "read", None)
    if not callable(read):
        raise AudioInputError(
            f"expected a path, bytes, a binary file or a (filename, content) tuple, "
            f"got {type(source).__name__}"
        )
    try:
        data = read()
    except OSError as error:
        raise AudioInputError(f"cannot read the audio file object: {error}") from None
    if isinstance(data, str):
        raise AudioInputError(
            "the audio file object is open in text mode; open it with 'rb'"
        )
    if not isinstance(data, bytes | bytearray):
        raise AudioInputError(
            f"the audio file object's read() gave {type(data).__name__}, not bytes"
        )
    return bytes(data)
