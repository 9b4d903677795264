"""HTTP clients for the OpenAI-compatible provider, one connection each."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import httpx


class ClientPool:
    """HTTP clients of one keep-alive connection each, lent out for one call at a time.

    The runner's semaphore bounds how many are lent at once. One shared client with N
    pooled connections would work too, but httpx's pool examines every connection on
    each request, which at 20 connections costs more CPU than the requests themselves.
    """

    def __init__(self) -> None:
        # Idle clients for https (True) and plain http (False) URLs.
        self._idle: dict[bool, list[httpx.AsyncClient]] = {True: [], False: []}
        self._all: list[httpx.AsyncClient] = []
        self._ssl_context: ssl.SSLContext | None = None

    def _context(self, secure: bool) -> ssl.SSLContext:
        if not secure:
            # A local server over plain http needs no CA certificates (loading them
            # takes 20-60 ms). This context trusts no certificate at all, so were it
            # ever asked to verify one, the connection would fail, not pass.
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    @contextlib.asynccontextmanager
    async def client(self, url: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client for this URL's scheme, lent for one call."""
        secure = not url.startswith("http://")
        idle = self._idle[secure]
        if not idle:
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            client = httpx.AsyncClient(limits=limits, verify=self._context(secure))
            self._all.append(client)
            idle.append(client)
        client = idle.pop()
        try:
            yield client
        finally:
            idle.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        for idle in self._idle.values():
            idle.clear()
