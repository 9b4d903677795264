"""What came back: an answer read into a result, or into the error that says why not.

Each error carries the status, the request id and an excerpt of the body where there
was an answer; the API key is blanked from all of them before anything is cut.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import ValidationError

from ._answer_clock import OVERDUE, answer_overdue
from ._config import TEXT_FORMATS
from ._errors import (
    APIStatusError,
    InvalidResponseError,
    ModelLoadingError,
    body_excerpt,
    error_class_for,
    redact,
)
from .types import Transcription, parse_transcription

# The most an answer may hold, on the wire and decoded: a verbose_json with word
# timestamps for hours of audio is a few MB, so more is a fault, and reading on
# would only fill memory.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# `\ud800` to `\udfff` escaped in JSON: half a surrogate pair, or a whole one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Decoding goes in slices this long, so a compressed body that inflates a
# thousandfold is stopped at the cap, not after it has filled memory.
_DECODE_SLICE_BYTES = 16 * 1024


class BodyReader:
    """A streamed answer gathered whole, within the size cap and the read timeout.

    The read timeout bounds the whole answer (`_answer_clock.py`): each chunk is
    checked against the same clock as the socket reads, which is what bounds the
    body when an `http_client` passed in does the reading. Running over it is a
    timeout like any other (retried as one).
    """

    def __init__(self, response: httpx.Response, api_key: str) -> None:
        self._response = response
        self._api_key = api_key
        self._raw = bytearray()

    def add(self, chunk: bytes) -> None:
        self._raw += chunk
        if len(self._raw) > MAX_RESPONSE_BYTES:
            status = self._response.status_code
            raise InvalidResponseError(
                f"HTTP {status} answer is longer than {_mib(MAX_RESPONSE_BYTES)}; "
                "stopped reading it",
                status_code=status,
                request_id=request_id(self._response, self._api_key),
                body=body_excerpt(bytes(self._raw[:1024]), self._api_key),
            )
        if answer_overdue():
            raise httpx.ReadTimeout(OVERDUE, request=self._response.request)

    @property
    def raw(self) -> bytes:
        return bytes(self._raw)


def decode(response: httpx.Response, raw: bytes) -> tuple[bytes | None, str | None]:
    """The body undone from its Content-Encoding, or None and why that failed.

    The raw bytes are read first, so a corrupt encoding still leaves them for the
    error's excerpt and the status code for its class.
    """
    decoded = httpx.Response(
        response.status_code, headers=response.headers, stream=_Slices(raw)
    )
    body = bytearray()
    try:
        for chunk in decoded.iter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                return None, f"it decodes to more than {_mib(MAX_RESPONSE_BYTES)}"
    except httpx.DecodingError as error:
        return None, str(error) or type(error).__name__
    return bytes(body), None


class _Slices(httpx.SyncByteStream):
    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self._raw), _DECODE_SLICE_BYTES):
            yield self._raw[start : start + _DECODE_SLICE_BYTES]


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def parse_result(
    response: httpx.Response,
    raw: bytes,
    body: bytes | None,
    decode_error: str | None,
    *,
    response_format: str,
    provider: str,
    api_key: str,
) -> Transcription | str:
    """A 2xx answer as the result its format promises; InvalidResponseError if the
    body is not that."""
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
            result = parse_transcription(_json(body), provider)
            return result.model_copy(
                update={"request_id": request_id(response, api_key)}
            )
        except ValueError as error:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is
            # pydantic's ValidationError: each says where the body went wrong.
            problem = _describe(error, provider)
    raise InvalidResponseError(
        redact(f"HTTP {status} answer {problem}", api_key),
        status_code=status,
        request_id=request_id(response, api_key),
        body=body_excerpt(raw if body is None else body, api_key),
    )


def loading_time(
    response: httpx.Response, body: bytes | None, provider: str
) -> float | None:
    """Hugging Face's estimate of the seconds until a loading model answers: a
    503 with {"error": ..., "estimated_time": seconds}. None for any other answer.
    """
    if provider != "huggingface" or response.status_code != 503 or not body:
        return None
    try:
        data = _json(body)
    except ValueError:
        return None
    estimate = data.get("estimated_time") if isinstance(data, dict) else None
    if isinstance(estimate, bool) or not isinstance(estimate, int | float):
        return None
    return max(0.0, float(estimate)) if math.isfinite(estimate) else None


def loading_error(
    response: httpx.Response,
    excerpt: str,
    loading: float,
    *,
    too_long: str,
    api_key: str,
) -> ModelLoadingError:
    """The error for a model still loading; `too_long` says why it was not waited
    for, where the wait was longer than the client waits ("" otherwise)."""
    status = response.status_code
    message = (
        f"HTTP {status}: the model is still loading, ready in about "
        f"{loading:g} s by the service's estimate"
    )
    if too_long:
        message += f", {too_long}"
    message += (
        "; try again then, or pass wait_for_model=True (--wait-for-model) to "
        f"have the service hold the request until it is loaded: {excerpt}"
    )
    return ModelLoadingError(
        message,
        estimated_time=loading,
        status_code=status,
        request_id=request_id(response, api_key),
        body=excerpt,
    )


def status_error(
    response: httpx.Response,
    excerpt: str,
    body: bytes | None,
    *,
    requested: float | None,
    note: str,
    api_key: str,
) -> APIStatusError:
    """The error for an error status, its class by the status, its message the
    service's own where the body is openai-style; `note` says why it was not
    retried, where a retry was due."""
    status = response.status_code
    reason = redact(response.reason_phrase, api_key)
    message = f"HTTP {status} {reason}".rstrip()
    details = _openai_error(body)
    described = excerpt
    if details.get("message"):
        described = redact(details["message"] or "", api_key)
        if details.get("param"):
            described += f" (param: {details['param']})"
    if response.is_redirect:
        # Not followed, as the official SDKs do not: the key would go with the
        # request to wherever the answer points.
        target = redact(response.headers["location"], api_key)
        described = (
            f"the service answers from {target} instead; requests are not "
            "redirected, so point the base URL there"
        )
    for detail in (note, described):
        if detail:
            message += f": {detail}"
    return error_class_for(status)(
        message,
        status_code=status,
        request_id=request_id(response, api_key),
        body=excerpt,
        retry_after=requested,
        error_type=details.get("type"),
        param=details.get("param"),
        code=details.get("code"),
    )


def request_id(response: httpx.Response, api_key: str) -> str | None:
    found = response.headers.get("x-request-id")
    return None if found is None else redact(found, api_key)


def _openai_error(body: bytes | None) -> dict[str, str | None]:
    """message, type, param and code of an openai-style error body; {} if it is not
    one. Each value is a string or None, whatever the body held there."""
    try:
        data = _json(body or b"")
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return {}
    return {
        key: error[key] if isinstance(error.get(key), str) else None
        for key in ("message", "type", "param", "code")
    }


def _json(body: bytes) -> Any:
    """The body's JSON value; nesting too deep for Python's parser is a ValueError,
    like any other body that is no JSON this client reads."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    # JSON may escape half of a UTF-16 pair alone (\ud800): a string that no UTF-8
    # text can hold, which would fail only when the result is printed or saved.
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotText("holds half a UTF-16 surrogate pair: no text") from None
    return value


class NotText(ValueError):
    """JSON whose strings are not all text."""


def _describe(error: ValueError, provider: str) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]  # its message, never the input value it holds
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        count = error.error_count()
        more = f" (and {count - 1} more)" if count > 1 else ""
        return f"does not fit the {provider} format: {where}: {first['msg']}{more}"
    if isinstance(error, UnicodeDecodeError):
        return "is not UTF-8 text"
    if isinstance(error, NotText):
        return str(error)
    return f"is not JSON ({error})"
