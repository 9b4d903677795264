"""Exceptions, one class per cause, so callers catch what they can handle.

Every one is an `errors.Error`: `except Error` catches all the client raises on purpose,
and the command line prints one as a single line and exits with its `exit_code`. The
exit codes are errors.py's, the same in every project of the template: what the caller
gave (arguments, settings, audio) is a `ConfigError` (2); whatever the service did is a
`ServiceError` (3).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigError, ServiceError

BODY_EXCERPT_CHARS = 200
REDACTED = "***"
# Headers whose values are credentials, whatever they hold: never logged.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)


class ConfigurationError(ConfigError):
    """The client cannot be built from the given arguments and environment."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was given, neither as an argument nor in the environment."""


class AudioInputError(ConfigError):
    """An audio input cannot be read: a missing file, a text-mode file object..."""


class AudioTooLargeError(AudioInputError):
    """An audio file over the service's upload limit: refused before it is sent."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size  # bytes
        self.limit = limit  # bytes


class APIError(ServiceError):
    """Base class of everything that went wrong talking to the service."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.body = body  # a short excerpt of the response body, for diagnosis

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} | request id {self.request_id}"
        return self.message


class APIConnectionError(APIError):
    """The service could not be reached (DNS, connection refused or dropped)."""


class APITimeoutError(APIConnectionError):
    """The service did not connect or answer within the timeout."""


class InvalidResponseError(APIError):
    """The service answered 2xx, but not with a body this client understands."""


class APIStatusError(APIError):
    """The service answered with an error status (4xx or 5xx)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, request_id=request_id, body=body
        )
        self.retry_after = retry_after  # seconds the server asked to wait, if it did
        # What an openai-style error body says: {"error": {"message", "type",
        # "param", "code"}}; None where the body does not say (Hugging Face's).
        self.type = error_type  # "invalid_request_error", say
        self.param = param  # the request field at fault, "model" say
        self.code = code  # "invalid_api_key", say


class BadRequestError(APIStatusError):
    """400: the request was malformed (a file the service cannot decode, say)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: wrong base URL, path or model name."""


class ConflictError(APIStatusError):
    """409: the request conflicts with another one (retried before this is raised)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well formed but its content was refused."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried, honouring Retry-After, before this is raised."""


class ServerError(APIStatusError):
    """5xx: the service failed; retried before this is raised."""


class ModelLoadingError(ServerError):
    """503 from Hugging Face: the model is still loading, ready in `estimated_time`
    seconds (the service's guess). Raised when the retries ran out or the wait is
    longer than the client waits; `wait_for_model=True` has the service hold the
    request until the model is loaded instead."""

    def __init__(
        self,
        message: str,
        *,
        estimated_time: float,
        status_code: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            request_id=request_id,
            body=body,
            retry_after=estimated_time,
        )
        self.estimated_time = estimated_time


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def redact(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` blanked."""
    return text.replace(secret, REDACTED) if secret else text


def body_excerpt(body: bytes, secret: str) -> str:
    """The body's start on one line. The key is blanked first, then the text is cut,
    so no part of a key that a server echoed can survive at the cut."""
    text = redact(body.decode("utf-8", errors="replace"), secret)
    return " ".join(text.split())[:BODY_EXCERPT_CHARS]


def safe_headers(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    """Headers fit to log: credentials blanked by name, the key blanked anywhere."""
    return {
        name: REDACTED if name.lower() in SECRET_HEADERS else redact(value, secret)
        for name, value in headers.items()
    }


def error_class_for(status: int) -> type[APIStatusError]:
    """The exception class for an error status."""
    if status >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status, APIStatusError)
