"""Typed results, and the validation of each wire format into them.

The wire formats are pydantic models too, so a body of the wrong shape (a `null` where
text belongs, a segment without text, a list where an object belongs) is refused with
a `ValidationError` that says where, never a bare KeyError or TypeError.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Segment(BaseModel):
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    model_config = ConfigDict(frozen=True)

    start: float
    # None when the service could not place the end (Hugging Face's last chunk).
    end: float | None
    text: str


class Word(BaseModel):
    """One word and its place in the audio, in seconds (openai's word timestamps)."""

    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float


class Transcription(BaseModel):
    """What the service heard. `raw` keeps the JSON exactly as the service sent it.

    `segments` come with openai's verbose_json (and Hugging Face's chunks), `words`
    with verbose_json when word timestamps were asked for; plain json has neither.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    segments: list[Segment] = Field(default_factory=list)
    words: list[Word] = Field(default_factory=list)
    language: str | None = None
    duration: float | None = None  # seconds of audio, where the service says
    raw: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)
    # The service's x-request-id for this answer, to quote when asking its support.
    request_id: str | None = Field(default=None, repr=False, exclude=True)


class _Wire(BaseModel):
    # Fields the client does not use are ignored; those it uses must fit, and times
    # must be finite numbers (JSON parsers accept NaN and Infinity).
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class OpenAISegment(_Wire):
    start: float
    end: float
    text: str


class OpenAIWord(_Wire):
    word: str
    start: float
    end: float


class OpenAIBody(_Wire):
    """OpenAI-style `/audio/transcriptions` JSON (verbose_json has segments, words)."""

    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[OpenAISegment] | None = None
    words: list[OpenAIWord] | None = None

    def to_transcription(self, raw: dict[str, Any]) -> Transcription:
        return Transcription(
            text=self.text.strip(),
            segments=[
                Segment(start=item.start, end=item.end, text=item.text.strip())
                for item in self.segments or []
            ],
            words=[
                Word(word=item.word.strip(), start=item.start, end=item.end)
                for item in self.words or []
            ],
            language=self.language,
            duration=self.duration,
            raw=raw,
        )


class HuggingFaceChunk(_Wire):
    text: str
    # The pipeline writes "timestamp"; some servers write "timestamps".
    timestamp: tuple[float, float | None] | None = None
    timestamps: tuple[float, float | None] | None = None


class HuggingFaceBody(_Wire):
    """Hugging Face inference JSON: text, and chunks with [start, end] times."""

    text: str
    language: str | None = None
    chunks: list[HuggingFaceChunk] | None = None

    def to_transcription(self, raw: dict[str, Any]) -> Transcription:
        segments = []
        for chunk in self.chunks or []:
            times = chunk.timestamp or chunk.timestamps
            if times is None:
                continue  # a chunk with no place in time is no segment
            start, end = times
            segments.append(Segment(start=start, end=end, text=chunk.text.strip()))
        return Transcription(
            text=self.text.strip(), segments=segments, language=self.language, raw=raw
        )


_JSON_OBJECT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def parse_transcription(data: object, provider: str) -> Transcription:
    """Validate a decoded JSON body; pydantic's ValidationError if it does not fit."""
    raw = _JSON_OBJECT.validate_python(data)
    body = (
        HuggingFaceBody.model_validate(raw)
        if provider == "huggingface"
        else OpenAIBody.model_validate(raw)
    )
    return body.to_transcription(raw)
