"""Exceptions, one class per cause, so callers catch what they can handle."""

from __future__ import annotations

import httpx

BODY_EXCERPT_CHARS = 200


class ConfigurationError(ValueError):
    """The client cannot be built from the given arguments and environment."""


class APIError(Exception):
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
        details = [self.message]
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return " | ".join(details)


class APIConnectionError(APIError):
    """The service could not be reached (DNS, connection refused or dropped)."""


class APITimeoutError(APIConnectionError):
    """The service did not connect or answer within the timeout."""


class InvalidResponseError(APIError):
    """The service answered 2xx, but not with the JSON this client understands."""


class APIStatusError(APIError):
    """The service answered with an error status (4xx or 5xx)."""


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


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def body_excerpt(response: httpx.Response, secret: str) -> str:
    """The body's start on one line, the API key blanked should a server echo it."""
    text = response.text[:BODY_EXCERPT_CHARS]
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def status_error(response: httpx.Response, secret: str) -> APIStatusError:
    """The exception for an error response, chosen by status code."""
    status = response.status_code
    if status >= 500:
        error_class: type[APIStatusError] = ServerError
    else:
        error_class = _STATUS_ERRORS.get(status, APIStatusError)
    excerpt = body_excerpt(response, secret)
    message = f"HTTP {status} {response.reason_phrase}".rstrip()
    if excerpt:
        message += f": {excerpt}"
    return error_class(
        message,
        status_code=status,
        request_id=response.headers.get("x-request-id"),
        body=excerpt,
    )
