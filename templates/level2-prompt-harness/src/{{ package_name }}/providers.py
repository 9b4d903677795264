"""Providers turn a rendered chat request into a completion.

- OpenAIProvider: any OpenAI-compatible endpoint (OpenAI, Azure, a gateway, Ollama,
  vLLM, llama.cpp server, LM Studio): /chat/completions, with tools, and /embeddings;
  retries on 429 and 5xx honour `retry-after-ms` and `Retry-After`.
- EchoProvider: returns the rendered prompt, to test prompts without a model.
- PythonProvider: calls a function of yours (your RAG pipeline, your agent), so a suite
  tests your application and not only a raw model.
- OfflineProvider: no model at all; embeddings from character trigrams, for tests.
- ReplayProvider: serves responses captured earlier by RecordingProvider (--record), so
  suites run offline and give the same answers every time.

Every provider the runner builds is wrapped in RedactingProvider: the one place where
secrets (API keys, header values taken from the environment) are blanked out of every
answer and every error, before anything is cached, recorded, reported or printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import re
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from .atomic import write_text_atomic
from .config import ProviderProfile
from .errors import ConfigError, Error
from .http_retry import RetryPolicy, retry_after_seconds, should_retry

REDACTED = "[REDACTED]"
ERROR_EXCERPT = 300  # characters of a failed body shown in an error, after redaction


class ProviderError(Error):
    """The API failed (network, HTTP status, malformed reply): errored, not failed."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, as the model wrote it: it may not parse
    id: str = ""

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
        return cls(
            text=str(data["text"]),
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            latency_ms=float(data.get("latency_ms", 0.0)),
            model=str(data.get("model", "")),
            finish_reason=data.get("finish_reason"),
            tool_calls=tuple(
                ToolCall(str(c["name"]), str(c["arguments"]), str(c.get("id", "")))
                for c in data.get("tool_calls") or ()
            ),
        )


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


class _NoEmbeddings:
    profile: ProviderProfile

    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise ProviderError(
            f"provider '{self.profile.name}' ({self.profile.type}) has no embeddings;"
            " set embedding_provider to an openai or offline profile"
        )


class EchoProvider(_NoEmbeddings):
    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile

    async def complete(self, request: ChatRequest) -> Completion:
        """The prompt as sent: a lone user message as it is (as promptfoo's echo
        returns it), several messages each under its [role] (or, for a promptfoo
        config's echo, as the JSON list promptfoo would send)."""
        messages = request.messages
        if len(messages) == 1 and messages[0]["role"] == "user":
            text = messages[0]["content"]
        elif self.profile.call_style == "promptfoo":
            # promptfoo sends a chat prompt as its JSON text, which its echo returns.
            text = json.dumps(messages, indent=2, ensure_ascii=False)
        else:
            text = "\n\n".join(
                f"[{message['role']}]\n{message['content']}" for message in messages
            )
        return Completion(
            text=text,
            prompt_tokens=0,
            completion_tokens=0,
            model="echo",
            finish_reason="stop",
        )


def trigram_embedding(text: str, dimensions: int = 256) -> list[float]:
    """A unit vector of hashed character trigrams: close texts get close vectors."""
    vector = [0.0] * dimensions
    padded = f"  {text.casefold()}  "
    for start in range(len(padded) - 2):
        digest = hashlib.blake2b(padded[start : start + 3].encode(), digest_size=4)
        vector[int.from_bytes(digest.digest(), "little") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OfflineProvider:
    """Embeddings without a model (for tests and offline runs); chat answers echo."""

    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile

    async def complete(self, request: ChatRequest) -> Completion:
        return await EchoProvider(self.profile).complete(request)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [trigram_embedding(text) for text in texts]


def load_function(reference: str, root: Path) -> Callable[..., Any]:
    """`module:function`, importable from the project folder; ConfigError if not."""
    if reference.count(":") != 1:
        raise ConfigError(f"expected 'module:function', got {reference!r}")
    module_name, function_name = reference.split(":")
    # User code lives beside the suites (suite_checks.py, my_app.py in the project).
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"module '{module_name}' has no function '{function_name}'")
    return function  # type: ignore[no-any-return]


_FILE_FUNCTIONS: dict[tuple[Path, str], Callable[..., Any]] = {}


def load_file_function(reference: str, base: Path, default: str) -> Callable[..., Any]:
    """`file://path.py` or `file://path.py:function` (promptfoo's form), the path
    relative to `base`; the function is `default` unless named. ConfigError if not."""
    location = reference.removeprefix("file://").removeprefix("python:")
    name = default
    if ":" in location and not location.endswith(".py"):
        location, name = location.rsplit(":", 1)
    path = (base / location).resolve()
    if path.suffix != ".py":
        raise ConfigError(f"{reference}: only Python files (.py) run here")
    key = (path, name)
    if key not in _FILE_FUNCTIONS:
        if not path.is_file():
            raise ConfigError(f"{reference}: no such file {path}")
        # A name of its own per file, so two check.py files in two folders coexist.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(f"_user_{digest}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{reference}: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(
                f"{reference}: importing it raised {type(exc).__name__}: {exc}"
            ) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ConfigError(f"{reference}: {path.name} has no function '{name}'")
        _FILE_FUNCTIONS[key] = function
    return _FILE_FUNCTIONS[key]


class PythonProvider(_NoEmbeddings):
    """Calls `function(messages, context)`: an `async def` on the event loop, a plain
    function in a worker thread, so up to `concurrency` calls overlap either way. It
    returns the answer text, or a mapping with `output` and optionally `tool_calls`,
    `prompt_tokens`, `completion_tokens`. An exception it raises makes the case
    errored."""

    def __init__(self, profile: ProviderProfile, root: Path) -> None:
        self.profile = profile
        if profile.function.startswith("file://"):
            self.function = load_file_function(profile.function, root, "call_api")
        else:
            self.function = load_function(profile.function, root)

    def _arguments(self, request: ChatRequest) -> tuple[Any, dict[str, Any]]:
        if self.profile.call_style == "promptfoo":
            # promptfoo's call_api(prompt, options, context): the prompt as text (a
            # chat prompt as its JSON), the provider's config among the options.
            messages = request.messages
            if len(messages) == 1 and messages[0]["role"] == "user":
                prompt: Any = messages[0]["content"]
            else:
                prompt = json.dumps(messages, ensure_ascii=False)
            return prompt, {"config": request.params, "tools": request.tools or []}
        context = {
            "params": request.params,
            "tools": request.tools or [],
            "repeat": request.repeat,
        }
        return request.messages, context

    async def _call(self, request: ChatRequest) -> Any:
        first, second = self._arguments(request)
        extra = (
            ({"vars": {}, "prompt": {"raw": first}},)
            if self.profile.call_style == "promptfoo"
            else ()
        )
        if inspect.iscoroutinefunction(self.function):
            return await self.function(first, second, *extra)
        # in a worker thread, so `concurrency` calls overlap
        return await asyncio.to_thread(self.function, first, second, *extra)

    async def complete(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        try:
            returned = await self._call(request)
        except Exception as exc:
            raise ProviderError(
                f"{self.profile.function} raised {type(exc).__name__}: {exc}"
            ) from None
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if isinstance(returned, str):
            return Completion(
                text=returned, latency_ms=latency_ms, finish_reason="stop"
            )
        if self.profile.call_style == "promptfoo" and isinstance(returned, Mapping):
            returned = _promptfoo_reply(returned, self.profile.function)
        if isinstance(returned, Mapping) and isinstance(
            returned.get("output", ""), str
        ):
            calls = returned.get("tool_calls") or []
            try:
                tool_calls = tuple(
                    ToolCall(
                        str(c["name"]),
                        _arguments_text(c.get("arguments", {})),
                        str(c.get("id", "")),
                    )
                    for c in calls
                )
            except (KeyError, TypeError):
                raise ProviderError(
                    f"{self.profile.function}: each tool call needs a 'name'"
                ) from None
            return Completion(
                text=returned.get("output", ""),
                prompt_tokens=returned.get("prompt_tokens"),
                completion_tokens=returned.get("completion_tokens"),
                latency_ms=latency_ms,
                finish_reason="tool_calls" if tool_calls else "stop",
                tool_calls=tool_calls,
            )
        raise ProviderError(
            f"{self.profile.function} returned {type(returned).__name__};"
            " expected text or a mapping with 'output'"
        )


def _promptfoo_reply(returned: Mapping[str, Any], where: str) -> dict[str, Any]:
    """promptfoo's {output, error, tokenUsage} as the mapping the harness takes; an
    output that is not text (tool calls, an object) reaches the checks as JSON."""
    if returned.get("error"):
        raise ProviderError(f"{where} returned the error: {returned['error']}")
    output = returned.get("output", "")
    usage = returned.get("tokenUsage") or {}
    reply: dict[str, Any] = {
        "prompt_tokens": usage.get("prompt"),
        "completion_tokens": usage.get("completion"),
    }
    if _is_tool_calls(output):
        # OpenAI-shaped tool calls: kept as calls, so tool assertions see them too.
        reply["output"] = ""
        reply["tool_calls"] = [
            {
                "id": call.get("id", ""),
                "name": call["function"]["name"],
                "arguments": call["function"].get("arguments", "{}"),
            }
            for call in output
        ]
    elif isinstance(output, str):
        reply["output"] = output
    else:
        reply["output"] = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    return reply


def _is_tool_calls(output: Any) -> bool:
    return (
        isinstance(output, list)
        and bool(output)
        and all(
            isinstance(call, dict)
            and isinstance(call.get("function"), dict)
            and isinstance(call["function"].get("name"), str)
            for call in output
        )
    )


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


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
            if self._ssl_context is None:  # loading CA certificates takes ~20 ms
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
        body: dict[str, Any] = {
            "model": self.profile.model,
            "messages": request.messages,
            **request.params,
        }
        if request.tools:
            body["tools"] = request.tools
        response, latency_ms = await self._post("chat/completions", body)
        return self._parse(response, latency_ms)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        model = self.profile.embedding_model or self.profile.model
        response, _ = await self._post("embeddings", {"model": model, "input": texts})
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = [[float(v) for v in item["embedding"]] for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                f"malformed embeddings body ({type(exc).__name__}): {response.text}"
            ) from None
        if len(vectors) != len(texts):
            raise ProviderError(
                f"asked for {len(texts)} embeddings, got {len(vectors)}"
            )
        return vectors

    async def _post(
        self, path: str, body: dict[str, Any]
    ) -> tuple[httpx.Response, float]:
        try:
            url = f"{self.profile.resolved_base_url()}/{path}"
            headers = self.profile.request_headers()
        except ConfigError as exc:
            raise ProviderError(f"provider '{self.profile.name}': {exc}") from None
        attempts = self.retry.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            started = time.perf_counter()
            wait = self.retry.backoff(attempt)
            try:
                async with self.clients.client() as client:
                    response = await client.post(
                        url,
                        params=self.profile.query or None,
                        json=body,
                        headers={**headers, "x-attempt": str(attempt + 1)},
                        timeout=self.timeout_s,
                    )
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout_s:g} s"
            except httpx.HTTPError as exc:
                problem = f"cannot reach {url}: {exc or type(exc).__name__}"
            else:
                status = response.status_code
                if status < 400:
                    return response, (time.perf_counter() - started) * 1000
                # The whole body: RedactingProvider blanks secrets, then cuts it short.
                problem = f"HTTP {status}: {response.text}"
                if not should_retry(status, response.headers):
                    raise ProviderError(problem)  # a bad request stays bad: no retry
                delay = self.retry.delay(attempt, response.headers)
                if delay is None:
                    # Waiting less than asked would only earn another refusal.
                    asked = retry_after_seconds(response.headers) or 0.0
                    raise ProviderError(
                        f"{problem} (the server asks to wait {asked:g} s, longer than"
                        f" retry_max_wait_s {self.retry.max_wait_s:g} s: gave up)"
                    )
                wait = delay
            if attempt + 1 < attempts:
                await asyncio.sleep(wait)
        plural = "s" if attempts > 1 else ""
        raise ProviderError(f"{problem} (gave up after {attempts} attempt{plural})")

    def _parse(self, response: httpx.Response, latency_ms: float) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
            calls = tuple(
                ToolCall(
                    name=str(call["function"]["name"]),
                    arguments=_arguments_text(call["function"].get("arguments", "")),
                    id=str(call.get("id", "")),
                )
                for call in message.get("tool_calls") or ()
            )
            if text is None and calls:
                text = ""
            if not isinstance(text, str):
                raise TypeError("message content is not text")
            usage = data.get("usage") or {}
            return Completion(
                text=text,
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
                latency_ms=round(latency_ms, 1),
                model=str(data.get("model", self.profile.model)),
                finish_reason=choice.get("finish_reason"),
                tool_calls=calls,
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(
                f"malformed response body ({type(exc).__name__}: {exc}):"
                f" {response.text}"
            ) from None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _RecordingFile:
    entries: dict[str, Any]
    used: set[str] = field(default_factory=set)
    changed: bool = False


class Recordings:
    """Recorded responses: one JSON file per provider profile in recordings/, sorted so
    that re-recording gives clean diffs.

    Entries are keyed by profile name, model, messages, parameters, tools and repeat
    index. They hold the request (so a reviewer can read what was asked), the suite
    that asked, and the response; never headers or keys.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, _RecordingFile] = {}

    @staticmethod
    def key(profile: ProviderProfile, request: ChatRequest) -> str:
        return request_fingerprint(
            {"provider": profile.name, "model": profile.model}
            | request.fingerprint_fields()
        )

    def path(self, provider_name: str) -> Path:
        # A promptfoo id such as openai:gpt-4o-mini names a profile; ':' and '/' do
        # not belong in a file name on every system.
        safe = re.sub(r"[^\w.-]", "_", provider_name)
        return self.directory / f"{safe}.json"

    def _file(self, provider_name: str) -> _RecordingFile:
        if provider_name not in self._files:
            path = self.path(provider_name)
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                entries = {}
            except (OSError, ValueError) as exc:
                raise ProviderError(f"{path}: unreadable recordings ({exc})") from None
            if not isinstance(entries, dict):
                raise ProviderError(f"{path}: unreadable recordings (not a mapping)")
            self._files[provider_name] = _RecordingFile(entries)
        return self._files[provider_name]

    def get(self, profile: ProviderProfile, request: ChatRequest) -> Completion | None:
        recording = self._file(profile.name)
        key = self.key(profile, request)
        entry = recording.entries.get(key)
        if not entry:
            return None
        recording.used.add(key)
        return Completion.from_dict(entry["response"])

    def put(
        self,
        profile: ProviderProfile,
        request: ChatRequest,
        completion: Completion,
        suite: str = "",
    ) -> None:
        recording = self._file(profile.name)
        key = self.key(profile, request)
        entry: dict[str, Any] = {
            "model": profile.model,
            "messages": request.messages,
            "params": request.params,
            "repeat": request.repeat,
            "response": completion.to_dict(),
        }
        if request.tools:
            entry["tools"] = request.tools
        if suite:
            entry["suite"] = suite
        recording.entries[key] = entry
        recording.used.add(key)
        recording.changed = True

    @staticmethod
    def embedding_key(profile: ProviderProfile, texts: list[str]) -> str:
        model = profile.embedding_model or profile.model
        return request_fingerprint(
            {"provider": profile.name, "embed": model, "input": texts}
        )

    def get_embeddings(
        self, profile: ProviderProfile, texts: list[str]
    ) -> list[list[float]] | None:
        recording = self._file(profile.name)
        key = self.embedding_key(profile, texts)
        entry = recording.entries.get(key)
        if not entry:
            return None
        recording.used.add(key)
        return [[float(v) for v in vector] for vector in entry["embeddings"]]

    def put_embeddings(
        self,
        profile: ProviderProfile,
        texts: list[str],
        vectors: list[list[float]],
        suite: str = "",
    ) -> None:
        recording = self._file(profile.name)
        key = self.embedding_key(profile, texts)
        entry: dict[str, Any] = {"input": texts, "embeddings": vectors}
        if suite:
            entry["suite"] = suite
        recording.entries[key] = entry
        recording.used.add(key)
        recording.changed = True

    def prune(self, suites: set[str]) -> int:
        """Drop the recordings of these suites that this run did not use. Entries
        that name no suite (recorded by an older version) are kept: no run can tell
        whether some other suite still needs them."""
        dropped = 0
        for recording in self._files.values():
            for key in list(recording.entries):
                entry = recording.entries[key]
                owner = entry.get("suite", "") if isinstance(entry, dict) else ""
                if key not in recording.used and owner in suites:
                    del recording.entries[key]
                    recording.changed = True
                    dropped += 1
        return dropped

    def save(self) -> list[Path]:
        written = []
        for name, recording in sorted(self._files.items()):
            if not recording.changed:
                continue
            path = self.path(name)
            text = json.dumps(
                recording.entries, indent=2, sort_keys=True, ensure_ascii=False
            )
            write_text_atomic(path, text + "\n")
            recording.changed = False
            written.append(path)
        return written


class ReplayProvider:
    def __init__(self, profile: ProviderProfile, recordings: Recordings) -> None:
        self.profile = profile
        self.recordings = recordings

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self.recordings.get_embeddings(self.profile, texts)
        if vectors is None:
            raise ProviderError(
                "no recorded embeddings for these texts in"
                f" {self.recordings.path(self.profile.name).name};"
                " run with --record against the live endpoint"
            )
        return vectors

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
