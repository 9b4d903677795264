"""Client and AsyncClient: shared request building and retry policy, two I/O loops."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from types import TracebackType
from typing import Any

import httpx
from pydantic import ValidationError

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODELS,
    DEFAULT_TIMEOUT,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    InvalidResponseError,
    body_excerpt,
    status_error,
)
from ._retry import RetryPolicy, is_retryable_status
from .types import Transcription, parse_transcription

log = logging.getLogger(__name__)

AudioInput = str | os.PathLike[str] | bytes
Timeout = float | httpx.Timeout | None


class NotGiven:
    """Marks a per-call option left out, so `None` (no timeout) stays a real value."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()

# By extension; the mimetypes module's answers vary by system (audio/x-wav, say).
AUDIO_TYPES = {
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".webm": "audio/webm",
}


def read_audio(file: AudioInput) -> tuple[bytes, str]:
    """The audio bytes and a file name to send with them."""
    if isinstance(file, bytes):
        return file, "audio.wav"
    path = os.fspath(file)
    with open(path, "rb") as handle:
        return handle.read(), os.path.basename(path)


class _BaseClient:
    """Configuration, request building and retry decisions shared by both clients."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        provider: str | None,
        model: str | None,
        timeout: Timeout,
        max_retries: int,
        retry_policy: RetryPolicy | None,
    ) -> None:
        settings = resolve_settings(api_key, base_url, provider)
        if max_retries < 0:
            raise ConfigurationError(
                f"max_retries must be 0 or more, not {max_retries}"
            )
        self._api_key = settings.api_key
        self.base_url = settings.base_url
        self.provider = settings.provider
        self.model = model or DEFAULT_MODELS[settings.provider]
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_policy = retry_policy or RetryPolicy()

    def __repr__(self) -> str:  # never the key
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"provider={self.provider!r}, model={self.model!r}, "
            f"max_retries={self.max_retries})"
        )

    def _request_options(
        self,
        audio: bytes,
        filename: str,
        *,
        model: str | None,
        timeout: Timeout | NotGiven,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Keyword arguments for httpx's build_request, the same for every attempt."""
        model = model or self.model
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            # The same key on every retry lets the server recognise a repeated request.
            "Idempotency-Key": idempotency_key or f"stt-{uuid.uuid4()}",
        }
        extension = os.path.splitext(filename)[1].lower()
        content_type = AUDIO_TYPES.get(extension, "application/octet-stream")
        options: dict[str, Any] = {
            "method": "POST",
            "headers": headers,
            "timeout": self.timeout if isinstance(timeout, NotGiven) else timeout,
        }
        if self.provider == "huggingface":
            options["url"] = f"{self.base_url}/models/{model}"
            options["content"] = audio
            headers["Content-Type"] = content_type
        else:
            options["url"] = f"{self.base_url}/v1/audio/transcriptions"
            options["files"] = {"file": (filename, audio, content_type)}
            options["data"] = {
                "model": model,
                "response_format": "verbose_json",
                "timestamp_granularities[]": "segment",
            }
        return options

    def _retries(self, max_retries: int | NotGiven) -> int:
        return self.max_retries if isinstance(max_retries, NotGiven) else max_retries

    def _retry_delay(
        self,
        attempt: int,
        retries: int,
        *,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> float | None:
        """Seconds to wait before trying again, or None if this attempt is the last."""
        if attempt >= retries:
            return None
        if response is not None and not is_retryable_status(response.status_code):
            return None
        delay = self.retry_policy.delay(
            attempt, response.headers if response is not None else None
        )
        if response is not None:
            cause = f"HTTP {response.status_code}"
        else:
            cause = type(error).__name__
        log.info("%s; retry %d of %d in %.2fs", cause, attempt + 1, retries, delay)
        return delay

    def _transport_error(self, error: httpx.TransportError) -> APIError:
        if isinstance(error, httpx.TimeoutException):
            return APITimeoutError(
                f"no answer from {self.base_url} in time ({type(error).__name__})"
            )
        reason = str(error) or type(error).__name__
        return APIConnectionError(f"could not reach {self.base_url}: {reason}")

    def _parse_response(self, response: httpx.Response) -> Transcription:
        request_id = response.headers.get("x-request-id")
        log.debug("HTTP %d, request id %s", response.status_code, request_id)
        if response.is_error:
            raise status_error(response, self._api_key)
        try:
            return parse_transcription(response.json(), self.provider)
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            # JSONDecodeError is a ValueError; ValidationError means wrong field types.
            kind = (
                "not JSON"
                if isinstance(error, json.JSONDecodeError)
                else "unexpected JSON"
            )
            raise InvalidResponseError(
                f"HTTP {response.status_code} response is {kind} "
                f"for the {self.provider} wire format",
                status_code=response.status_code,
                request_id=request_id,
                body=body_excerpt(response, self._api_key),
            ) from None


class Client(_BaseClient):
    """Synchronous speech-to-text client. Use as a context manager, or call close()."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            provider=provider,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.Client()

    def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Transcription:
        """Transcribe one audio file (a path or its bytes)."""
        audio, filename = read_audio(file)
        options = self._request_options(
            audio,
            filename,
            model=model,
            timeout=timeout,
            idempotency_key=idempotency_key,
        )
        retries = self._retries(max_retries)
        attempt = 0
        while True:
            log.debug("POST %s (attempt %d)", options["url"], attempt + 1)
            try:
                response = self._http.send(self._http.build_request(**options))
            except httpx.TransportError as error:
                delay = self._retry_delay(attempt, retries, error=error)
                if delay is None:
                    raise self._transport_error(error) from error
            else:
                delay = self._retry_delay(attempt, retries, response=response)
                if delay is None:
                    return self._parse_response(response)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        """Close the connection pool, unless it was passed in (its owner closes it)."""
        if self._owns_http_client:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """Asynchronous speech-to-text client. Use with `async with`, or aclose()."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            provider=provider,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.AsyncClient()

    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Transcription:
        """Transcribe one audio file (a path or its bytes)."""
        audio, filename = await asyncio.to_thread(read_audio, file)
        options = self._request_options(
            audio,
            filename,
            model=model,
            timeout=timeout,
            idempotency_key=idempotency_key,
        )
        retries = self._retries(max_retries)
        attempt = 0
        while True:
            log.debug("POST %s (attempt %d)", options["url"], attempt + 1)
            try:
                response = await self._http.send(self._http.build_request(**options))
            except httpx.TransportError as error:
                delay = self._retry_delay(attempt, retries, error=error)
                if delay is None:
                    raise self._transport_error(error) from error
            else:
                delay = self._retry_delay(attempt, retries, response=response)
                if delay is None:
                    return self._parse_response(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in (its owner closes it)."""
        if self._owns_http_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
