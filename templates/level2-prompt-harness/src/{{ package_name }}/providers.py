"""Providers turn a rendered chat request into a completion.

- OpenAIProvider: any OpenAI-compatible /chat/completions endpoint (OpenAI, Ollama,
  vLLM, llama.cpp server, LM Studio), with retries on 429 and 5xx that honour
  Retry-After.
- EchoProvider: returns the rendered prompt, to test prompts without a model.
- ReplayProvider: serves responses captured earlier by RecordingProvider (--record), so
  suites run offline and give the same answers every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import random
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from .config import ProviderProfile


class ProviderError(Exception):
    """The API failed (network, HTTP status, malformed reply): errored, not failed."""


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    params: dict[str, Any]
    repeat: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    model: str = ""

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        return cls(
            text=data["text"],
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            latency_ms=float(data.get("latency_ms", 0.0)),
            model=data.get("model", ""),
        )


class Provider(Protocol):
    profile: ProviderProfile

    async def complete(self, request: ChatRequest) -> Completion: ...


def request_fingerprint(fields: dict[str, Any]) -> str:
    """A stable hash of JSON-able fields; the same request always gives the same key."""
    encoded = json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class EchoProvider:
    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile

    async def complete(self, request: ChatRequest) -> Completion:
        text = "\n\n".join(
            f"[{message['role']}]\n{message['content']}" for message in request.messages
        )
        return Completion(text=text, prompt_tokens=0, completion_tokens=0, model="echo")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_s: float = 0.5  # first wait; doubles on each retry, with jitter
    max_wait_s: float = 60.0  # cap on both backoff and Retry-After

    def backoff(self, attempt: int) -> float:
        return min(
            self.max_wait_s, self.backoff_s * 2**attempt * random.uniform(0.5, 1.0)
        )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class ClientPool:
    """HTTP clients of one keep-alive connection each, lent out for one call at a time.

    The runner's semaphore bounds how many are lent at once. One shared client with N
    pooled connections would work too, but httpx's pool examines every connection on
    each request, which at 20 connections costs more CPU than the requests themselves.
    """

    def __init__(self) -> None:
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._ssl_context: ssl.SSLContext | None = None

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        if not self._idle:
            if (
                self._ssl_context is None
            ):  # loading CA certificates takes ~20 ms: do it once
                self._ssl_context = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self._all.append(httpx.AsyncClient(limits=limits, verify=self._ssl_context))
            self._idle.append(self._all[-1])
        client = self._idle.pop()
        try:
            yield client
        finally:
            self._idle.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        self._idle.clear()


class OpenAIProvider:
    def __init__(
        self,
        profile: ProviderProfile,
        clients: ClientPool,
        *,
        timeout_s: float,
        retry: RetryPolicy,
    ) -> None:
        self.profile = profile
        self.clients = clients
        self.timeout_s = timeout_s
        self.retry = retry

    async def complete(self, request: ChatRequest) -> Completion:
        url = f"{self.profile.base_url}/chat/completions"
        body = {
            "model": self.profile.model,
            "messages": request.messages,
            **request.params,
        }
        api_key = self.profile.api_key()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        attempts = self.retry.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            started = time.perf_counter()
            wait = self.retry.backoff(attempt)
            try:
                async with self.clients.client() as client:
                    response = await client.post(
                        url, json=body, headers=headers, timeout=self.timeout_s
                    )
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout_s:g} s"
            except httpx.HTTPError as exc:
                detail = _redact(str(exc), api_key) or type(exc).__name__
                problem = f"cannot reach {self.profile.base_url}: {detail}"
            else:
                latency_ms = (time.perf_counter() - started) * 1000
                status = response.status_code
                if status < 400:
                    return self._parse(response, latency_ms)
                problem = f"HTTP {status}: {_redact(response.text[:300], api_key)}"
                if status != 429 and status < 500:
                    raise ProviderError(problem)  # a bad request stays bad: no retry
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None:
                    wait = min(retry_after, self.retry.max_wait_s)
            if attempt + 1 < attempts:
                await asyncio.sleep(wait)
        raise ProviderError(
            f"{problem} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
        )

    def _parse(self, response: httpx.Response, latency_ms: float) -> Completion:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("message content is not text")
            usage = data.get("usage") or {}
            return Completion(
                text=text,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                latency_ms=round(latency_ms, 1),
                model=str(data.get("model", self.profile.model)),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(
                f"malformed response body ({type(exc).__name__}: {exc}):"
                f" {response.text[:200]!r}"
            ) from None


class Recordings:
    """Recorded responses: one JSON file per provider profile in recordings/, sorted so
    that re-recording gives clean diffs.

    Entries are keyed by profile name, model, messages, parameters and repeat index.
    They hold the request (so a reviewer can read what was asked) and the response,
    never headers or keys.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()

    @staticmethod
    def key(profile: ProviderProfile, request: ChatRequest) -> str:
        return request_fingerprint(
            {
                "provider": profile.name,
                "model": profile.model,
                "messages": request.messages,
                "params": request.params,
                "repeat": request.repeat,
            }
        )

    def path(self, provider_name: str) -> Path:
        return self.directory / f"{provider_name}.json"

    def _entries(self, provider_name: str) -> dict[str, Any]:
        if provider_name not in self._files:
            path = self.path(provider_name)
            try:
                self._files[provider_name] = json.loads(
                    path.read_text(encoding="utf-8")
                )
            except FileNotFoundError:
                self._files[provider_name] = {}
            except (OSError, ValueError) as exc:
                raise ProviderError(f"{path}: unreadable recordings ({exc})") from None
        return self._files[provider_name]

    def get(self, profile: ProviderProfile, request: ChatRequest) -> Completion | None:
        entry = self._entries(profile.name).get(self.key(profile, request))
        return Completion.from_dict(entry["response"]) if entry else None

    def put(
        self, profile: ProviderProfile, request: ChatRequest, completion: Completion
    ) -> None:
        self._entries(profile.name)[self.key(profile, request)] = {
            "model": profile.model,
            "messages": request.messages,
            "params": request.params,
            "repeat": request.repeat,
            "response": completion.to_dict(),
        }
        self._changed.add(profile.name)

    def save(self) -> list[Path]:
        written = []
        for name in sorted(self._changed):
            path = self.path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(
                self._files[name], indent=2, sort_keys=True, ensure_ascii=False
            )
            path.write_text(text + "\n", encoding="utf-8")
            written.append(path)
        self._changed.clear()
        return written


class ReplayProvider:
    def __init__(self, profile: ProviderProfile, recordings: Recordings) -> None:
        self.profile = profile
        self.recordings = recordings

    async def complete(self, request: ChatRequest) -> Completion:
        completion = self.recordings.get(self.profile, request)
        if completion is None:
            raise ProviderError(
                "no recording for this request in"
                f" {self.recordings.path(self.profile.name).name}"
                f" (repeat {request.repeat});"
                " the prompt, variables or parameters changed since it was recorded:"
                " run with --record against the live endpoint"
            )
        return completion


class RecordingProvider:
    def __init__(self, inner: OpenAIProvider, recordings: Recordings) -> None:
        self.profile = inner.profile
        self.inner = inner
        self.recordings = recordings

    async def complete(self, request: ChatRequest) -> Completion:
        completion = await self.inner.complete(request)
        self.recordings.put(self.profile, request, completion)
        return completion
