"""What Client and AsyncClient share: their settings, and after each attempt the
decision to return, wait and retry, or raise. Only the I/O loops differ between them.

Whatever the transport or the answer does, a call ends in a Transcription, a str (the
text formats) or one of the client's own errors (`_errors.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ._config import (
    DEFAULT_MODELS,
    ResponseFormat,
    TimestampGranularity,
    check_timeout,
    checked_headers,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    body_excerpt,
    redact,
    safe_headers,
)
from ._input import AudioFile
from ._request import NotGiven, Timeout, request_options
from ._response import (
    decode,
    loading_error,
    loading_time,
    parse_result,
    status_error,
)
from .http_retry import RetryPolicy, retry_after_seconds, should_retry
from .types import Transcription

log = logging.getLogger(__name__)

# What can go wrong in httpx while sending or reading; TransportError is retried.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class BaseClient:
    """Settings and retry decisions shared by both clients."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        provider: str | None,
        model: str | None,
        timeout: Timeout,
        retry_policy: RetryPolicy | None,
        default_headers: Mapping[str, str] | None,
        wait_for_model: bool,
    ) -> None:
        settings = resolve_settings(api_key, base_url, provider)
        check_timeout(timeout)
        if wait_for_model and settings.provider != "huggingface":
            raise ConfigurationError(
                "wait_for_model goes with the huggingface wire format only: OpenAI "
                "has no models to load"
            )
        self._api_key = settings.api_key
        self.base_url = settings.base_url
        self.provider = settings.provider
        self.model = model or DEFAULT_MODELS[settings.provider]
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self.default_headers = checked_headers(default_headers)
        self.wait_for_model = wait_for_model

    def __repr__(self) -> str:  # never the key
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"provider={self.provider!r}, model={self.model!r}, "
            f"retry_policy={self.retry_policy!r})"
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
        response_format: ResponseFormat | None,
        temperature: float | None,
        timestamp_granularities: Sequence[TimestampGranularity] | None,
        extra_headers: Mapping[str, str] | None,
    ) -> tuple[dict[str, Any], ResponseFormat]:
        """One call's request (see `_request.request_options`), with this client's
        settings filling in what the call leaves out."""
        if not isinstance(timeout, NotGiven):
            check_timeout(timeout)
        return request_options(
            audio,
            api_key=self._api_key,
            base_url=self.base_url,
            provider=self.provider,
            model=model or self.model,
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            headers={**self.default_headers, **checked_headers(extra_headers)},
            wait_for_model=self.wait_for_model,
            idempotency_key=idempotency_key,
            language=language,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            timestamp_granularities=timestamp_granularities,
        )

    def _after_request_error(
        self, error: Exception, attempt: int, policy: RetryPolicy
    ) -> float:
        """The wait before the next attempt; raises the client's error if it is over."""
        if isinstance(error, httpx.TransportError) and attempt < policy.max_retries:
            delay = policy.backoff(attempt)
            log.info(
                "%s; retry %d of %d in %.2fs",
                type(error).__name__,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            return delay
        reason = redact(str(error) or type(error).__name__, self._api_key)
        if isinstance(error, httpx.TimeoutException):
            raise APITimeoutError(
                f"no answer from {self.base_url} in time ({type(error).__name__})"
            ) from error
        if isinstance(error, httpx.ConnectError):
            raise APIConnectionError(
                f"could not reach {self.base_url}: {reason}"
            ) from error
        if isinstance(error, httpx.TransportError):  # it answered, then broke off
            raise APIConnectionError(
                f"lost the connection to {self.base_url}: {reason}"
            ) from error
        raise APIError(f"request to {self.base_url} failed: {reason}") from error

    def _after_response(
        self,
        response: httpx.Response,
        raw: bytes,
        attempt: int,
        policy: RetryPolicy,
        response_format: str,
    ) -> Transcription | str | float:
        """The result, or the wait (a float) before the next attempt; else raises."""
        headers = response.headers
        log.debug(
            "HTTP %d, headers %s",
            response.status_code,
            safe_headers(headers, self._api_key),
        )
        body, decode_error = decode(response, raw)
        if response.is_success:
            return parse_result(
                response,
                raw,
                body,
                decode_error,
                response_format=response_format,
                provider=self.provider,
                api_key=self._api_key,
            )
        excerpt = body_excerpt(raw if body is None else body, self._api_key)
        loading = loading_time(response, body, self.provider)
        requested = retry_after_seconds(headers)
        if requested is None:
            requested = loading  # Hugging Face says it in the body, not a header
        note = ""  # why there is no retry, where one was due
        cap = f"RetryPolicy.max_wait_s={policy.max_wait_s:g} s"
        retryable = should_retry(response.status_code, headers)
        if retryable and attempt < policy.max_retries:
            delay = policy.delay(attempt, headers, requested=loading)
            if delay is not None:
                log.info(
                    "HTTP %d%s; retry %d of %d in %.2fs",
                    response.status_code,
                    "" if loading is None else " (the model is loading)",
                    attempt + 1,
                    policy.max_retries,
                    delay,
                )
                return delay
            assert requested is not None  # delay() gives None for a long wait only
            note = (
                f"the server asked to wait {requested:g} s, longer than this client "
                f"waits ({cap})"
            )
        if loading is not None:
            too_long = f"longer than this client waits ({cap})" if note else ""
            raise loading_error(
                response, excerpt, loading, too_long=too_long, api_key=self._api_key
            )
        raise status_error(
            response,
            excerpt,
            body,
            requested=requested,
            note=note,
            api_key=self._api_key,
        )
