"""HTTP connections for the OpenAI-compatible provider, one per call in flight.

The calls go through httpcore, the transport under httpx, without httpx's client on
top: its URL, header and cookie objects cost about three times the CPU of the call
itself (1.5 ms a call against 0.6 ms), which at 20 calls in flight is what keeps a run
from its ideal time. Certificates come from httpx, as before.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpcore  # installed with httpx, which depends on it

# httpcore's failures: a timeout, and everything else that means no answer.
TIMEOUTS = (httpcore.TimeoutException,)
UNREACHABLE = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


@dataclass(frozen=True)
class Reply:
    """An HTTP response, read whole."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class ClientPool:
    """Connections of one keep-alive connection each, lent out for one call at a time.

    The runner's semaphore bounds how many are lent at once. One shared pool of N
    connections would work too, but it examines every connection on each request,
    which at 20 connections costs more CPU than the requests themselves.
    """

    def __init__(self) -> None:
        # Idle connections for https (True) and plain http (False) URLs: only the
        # https ones load the CA certificates (20-60 ms).
        self._idle: dict[bool, list[httpcore.AsyncConnectionPool]] = {
            True: [],
            False: [],
        }
        self._all: list[httpcore.AsyncConnectionPool] = []
        self._ssl_context: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            import httpx  # its certificate bundle and SSL_CERT_FILE handling

            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    @contextlib.asynccontextmanager
    async def client(self, url: str) -> AsyncIterator[httpcore.AsyncConnectionPool]:
        """A connection for this URL's scheme, lent for one call."""
        secure = not url.startswith("http://")
        idle = self._idle[secure]
        if not idle:
            connection = httpcore.AsyncConnectionPool(
                ssl_context=self._context() if secure else None, max_connections=1
            )
            self._all.append(connection)
            idle.append(connection)
        connection = idle.pop()
        try:
            yield connection
        finally:
            idle.append(connection)

    async def post_json(
        self,
        url: str,
        body: Any,
        *,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        timeout_s: float,
    ) -> Reply:
        """POST `body` as JSON; the reply read whole. Raises httpcore's errors."""
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        sent = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(content))),
            ("Accept", "application/json"),
            *headers.items(),
        ]
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
        async with self.client(url) as connection:
            response = await connection.request(
                "POST",
                url,
                headers=sent,
                content=content,
                extensions={"timeout": timeouts},
            )
        received = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers
        }
        return Reply(response.status, received, response.content)

    async def aclose(self) -> None:
        for connection in self._all:
            await connection.aclose()
        self._all.clear()
        for idle in self._idle.values():
            idle.clear()
