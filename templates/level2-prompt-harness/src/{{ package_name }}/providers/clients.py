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
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._ssl_context: ssl.SSLContext | None = None

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        if not self._idle:
            if self._ssl_context is None:  # loading CA certificates takes ~20 ms
                self._ssl_context = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self._all.append(httpx.AsyncClient(limits=limits, verify=self._ssl_context))
            self._idle.append(self._all[-1])
        client = self._idle.pop()
        try:
            yield client
        finally:
            self._idle.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        self._idle.clear()
