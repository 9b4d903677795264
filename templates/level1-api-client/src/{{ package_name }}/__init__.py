"""Client for a speech-to-text service: sync and async, retries, typed results."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from ._batch import BatchItem, transcribe_many
    from ._client import Client
    from ._config import Settings
    from ._errors import (
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AudioInputError,
        AudioTooLargeError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConflictError,
        InvalidResponseError,
        MissingAPIKeyError,
        ModelLoadingError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ServerError,
        UnprocessableEntityError,
    )
    from ._input import AudioInput
    from ._request import NOT_GIVEN
    from .errors import ConfigError, Error, ServiceError
    from .http_retry import RetryPolicy
    from .types import Segment, Transcription, Word

# Each public name is imported from its module on first use: the command line imports
# this package before anything else, and must set its Ctrl-C handling before
# httpx and pydantic load.
_MODULE_OF = {
    "AsyncClient": "._async_client",
    "BatchItem": "._batch",
    "transcribe_many": "._batch",
    "Client": "._client",
    "Settings": "._config",
    "APIConnectionError": "._errors",
    "APIError": "._errors",
    "APIStatusError": "._errors",
    "APITimeoutError": "._errors",
    "AudioInputError": "._errors",
    "AudioTooLargeError": "._errors",
    "AuthenticationError": "._errors",
    "BadRequestError": "._errors",
    "ConfigurationError": "._errors",
    "ConflictError": "._errors",
    "InvalidResponseError": "._errors",
    "MissingAPIKeyError": "._errors",
    "ModelLoadingError": "._errors",
    "NotFoundError": "._errors",
    "PermissionDeniedError": "._errors",
    "RateLimitError": "._errors",
    "ServerError": "._errors",
    "UnprocessableEntityError": "._errors",
    "AudioInput": "._input",
    "NOT_GIVEN": "._request",
    "ConfigError": ".errors",
    "Error": ".errors",
    "ServiceError": ".errors",
    "RetryPolicy": ".http_retry",
    "Segment": ".types",
    "Transcription": ".types",
    "Word": ".types",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AudioInput",
    "AudioInputError",
    "AudioTooLargeError",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "Client",
    "ConfigError",
    "ConfigurationError",
    "ConflictError",
    "Error",
    "InvalidResponseError",
    "MissingAPIKeyError",
    "ModelLoadingError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "Segment",
    "ServerError",
    "ServiceError",
    "Settings",
    "Transcription",
    "UnprocessableEntityError",
    "Word",
    "transcribe_many",
]
