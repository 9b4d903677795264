"""What is sent: one call's request, built once and sent unchanged on every attempt
but for its attempt number.

Everything the service would refuse that can be seen before sending (a file over the
upload limit, an option the wire format lacks, a header value HTTP cannot carry) is
refused here, as a `ConfigurationError` or an `AudioInputError`, and nothing is sent.
"""

from __future__ import annotations

import functools
import logging
import ssl
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from ._config import (
    RESPONSE_FORMATS,
    RETRY_COUNT_HEADER,
    TEXT_FORMATS,
    UPLOAD_LIMITS,
    VERBOSE_MODELS,
    WAIT_FOR_MODEL_HEADER,
    Provider,
    ResponseFormat,
    TimestampGranularity,
    check_header_value,
)
from ._errors import ConfigurationError, safe_headers
from ._input import AudioFile, Limit, check_nameable

log = logging.getLogger(__name__)

Timeout = float | httpx.Timeout | None
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


def request_options(
    audio: AudioFile,
    *,
    api_key: str,
    base_url: str,
    provider: Provider,
    model: str,
    timeout: Timeout,
    headers: Mapping[str, str],
    wait_for_model: bool,
    idempotency_key: str | None,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat | None,
    temperature: float | None,
    timestamp_granularities: Sequence[TimestampGranularity] | None,
) -> tuple[dict[str, Any], ResponseFormat]:
    """Keyword arguments for httpx's build_request, the same for every attempt,
    and the response format asked for (json for the huggingface format).

    `headers` are the caller's, already checked, sent after the client's own.
    """
    if idempotency_key is not None:
        check_header_value("idempotency_key", idempotency_key)
    _check_size(audio, provider)
    sent_headers = {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        # The same key on every retry lets the server recognise a repeated request.
        "Idempotency-Key": idempotency_key or f"stt-{uuid.uuid4()}",
        **headers,
    }
    options: dict[str, Any] = {
        "method": "POST",
        "headers": sent_headers,
        "timeout": timeout,
    }
    if provider == "huggingface":
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
        options["url"] = f"{base_url}/models/{model}"
        options["content"] = audio.content
        sent_headers["Content-Type"] = audio.content_type
        if wait_for_model:
            sent_headers[WAIT_FOR_MODEL_HEADER] = "true"
        return options, "json"
    check_nameable(audio)
    fields: dict[str, Any] = {"model": model}
    response_format = choose_response_format(
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
    options["url"] = f"{base_url}/v1/audio/transcriptions"
    options["files"] = {"file": (audio.filename, audio.content, audio.content_type)}
    options["data"] = fields
    if response_format in TEXT_FORMATS:
        sent_headers["Accept"] = "text/plain"
    return options, response_format


def attempt_options(
    options: dict[str, Any], attempt: int, api_key: str
) -> dict[str, Any]:
    """This attempt's options: the attempt number in a header (0 the first time)."""
    headers = {**options["headers"], RETRY_COUNT_HEADER: str(attempt)}
    log.debug(
        "%s %s, attempt %d, headers %s",
        options["method"],
        options["url"],
        attempt + 1,
        safe_headers(headers, api_key),
    )
    return {**options, "headers": headers}


def choose_response_format(
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


def upload_limit(provider: Provider) -> Limit | None:
    limit = UPLOAD_LIMITS[provider]
    return None if limit is None else Limit(limit, provider)


def _check_size(audio: AudioFile, provider: Provider) -> None:
    limit = upload_limit(provider)
    if limit is not None:
        limit.check(audio.filename, len(audio.content))
