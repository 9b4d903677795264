"""AsyncClient: the asynchronous speech-to-text client, one awaiting loop of attempts.

The request is built by `_request.py`, each answer read by `_response.py`, and the
decision after each attempt made by `_base.py`, as for Client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import overload

import httpx

from ._answer_clock import answer_within, async_transport
from ._base import HTTPX_ERRORS, BaseClient
from ._config import DEFAULT_TIMEOUT, ResponseFormat, TimestampGranularity
from ._input import AudioInput, read_audio
from ._request import (
    NOT_GIVEN,
    JSONFormat,
    NotGiven,
    TextFormat,
    Timeout,
    attempt_options,
    tls_context,
    upload_limit,
)
from ._response import BodyReader
from .http_retry import RetryPolicy
from .types import Transcription


class AsyncClient(BaseClient):
    """Asynchronous speech-to-text client. Use with `async with`, or aclose()."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        wait_for_model: bool = False,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """`retry_policy` says how often to retry and how long to wait (by default
        `RetryPolicy()`); `wait_for_model` (Hugging Face only) asks the service to
        hold each request while the model loads, instead of answering 503 with an
        estimated time."""
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            provider=provider,
            model=model,
            timeout=timeout,
            retry_policy=retry_policy,
            default_headers=default_headers,
            wait_for_model=wait_for_model,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.AsyncClient(
            verify=tls_context(), transport=async_transport(tls_context())
        )

    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        response_format: TextFormat,
        temperature: float | None = None,
        timestamp_granularities: Sequence[TimestampGranularity] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | None = None,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> str: ...

    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        response_format: JSONFormat | None = None,
        temperature: float | None = None,
        timestamp_granularities: Sequence[TimestampGranularity] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | None = None,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription: ...

    @overload
    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        response_format: ResponseFormat | None = None,
        temperature: float | None = None,
        timestamp_granularities: Sequence[TimestampGranularity] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | None = None,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription | str: ...

    async def transcribe(
        self,
        file: AudioInput,
        *,
        model: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
        response_format: ResponseFormat | None = None,
        temperature: float | None = None,
        timestamp_granularities: Sequence[TimestampGranularity] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | None = None,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription | str:
        """Transcribe one audio input: a path, bytes, a binary file object, or a
        `(filename, content[, content_type])` tuple.

        The options are the official SDK's, for the openai wire format: `language`
        (ISO-639-1), `prompt` (words to expect), `response_format` (json and
        verbose_json give a Transcription, text, srt and vtt a str; left out,
        verbose_json for whisper-1, which gives segments, and json for the newer
        models, which refuse verbose_json), `temperature` (0 to 1),
        `timestamp_granularities` (["word", "segment"], with verbose_json).
        `extra_headers` are sent with this call only; `retry_policy`, given, is this
        call's instead of the client's.
        """
        audio = await asyncio.to_thread(read_audio, file, upload_limit(self.provider))
        options, response_format = self._request_options(
            audio,
            model=model,
            timeout=timeout,
            idempotency_key=idempotency_key,
            language=language,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            timestamp_granularities=timestamp_granularities,
            extra_headers=extra_headers,
        )
        policy = retry_policy or self.retry_policy
        attempt = 0
        while True:
            try:
                request = self._http.build_request(
                    **attempt_options(options, attempt, self._api_key)
                )
                with answer_within(request):
                    response = await self._http.send(request, stream=True)
                    body = BodyReader(response, self._api_key)
                    try:
                        async for chunk in response.aiter_raw():
                            body.add(chunk)
                    finally:
                        await response.aclose()
                raw = body.raw
            except HTTPX_ERRORS as error:
                outcome: Transcription | str | float = self._after_request_error(
                    error, attempt, policy
                )
            else:
                outcome = self._after_response(
                    response, raw, attempt, policy, response_format
                )
            if not isinstance(outcome, float):
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
