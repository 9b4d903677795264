"""The read timeout as a bound on the whole answer, not on each read of it.

httpx hands its read timeout to every read of the socket, so a server that sends its
status line and headers a byte at a time, each byte inside the timeout, holds a call
for as long as it likes. The clients' own connections go through the network backend
here: the first read of an attempt starts the answer's clock, and each later read may
wait only for what is left of the read timeout. Running out is httpx's ReadTimeout,
retried like any other.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

OVERDUE = "the answer took longer than the read timeout"


class _Clock:
    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._deadline: float | None = None

    def left(self) -> float:
        """Seconds left before the deadline; the first call starts the clock."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._budget
        return self._deadline - now

    def limit(self, timeout: float | None) -> float | None:
        """The timeout for the next read: no later than the answer's deadline."""
        left = self.left()
        if left <= 0:
            raise httpcore.ReadTimeout(OVERDUE)
        return left if timeout is None else min(timeout, left)


# A context variable, not an attribute of the stream: a pooled connection serves one
# attempt after another, and the sync and async clients each run an attempt in one
# thread or task.
_clock: ContextVar[_Clock | None] = ContextVar("answer_clock", default=None)


@contextmanager
def answer_within(request: httpx.Request) -> Iterator[None]:
    """Bound the answer to `request` by its read timeout, from the first byte read."""
    read_timeout = request.extensions.get("timeout", {}).get("read")
    token = _clock.set(None if read_timeout is None else _Clock(read_timeout))
    try:
        yield
    finally:
        _clock.reset(token)


def answer_overdue() -> bool:
    """Whether the answer under way has run past its read timeout. Its clock starts
    here when no socket read started it: an `http_client` passed in reads through its
    own transport, so only the body, read chunk by chunk, is bounded there."""
    clock = _clock.get()
    return clock is not None and clock.left() <= 0


def _limit(timeout: float | None) -> float | None:
    clock = _clock.get()
    return timeout if clock is None else clock.limit(timeout)


def transport(verify: ssl.SSLContext) -> httpx.HTTPTransport:
    """httpx's transport, its connections reading under the answer's clock."""
    made = httpx.HTTPTransport(verify=verify)
    # httpx takes no network backend of its own; its pool holds the one it made.
    made._pool._network_backend = _Backend(made._pool._network_backend)
    return made


def async_transport(verify: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's async transport, its connections reading under the answer's clock."""
    made = httpx.AsyncHTTPTransport(verify=verify)
    made._pool._network_backend = _AsyncBackend(made._pool._network_backend)
    return made


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    # Connecting is the inner backend's, arguments and all; only the stream is wrapped.
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _limit(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(
        self, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _limit(timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _AsyncStream(inner)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)
