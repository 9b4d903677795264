"""Client for a speech-to-text service: sync and async, retries, typed results."""

from ._batch import BatchItem, transcribe_many
from ._client import NOT_GIVEN, AsyncClient, Client
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
from ._retry import RetryPolicy
from .errors import ConfigError, Error
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
    "Settings",
    "Transcription",
    "UnprocessableEntityError",
    "Word",
    "transcribe_many",
]
