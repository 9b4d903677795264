"""Secrets blanked out of every answer and every error, in one place.

Every provider the runner builds is wrapped in RedactingProvider: the one place where
secrets (API keys, header values taken from the environment) are blanked out of every
answer and every error, before anything is cached, recorded, reported or printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from .base import ChatRequest, Completion, Provider, ProviderError, ToolCall

REDACTED = "[REDACTED]"
ERROR_EXCERPT = 300  # characters of a failed body shown in an error, after redaction
_USER_INFO = re.compile(r"(?<=://)[^/?#]*@")  # user:password@ before the host


def shown_url(url: str) -> str:
    """`url` as messages and reports show it: a password in it (`user:pw@host`) is
    no key, so no Redactor knows it; the user info is shown as ***."""
    return _USER_INFO.sub("***@", url, count=1)


class Redactor:
    """Blanks out each secret wherever it appears, before any excerpt is cut."""

    MIN_LENGTH = 6  # shorter values ("dev", "1") would blank ordinary words

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {s for s in secrets if len(s) >= self.MIN_LENGTH}
        self.secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def completion(self, completion: Completion) -> Completion:
        if not self.secrets:
            return completion
        calls = tuple(
            ToolCall(self(c.name), self(c.arguments), self(c.id))
            for c in completion.tool_calls
        )
        return replace(completion, text=self(completion.text), tool_calls=calls)


def excerpt(text: str, limit: int = ERROR_EXCERPT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RedactingProvider:
    """Wraps a provider: its answers and its errors leave with every secret blanked."""

    def __init__(self, inner: Provider, redact: Redactor) -> None:
        self.profile = inner.profile
        self.inner = inner
        self.redact = redact

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            completion = await self.inner.complete(request)
        except ProviderError as exc:
            raise ProviderError(excerpt(self.redact(str(exc)), 600)) from None
        return self.redact.completion(completion)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return await self.inner.embed(texts)
        except ProviderError as exc:
            raise ProviderError(excerpt(self.redact(str(exc)), 600)) from None
