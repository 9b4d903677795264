"""Any OpenAI-compatible endpoint: /chat/completions (with tools) and /embeddings.

OpenAI, Azure, a gateway, Ollama, vLLM, llama.cpp server, LM Studio. A failed call is
retried by the shared http_retry policy, which honours `retry-after-ms` and
`Retry-After` and gives up at once when the server asks for longer than its cap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..config import ProviderProfile
from ..errors import ConfigError
from ..http_retry import RetryPolicy, retry_after_seconds, should_retry
from .base import ChatRequest, Completion, ProviderError, ToolCall, arguments_text
from .clients import TIMEOUTS, TOO_LONG, UNREACHABLE, ClientPool, Reply
from .redaction import shown_url


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

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[Reply, float]:
        try:
            url = f"{self.profile.resolved_base_url()}/{path}"
            headers = self.profile.request_headers()
        except ConfigError as exc:
            raise ProviderError(f"provider '{self.profile.name}': {exc}") from None
        shown = shown_url(url)
        attempts = self.retry.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            started = time.perf_counter()
            wait = self.retry.backoff(attempt)
            try:
                response = await self.clients.post_json(
                    url,
                    body,
                    headers={**headers, "x-attempt": str(attempt + 1)},
                    query=self.profile.query,
                    timeout_s=self.timeout_s,
                )
            except TIMEOUTS:
                problem = f"timed out after {self.timeout_s:g} s"
            except TOO_LONG as exc:
                raise ProviderError(f"{shown}: {exc}") from None  # no retry: same again
            except UNREACHABLE as exc:
                problem = f"cannot reach {shown}: {exc or type(exc).__name__}"
            else:
                status = response.status
                if status < 300:
                    return response, (time.perf_counter() - started) * 1000
                if status < 400:
                    # Not followed, as the official SDKs do not: the key would go with
                    # the request to wherever the answer points.
                    target = shown_url(
                        response.headers.get("location", "an address it omits")
                    )
                    raise ProviderError(
                        f"HTTP {status}: the server answers from {target} instead;"
                        " requests are not redirected, so point base_url there"
                    )
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

    def _parse(self, response: Reply, latency_ms: float) -> Completion:
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"malformed response body (not JSON: {exc}): {response.text}"
            ) from None
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
            calls = tuple(
                ToolCall(
                    name=str(call["function"]["name"]),
                    arguments=arguments_text(call["function"].get("arguments", "")),
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
                f"malformed response body ({_shape_problem(exc)}): {response.text}"
            ) from None


def _shape_problem(exc: Exception) -> str:
    """What was wrong with a reply's body, in the terms of its fields."""
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} field where the chat format has one"
    if isinstance(exc, IndexError):
        return "'choices' is empty"
    if isinstance(exc, ValueError) and not isinstance(exc, TypeError):
        return str(exc)  # a value Completion refuses, which names the field
    return f"a field of the wrong kind: {exc}"


def _count(value: Any) -> int | None:
    """A token count the server reported; None where it reported none that is one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
