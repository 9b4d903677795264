"""Client for a speech-to-text service: sync and async, retries, typed results."""

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
