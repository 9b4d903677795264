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
import math
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import httpx
from pydantic import ValidationError

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODELS,
    DEFAULT_TIMEOUT,
    RESPONSE_FORMATS,
    RETRY_COUNT_HEADER,
    TEXT_FORMATS,
    UPLOAD_LIMITS,
    VERBOSE_MODELS,
    WAIT_FOR_MODEL_HEADER,
    ResponseFormat,
    TimestampGranularity,
    check_header_value,
    checked_headers,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AudioTooLargeError,
    ConfigurationError,
    InvalidResponseError,
    ModelLoadingError,
    body_excerpt,
    error_class_for,
    redact,
    safe_headers,
)
from ._input import AudioFile, AudioInput, check_nameable, read_audio
from ._retry import RetryPolicy
from .http_retry import retry_after_seconds, should_retry
from .types import Transcription, parse_transcription

log = logging.getLogger(__name__)

Timeout = float | httpx.Timeout | None
# What can go wrong in httpx while sending or reading; TransportError is retried.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)
# What one call asks of the service beyond the audio, as the official SDK names it.
JSONFormat = Literal["json", "verbose_json"]
TextFormat = Literal["text", "srt", "vtt"]


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
        wait_for_model: bool,
    ) -> None:
        settings = resolve_settings(api_key, base_url, provider)
        if max_retries < 0:
            raise ConfigurationError(
                f"max_retries must be 0 or more, not {max_retries}"
            )
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
        self.max_retries = max_retries
        self.retry_policy = retry_policy or RetryPolicy()
        self.default_headers = checked_headers(default_headers)
        self.wait_for_model = wait_for_model

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
        response_format: ResponseFormat | None,
        temperature: float | None,
        timestamp_granularities: Sequence[TimestampGranularity] | None,
        extra_headers: Mapping[str, str] | None,
    ) -> tuple[dict[str, Any], ResponseFormat]:
        """Keyword arguments for httpx's build_request, the same for every attempt,
        and the response format asked for (json for the huggingface format)."""
        model = model or self.model
        if idempotency_key is not None:
            check_header_value("idempotency_key", idempotency_key)
        limit = UPLOAD_LIMITS[self.provider]
        if limit is not None and len(audio.content) > limit:
            size = len(audio.content)
            raise AudioTooLargeError(
                f"{audio.filename} is {size / 1e6:.1f} MB ({size} bytes); the "
                f"{self.provider} service takes at most {limit} bytes "
                f"({limit / 2**20:g} MB): "
                "compress it (mono, a lower bit rate) or split it",
                size=size,
                limit=limit,
            )
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
            given = {
                "language": language,
                "prompt": prompt,
                "response_format": response_format,
                "temperature": temperature,
                "timestamp_granularities": timestamp_granularities,
            }
            names = [name for name, value in given.items() if value is not None]
            if names:
                raise ConfigurationError(
                    f"{', '.join(names)}: the openai wire format only; the "
                    "huggingface format sends the audio bytes alone"
                )
            options["url"] = f"{self.base_url}/models/{model}"
            options["content"] = audio.content
            headers["Content-Type"] = audio.content_type
            if self.wait_for_model:
                headers[WAIT_FOR_MODEL_HEADER] = "true"
            return options, "json"
        check_nameable(audio)
        fields: dict[str, Any] = {"model": model}
        response_format = _response_format(
            response_format, model, timestamp_granularities
        )
        fields["response_format"] = response_format
        if timestamp_granularities is not None:
            fields["timestamp_granularities[]"] = list(timestamp_granularities)
        if language is not None:
            fields["language"] = language  # ISO-639-1, e.g. "en"
        if prompt is not None:
            fields["prompt"] = prompt  # words and spelling to expect
        if temperature is not None:
            if not 0 <= temperature <= 1:
                raise ConfigurationError(
                    f"temperature={temperature!r}: expected a number from 0 to 1"
                )
            fields["temperature"] = str(temperature)
        options["url"] = f"{self.base_url}/v1/audio/transcriptions"
        options["files"] = {"file": (audio.filename, audio.content, audio.content_type)}
        options["data"] = fields
        if response_format in TEXT_FORMATS:
            headers["Accept"] = "text/plain"
        return options, response_format

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
        self,
        response: httpx.Response,
        raw: bytes,
        attempt: int,
        retries: int,
        response_format: str,
    ) -> Transcription | str | float:
        """The result, or the wait (a float) before the next attempt; else raises."""
        headers = response.headers
        log.debug(
            "HTTP %d, headers %s",
            response.status_code,
            safe_headers(headers, self._api_key),
        )
        body, decode_error = _decode(response, raw)
        if response.is_success:
            return self._parse(response, raw, body, decode_error, response_format)
        excerpt = body_excerpt(raw if body is None else body, self._api_key)
        loading = self._loading_time(response, body)
        requested = retry_after_seconds(headers)
        if requested is None:
            requested = loading  # Hugging Face says it in the body, not a header
        note = ""  # why there is no retry, where one was due
        if should_retry(response.status_code, headers) and attempt < retries:
            delay = self.retry_policy.delay(attempt, headers, requested=loading)
            if delay is not None:
                log.info(
                    "HTTP %d%s; retry %d of %d in %.2fs",
                    response.status_code,
                    "" if loading is None else " (the model is loading)",
                    attempt + 1,
                    retries,
                    delay,
                )
                return delay
            limit = self.retry_policy.max_retry_after
            assert requested is not None  # delay() gives None for a long wait only
            note = (
                f"the server asked to wait {requested:g} s, longer than this client "
                f"waits (RetryPolicy.max_retry_after={limit:g} s)"
            )
        if loading is not None:
            raise self._loading_error(response, excerpt, loading, capped=bool(note))
        raise self._status_error(response, excerpt, requested, note, body)

    def _loading_time(
        self, response: httpx.Response, body: bytes | None
    ) -> float | None:
        """Hugging Face's estimate of the seconds until a loading model answers: a
        503 with {"error": ..., "estimated_time": seconds}. None for any other answer.
        """
        if self.provider != "huggingface" or response.status_code != 503 or not body:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        estimate = data.get("estimated_time") if isinstance(data, dict) else None
        if isinstance(estimate, bool) or not isinstance(estimate, int | float):
            return None
        return max(0.0, float(estimate)) if math.isfinite(estimate) else None

    def _loading_error(
        self, response: httpx.Response, excerpt: str, loading: float, capped: bool
    ) -> ModelLoadingError:
        status = response.status_code
        message = (
            f"HTTP {status}: the model is still loading, ready in about "
            f"{loading:g} s by the service's estimate"
        )
        if capped:
            limit = self.retry_policy.max_retry_after
            message += (
                f", longer than this client waits "
                f"(RetryPolicy.max_retry_after={limit:g} s)"
            )
        message += (
            "; try again then, or pass wait_for_model=True (--wait-for-model) to "
            f"have the service hold the request until it is loaded: {excerpt}"
        )
        return ModelLoadingError(
            message,
            estimated_time=loading,
            status_code=status,
            request_id=self._request_id(response),
            body=excerpt,
        )

    def _status_error(
        self,
        response: httpx.Response,
        excerpt: str,
        requested: float | None,
        note: str,
        body: bytes | None,
    ) -> APIStatusError:
        status = response.status_code
        reason = redact(response.reason_phrase, self._api_key)
        message = f"HTTP {status} {reason}".rstrip()
        details = _openai_error(body)
        described = excerpt
        if details.get("message"):
            described = redact(details["message"] or "", self._api_key)
            if details.get("param"):
                described += f" (param: {details['param']})"
        for detail in (note, described):
            if detail:
                message += f": {detail}"
        return error_class_for(status)(
            message,
            status_code=status,
            request_id=self._request_id(response),
            body=excerpt,
            retry_after=requested,
            error_type=details.get("type"),
            param=details.get("param"),
            code=details.get("code"),
        )

    def _parse(
        self,
        response: httpx.Response,
        raw: bytes,
        body: bytes | None,
        decode_error: str | None,
        response_format: str,
    ) -> Transcription | str:
        status = response.status_code
        if body is None:
            encoding = response.headers.get("content-encoding", "")
            problem = f"cannot be decoded (Content-Encoding {encoding}): {decode_error}"
        elif response_format in TEXT_FORMATS:
            try:
                return body.decode("utf-8")  # text, srt or vtt, as the service wrote it
            except UnicodeDecodeError:
                problem = "is not UTF-8 text"
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


def _response_format(
    response_format: ResponseFormat | None,
    model: str,
    timestamp_granularities: Sequence[TimestampGranularity] | None,
) -> ResponseFormat:
    """The format to ask for: the one given, else verbose_json where timestamps
    were asked for or the model gives segments, else json."""
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise ConfigurationError(
            f"response_format={response_format!r}: expected one of "
            f"{', '.join(RESPONSE_FORMATS)}"
        )
    if timestamp_granularities is not None:
        unknown = set(timestamp_granularities) - {"word", "segment"}
        if unknown or isinstance(timestamp_granularities, str):
            raise ConfigurationError(
                f"timestamp_granularities={timestamp_granularities!r}: expected a "
                'list of "word" and "segment"'
            )
        if response_format not in (None, "verbose_json"):
            raise ConfigurationError(
                "timestamp_granularities need response_format='verbose_json', "
                f"not {response_format!r}"
            )
        return "verbose_json"
    if response_format is not None:
        return response_format
    return "verbose_json" if model in VERBOSE_MODELS else "json"


def _openai_error(body: bytes | None) -> dict[str, str | None]:
    """message, type, param and code of an openai-style error body; {} if it is not
    one. Each value is a string or None, whatever the body held there."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return {}
    return {
        key: error[key] if isinstance(error.get(key), str) else None
        for key in ("message", "type", "param", "code")
    }


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
        wait_for_model: bool = False,
        http_client: httpx.Client | None = None,
    ) -> None:
        """`wait_for_model` (Hugging Face only) asks the service to hold each request
        while the model loads, instead of answering 503 with an estimated time."""
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            provider=provider,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            default_headers=default_headers,
            wait_for_model=wait_for_model,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.Client(verify=tls_context())

    @overload
    def transcribe(
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
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> str: ...

    @overload
    def transcribe(
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
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription: ...

    @overload
    def transcribe(
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
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Transcription | str: ...

    def transcribe(
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
        max_retries: int | NotGiven = NOT_GIVEN,
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
        `extra_headers` are sent with this call only.
        """
        audio = read_audio(file)
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
                outcome: Transcription | str | float = self._after_request_error(
                    error, attempt, retries
                )
            else:
                outcome = self._after_response(
                    response, raw, attempt, retries, response_format
                )
            if not isinstance(outcome, float):
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
        wait_for_model: bool = False,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """`wait_for_model` (Hugging Face only) asks the service to hold each request
        while the model loads, instead of answering 503 with an estimated time."""
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            provider=provider,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            default_headers=default_headers,
            wait_for_model=wait_for_model,
        )
        self._owns_http_client = http_client is None
        self._http = http_client or httpx.AsyncClient(verify=tls_context())

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
        max_retries: int | NotGiven = NOT_GIVEN,
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
        max_retries: int | NotGiven = NOT_GIVEN,
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
        max_retries: int | NotGiven = NOT_GIVEN,
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
        max_retries: int | NotGiven = NOT_GIVEN,
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
        `extra_headers` are sent with this call only.
        """
        audio = await asyncio.to_thread(read_audio, file)
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
                outcome: Transcription | str | float = self._after_request_error(
                    error, attempt, retries
                )
            else:
                outcome = self._after_response(
                    response, raw, attempt, retries, response_format
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
