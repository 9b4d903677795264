"""Client for a speech-to-text service: sync and async, retries, typed results."""

from ._batch import BatchItem, transcribe_many
from ._client import NOT_GIVEN, AsyncClient, Client
from ._config import Settings
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from ._retry import RetryPolicy
from .types import Segment, Transcription

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "InvalidResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "Segment",
    "ServerError",
    "Settings",
    "Transcription",
    "UnprocessableEntityError",
    "transcribe_many",
]
