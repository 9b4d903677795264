"""Typed results, and the normalisation of each wire format into them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Segment(BaseModel):
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    model_config = ConfigDict(frozen=True)

    start: float
    # None when the service could not place the end (Hugging Face's last chunk).
    end: float | None
    text: str


class Transcription(BaseModel):
    """What the service heard. `raw` keeps the JSON exactly as the service sent it."""

    model_config = ConfigDict(frozen=True)

    text: str
    segments: list[Segment] = Field(default_factory=list)
    language: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> Transcription:
        """OpenAI-style `/audio/transcriptions` JSON (verbose_json has segments)."""
        segments = [
            Segment(start=item["start"], end=item["end"], text=item["text"].strip())
            for item in data.get("segments") or []
        ]
        return cls(
            text=data["text"].strip(),
            segments=segments,
            language=data.get("language"),
            raw=data,
        )

    @classmethod
    def from_huggingface(cls, data: dict[str, Any]) -> Transcription:
        """Hugging Face inference JSON: text, and chunks with [start, end] times."""
        segments = []
        for chunk in data.get("chunks") or []:
            # The pipeline writes "timestamp"; some servers write "timestamps".
            start, end = (
                chunk.get("timestamp") or chunk.get("timestamps") or (None, None)
            )
            segments.append(Segment(start=start, end=end, text=chunk["text"].strip()))
        return cls(
            text=data["text"].strip(),
            segments=segments,
            language=data.get("language"),
            raw=data,
        )


def parse_transcription(data: Any, provider: str) -> Transcription:
    """Normalise a decoded JSON body; KeyError, TypeError or ValueError if malformed."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    if provider == "huggingface":
        return Transcription.from_huggingface(data)
    return Transcription.from_openai(data)
