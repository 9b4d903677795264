"""Client and AsyncClient: shared request building and retry decisions, two I/O loops.

Whatever the transport or the answer does, a call ends in a Transcription or in one of
the client's own errors (`_errors.py`), with the status, request id and a body excerpt
where there was an answer. The API key is blanked from every excerpt and logged header.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import ValidationError

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODELS,
    DEFAULT_TIMEOUT,
    RETRY_COUNT_HEADER,
    check_header_value,
    checked_headers,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    InvalidResponseError,
    body_excerpt,
    error_class_for,
    redact,
    safe_headers,
)
from ._input import AudioFile, AudioInput, read_audio
from ._retry import RetryPolicy
from .http_retry import retry_after_seconds, should_retry
from .types import Transcription, parse_transcription

log = logging.getLogger(__name__)

Timeout = float | httpx.Timeout | None
# What can go wrong in httpx while sending or reading; TransportError is retried.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class NotGiven:
    """Marks a per-call option left out, so `None` (no timeout) stays a real value."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings httpx would make (its CA bundle, SSL_CERT_FILE and the like),
    made once per process: loading the CA bundle takes tens of milliseconds a client.
    """
    return httpx.create_ssl_context()


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
        default_headers: Mapping[str, str] | None,
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
        self.default_headers = checked_headers(default_headers)

    def __repr__(self) -> str:  # never the key
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"provider={self.provider!r}, model={self.model!r}, "
            f"max_retries={self.max_retries})"
        )

    def _request_options(
        self,
        audio: AudioFile,
        *,
        model: str | None,
        timeout: Timeout | NotGiven,
        idempotency_key: str | None,
        language: str | None,
        prompt: str | None,
        extra_headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """Keyword arguments for httpx's build_request, the same for every attempt."""
        model = model or self.model
        if idempotency_key is not None:
            check_header_value("idempotency_key", idempotency_key)
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            # The same key on every retry lets the server recognise a repeated request.
            "Idempotency-Key": idempotency_key or f"stt-{uuid.uuid4()}",
            **self.default_headers,
            **checked_headers(extra_headers),
        }
        options: dict[str, Any] = {
            "method": "POST",
            "headers": headers,
            "timeout": self.timeout if isinstance(timeout, NotGiven) else timeout,
        }
        if self.provider == "huggingface":
            if language is not None or prompt is not None:
                raise ConfigurationError(
                    "language and prompt go with the openai wire format only: the "
                    "huggingface format sends the audio bytes alone"
                )
            options["url"] = f"{self.base_url}/models/{model}"
            options["content"] = audio.content
            headers["Content-Type"] = audio.content_type
        else:
            options["url"] = f"{self.base_url}/v1/audio/transcriptions"
            options["files"] = {
                "file": (audio.filename, audio.content, audio.content_type)
            }
            options["data"] = {
                "model": model,
                "response_format": "verbose_json",
                "timestamp_granularities[]": "segment",
            }
            if language is not None:
                options["data"]["language"] = language  # ISO-639-1, e.g. "en"
            if prompt is not None:
                options["data"]["prompt"] = prompt  # words and spelling to expect
        return options

    def _attempt_options(self, options: dict[str, Any], attempt: int) -> dict[str, Any]:
        """This attempt's options: the attempt number in a header (0 the first time)."""
        headers = {**options["headers"], RETRY_COUNT_HEADER: str(attempt)}
        log.debug(
            "%s %s, attempt %d, headers %s",
            options["method"],
            options["url"],
            attempt + 1,
            safe_headers(headers, self._api_key),
        )
        return {**options, "headers": headers}

    def _retries(self, max_retries: int | NotGiven) -> int:
        return self.max_retries if isinstance(max_retries, NotGiven) else max_retries

    def _after_request_error(
        self, error: Exception, attempt: int, retries: int
    ) -> float:
        """The wait before the next attempt; raises the client's error if it is over."""
        if isinstance(error, httpx.TransportError) and attempt < retries:
            delay = self.retry_policy.backoff(attempt)
            log.info(
                "%s; retry %d of %d in %.2fs",
                type(error).__name__,
                attempt + 1,
                retries,
                delay,
            )
            return delay
        reason = redact(str(error) or type(error).__name__, self._api_key)
        if isinstance(error, httpx.TimeoutException):
            raise APITimeoutError(
                f"no answer from {self.base_url} in time ({type(error).__name__})"
            ) from error
        if isinstance(error, httpx.TransportError):
            raise APIConnectionError(
                f"could not reach {self.base_url}: {reason}"
            ) from error
        raise APIError(f"request to {self.base_url} failed: {reason}") from error

    def _after_response(
        self, response: httpx.Response, raw: bytes, attempt: int, retries: int
    ) -> Transcription | float:
        """The transcription, or the wait before the next attempt; else raises."""
        headers = response.headers
        log.debug(
            "HTTP %d, headers %s",
            response.status_code,
            safe_headers(headers, self._api_key),
        )
        body, decode_error = _decode(response, raw)
        if response.is_success:
            return self._parse(response, raw, body, decode_error)
        excerpt = body_excerpt(raw if body is None else body, self._api_key)
        requested = retry_after_seconds(headers)
        note = ""
        if should_retry(response.status_code, headers) and attempt < retries:
            delay = self.retry_policy.delay(attempt, headers)
            if delay is not None:
                log.info(
                    "HTTP %d; retry %d of %d in %.2fs",
                    response.status_code,
                    attempt + 1,
                    retries,
                    delay,
                )
                return delay
            limit = self.retry_policy.max_retry_after
            note = (
                f"the server asked to wait {requested:g} s, longer than this client "
                f"waits (RetryPolicy.max_retry_after={limit:g} s)"
            )
        raise self._status_error(response, excerpt, requested, note)

    def _status_error(
        self,
        response: httpx.Response,
        excerpt: str,
        requested: float | None,
        note: str,
    ) -> APIStatusError:
        status = response.status_code
        reason = redact(response.reason_phrase, self._api_key)
        message = f"HTTP {status} {reason}".rstrip()
        for detail in (note, excerpt):
            if detail:
                message += f": {detail}"
        return error_class_for(status)(
            message,
            status_code=status,
            request_id=self._request_id(response),
            body=excerpt,
            retry_after=requested,
        )

    def _parse(
        self,
        response: httpx.Response,
        raw: bytes,
        body: bytes | None,
        decode_error: str | None,
    ) -> Transcription:
        status = response.status_code
        if body is None:
            encoding = response.headers.get("content-encoding", "")
            problem = f"cannot be decoded (Content-Encoding {encoding}): {decode_error}"
        else:
            try:
                result = parse_transcription(json.loads(body), self.provider)
                return result.model_copy(
                    update={"request_id": self._request_id(response)}
                )
            except ValueError as error:
                # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is
                # pydantic's ValidationError: each says where the body went wrong.
                problem = _describe(error, self.provider)
        raise InvalidResponseError(
            redact(f"HTTP {status} answer {problem}", self._api_key),
            status_code=status,
            request_id=self._request_id(response),
            body=body_excerpt(raw if body is None else body, self._api_key),
        )

    def _request_id(self, response: httpx.Response) -> str | None:
        request_id = response.headers.get("x-request-id")
        return None if request_id is None else redact(request_id, self._api_key)


def _decode(response: httpx.Response, raw: bytes) -> tuple[bytes | None, str | None]:
    """The body undone from its Content-Encoding, or None and why that failed.

    The raw bytes are read first, so a corrupt encoding still leaves them for the
    error's excerpt and the status code for its class.
    """
    decoded = httpx.Response(
        response.status_code, headers=response.headers, stream=httpx.ByteStream(raw)
    )
    try:
        return decoded.read(), None
    except httpx.DecodingError as error:
        return None, str(error) or type(error).__name__


def _describe(error: ValueError, provider: str) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]  # its message, never the input value it holds
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        count = error.error_count()
        more = f" (and {count - 1} more)" if count > 1 else ""
        return f"does not fit the {provider} format: {where}: {first['msg']}{more}"
    if isinstance(error, UnicodeDecodeError):
        return "is not UTF-8 text"
    return f"is not JSON ({error})"


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
        default_headers: Mapping[str, str] | None = None,
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
            default_headers=default_headers,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.Client(verify=tls_context())

    def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription:
        """Transcribe one audio input: a path, bytes, a binary file object, or a
        `(filename, content[, content_type])` tuple.

        `language` (ISO-639-1) and `prompt` (words to expect) go to the openai wire
        format; `extra_headers` are sent with this call only.
        """
        options = self._request_options(
            read_audio(file),
            model=model,
            timeout=timeout,
            idempotency_key=idempotency_key,
            language=language,
            prompt=prompt,
            extra_headers=extra_headers,
        )
        retries = self._retries(max_retries)
        attempt = 0
        while True:
            try:
                request = self._http.build_request(
                    **self._attempt_options(options, attempt)
                )
                response = self._http.send(request, stream=True)
                try:
                    raw = b"".join(response.iter_raw())
                finally:
                    response.close()
            except HTTPX_ERRORS as error:
                outcome: Transcription | float = self._after_request_error(
                    error, attempt, retries
                )
            else:
                outcome = self._after_response(response, raw, attempt, retries)
            if isinstance(outcome, Transcription):
                return outcome
            time.sleep(outcome)
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
        default_headers: Mapping[str, str] | None = None,
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
            default_headers=default_headers,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.AsyncClient(verify=tls_context())

    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription:
        """Transcribe one audio input: a path, bytes, a binary file object, or a
        `(filename, content[, content_type])` tuple.

        `language` (ISO-639-1) and `prompt` (words to expect) go to the openai wire
        format; `extra_headers` are sent with this call only.
        """
        audio = await asyncio.to_thread(read_audio, file)
        options = self._request_options(
            audio,
            model=model,
            timeout=timeout,
            idempotency_key=idempotency_key,
            language=language,
            prompt=prompt,
            extra_headers=extra_headers,
        )
        retries = self._retries(max_retries)
        attempt = 0
        while True:
            try:
                request = self._http.build_request(
                    **self._attempt_options(options, attempt)
                )
                response = await self._http.send(request, stream=True)
                try:
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
            except HTTPX_ERRORS as error:
                outcome: Transcription | float = self._after_request_error(
                    error, attempt, retries
                )
            else:
                outcome = self._after_response(response, raw, attempt, retries)
            if isinstance(outcome, Transcription):
                return outcome
            await asyncio.sleep(outcome)
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
