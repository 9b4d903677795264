"""What every provider takes and gives: the request, the completion, the error."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import ProviderProfile
from ..errors import Error


class ProviderError(Error):
    """The API failed (network, HTTP status, malformed reply): errored, not failed."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, as the model wrote it: it may not parse
    id: str = ""

    def __post_init__(self) -> None:
        for name in ("name", "arguments", "id"):
            _text(f"a tool call's {name}", getattr(self, name))

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    params: dict[str, Any]
    repeat: int = 0
    tools: list[dict[str, Any]] | None = None

    def fingerprint_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "messages": self.messages,
            "params": self.params,
            "repeat": self.repeat,
        }
        if self.tools:  # absent when unused, so older recordings keep their keys
            fields["tools"] = self.tools
        return fields


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    def __post_init__(self) -> None:
        # A completion lands in results.json, which holds no NaN and no "12" posing
        # as a count: a provider, cache entry or recording that says otherwise is
        # refused here, by name, rather than failing the whole run's report.
        _text("the output", self.text)
        _text("the model", self.model)
        if self.finish_reason is not None:
            _text("finish_reason", self.finish_reason)
        for name in ("prompt_tokens", "completion_tokens"):
            count = getattr(self, name)
            if count is not None and (
                not isinstance(count, int) or isinstance(count, bool) or count < 0
            ):
                raise ValueError(f"{name} must be a count of tokens, not {count!r}")
        latency = self.latency_ms
        if (
            not isinstance(latency, int | float)
            or isinstance(latency, bool)
            or not math.isfinite(latency)
            or latency < 0
        ):
            raise ValueError(f"latency_ms must be a time in ms, not {latency!r}")

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": self.latency_ms,
            "model": self.model,
        }
        if self.finish_reason is not None:
            data["finish_reason"] = self.finish_reason
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        """A completion as to_dict wrote it; ValueError (or KeyError, TypeError) for
        an entry of another shape, never a guess: `{"text": 5}` is no answer "5"."""
        return cls(
            text=data["text"],
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            latency_ms=data.get("latency_ms", 0.0),
            model=data.get("model", ""),
            finish_reason=data.get("finish_reason"),
            tool_calls=tuple(
                ToolCall(c["name"], c["arguments"], c.get("id", ""))
                for c in data.get("tool_calls") or ()
            ),
        )


def _text(what: str, value: Any) -> None:
    """Refuse what is not text that results.json, the cache and the recordings can
    hold: a lone surrogate ("\\ud800" in a reply's JSON) cannot be written as UTF-8."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, not {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} holds {value[exc.start : exc.end]!r}, half of a surrogate pair,"
            " which is not text"
        ) from None


class Provider(Protocol):
    profile: ProviderProfile

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


def request_fingerprint(fields: dict[str, Any]) -> str:
    """A stable hash of JSON-able fields; the same request always gives the same key."""
    encoded = json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class NoEmbeddings:
    profile: ProviderProfile

    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise ProviderError(
            f"provider '{self.profile.name}' ({self.profile.type}) has no embeddings;"
            " set embedding_provider to an openai or offline profile"
        )


def arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
