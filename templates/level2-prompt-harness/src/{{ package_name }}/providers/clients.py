"""HTTP connections for the OpenAI-compatible provider, one per call in flight.

The calls go through httpcore, the transport under httpx, without httpx's client on
top: its URL, header and cookie objects cost about three times the CPU of the call
itself (1.5 ms a call against 0.6 ms), which at 20 calls in flight is what keeps a run
from its ideal time. What the client did that a user relies on is kept: certificates
come from httpx (SSL_CERT_FILE included), and the proxy named by HTTPS_PROXY,
HTTP_PROXY or ALL_PROXY is used unless NO_PROXY exempts the host.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies_environment

import httpcore  # installed with httpx, which depends on it

# httpcore's failures: a timeout, and everything else that means no answer.
TIMEOUTS = (httpcore.TimeoutException,)
UNREACHABLE = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for this URL, or None to connect directly."""
    parts = urlsplit(url)
    proxies = getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or _exempt(parts.hostname or "", proxies.get("no", "")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _exempt(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl reads it: `*`, or hosts and domains (`.example.org` or
    `example.org` covers its subdomains too), separated by commas."""
    host = host.lower()
    for entry in no_proxy.lower().replace(" ", "").split(","):
        domain = entry.lstrip(".")
        if entry == "*" or (domain and (host == domain or host.endswith(f".{domain}"))):
            return True
    return False


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
        # Idle connections by (https or not, proxy): only https ones load the CA
        # certificates (20-60 ms).
        self._idle: dict[tuple[bool, str | None], list[httpcore.AsyncConnectionPool]]
        self._idle = {}
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
        proxy = proxy_for(url)
        idle = self._idle.setdefault((secure, proxy), [])
        if not idle:
            context = self._context() if secure else None
            connection: httpcore.AsyncConnectionPool
            if proxy is None:
                connection = httpcore.AsyncConnectionPool(
                    ssl_context=context, max_connections=1
                )
            else:
                connection = httpcore.AsyncHTTPProxy(
                    proxy_url=proxy, ssl_context=context, max_connections=1
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
