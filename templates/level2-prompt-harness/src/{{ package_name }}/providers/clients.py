"""HTTP connections for the OpenAI-compatible provider, one per call in flight.

A direct call is one HTTP/1.1 exchange written here on asyncio's streams: a POST with
a length, and a reply framed by its Content-Length, by chunks or by the end of the
connection. That costs about 0.2 ms of CPU a call, against 0.7-0.9 ms through
httpcore's connection pool and its anyio layers, and imports nothing at the first
call; at 20 calls in flight, the CPU per call is what kept a run from its ideal time.
A call through a proxy named by HTTPS_PROXY, HTTP_PROXY or ALL_PROXY (unless NO_PROXY
exempts the host) goes through httpcore, which also speaks CONNECT tunnels and TLS
inside TLS. Certificates come from httpx either way (SSL_CERT_FILE and SSL_CERT_DIR
included). Every failure leaves this module as a TimeoutError or a NoAnswer.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlencode, urlsplit

if TYPE_CHECKING:
    import httpcore


class NoAnswer(Exception):
    """No whole reply came back: refused, reset, closed early, a reply that is not
    HTTP, a bad certificate."""


# What a caller catches: no answer in time, and no answer at all.
TIMEOUTS = (TimeoutError,)
UNREACHABLE = (NoAnswer,)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_BODY = frozenset({204, 304})
_CLOSED_EARLY = "Server disconnected without sending a response."


def _environment_proxy(name: str) -> str:
    """`<name>_proxy` from the environment, the lower-case spelling first, as urllib
    and curl read it; HTTP_PROXY is ignored under CGI, where a request header can set
    it."""
    lower = os.environ.get(f"{name}_proxy")
    if lower is not None:
        return lower
    if name == "http" and "REQUEST_METHOD" in os.environ:
        return ""
    return os.environ.get(f"{name.upper()}_PROXY", "")


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for this URL, or None to connect directly."""
    parts = urlsplit(url)
    proxy = _environment_proxy(parts.scheme) or _environment_proxy("all")
    if not proxy or _exempt(parts.hostname or "", _environment_proxy("no")):
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


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, parts: SplitResult) -> _Origin:
        if parts.scheme not in _DEFAULT_PORTS:
            raise NoAnswer(
                f"Request URL has an unsupported protocol '{parts.scheme}://'."
            )
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:  # a port that is not a number
            raise NoAnswer(str(exc)) from None
        return cls(parts.scheme, parts.hostname or "", port)


def _request_head(
    target: str, host: str, length: int, headers: Mapping[str, str]
) -> bytes:
    """The request line and headers of a JSON POST. A CR, LF or NUL in a header would
    end it early and let the rest pass as headers of the user's choosing: refused."""
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        "Accept: application/json",
    ]
    for name, value in headers.items():
        if (
            not name
            or any(c in name for c in " \t:\r\n\0")
            or ("\r" in value or "\n" in value or "\0" in value)
        ):
            raise NoAnswer(
                f"header {name!r}: a name or value HTTP cannot carry (a line break"
                " or NUL, or a space or colon in the name)"
            )
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    except UnicodeEncodeError:
        raise NoAnswer("header names, values and the URL must be ASCII") from None


class _Connection:
    """One keep-alive HTTP/1.1 connection, one exchange at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.keep_alive = False  # set when a reply leaves the connection fit for more

    @classmethod
    async def open(cls, origin: _Origin, context: ssl.SSLContext | None) -> _Connection:
        reader, writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=origin.host if context else None,
        )
        return cls(reader, writer)

    def reusable(self) -> bool:
        """A server closes idle connections when it likes: its EOF shows here."""
        return (
            self.keep_alive
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    async def exchange(self, head: bytes, content: bytes) -> Reply:
        self.keep_alive = False
        self.writer.write(head + content)
        await self.writer.drain()
        version, status, headers = await self._read_head()
        while 100 <= status < 200:  # informational: the reply proper follows
            version, status, headers = await self._read_head()
        reply = dict(headers)  # a repeated header keeps its last value
        connection = {t.strip().lower() for t in reply.get("connection", "").split(",")}
        codings = [v for n, v in headers if n == "transfer-encoding"]
        lengths = {v.strip() for n, v in headers if n == "content-length"}
        framed = True
        if status in _NO_BODY:
            body = b""
        elif codings:
            # Chunked when it is the last coding; a body ended by the close otherwise.
            if codings[-1].rsplit(",", 1)[-1].strip().lower() == "chunked":
                body = await self._read_chunks()
            else:
                body, framed = await self.reader.read(), False
        elif lengths:
            if len(lengths) > 1 or not next(iter(lengths)).isdigit():
                raise NoAnswer(f"Invalid Content-Length {sorted(lengths)}")
            body = await self._read_exactly(int(next(iter(lengths))))
        else:
            body, framed = await self.reader.read(), False
        self.keep_alive = framed and version == "HTTP/1.1" and "close" not in connection
        return Reply(status, reply, body)

    async def _read_head(self) -> tuple[str, int, list[tuple[str, str]]]:
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            raise NoAnswer(_CLOSED_EARLY) from None
        except asyncio.LimitOverrunError:
            raise NoAnswer("the reply's headers are longer than 64 KiB") from None
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest.partition(" ")[0]  # the reason phrase after it may be empty
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise NoAnswer(f"not an HTTP/1.1 reply: {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise NoAnswer(f"malformed header line in the reply: {line[:80]!r}")
            headers.append((name.lower(), value.strip(" \t")))
        return version, int(code), headers

    async def _read_exactly(self, size: int) -> bytes:
        try:
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise NoAnswer("the server closed the connection mid-reply") from None

    async def _read_line(self) -> bytes:
        try:
            return await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError:
            raise NoAnswer("the server closed the connection mid-reply") from None
        except asyncio.LimitOverrunError:
            raise NoAnswer("a line of the reply is longer than 64 KiB") from None

    async def _read_chunks(self) -> bytes:
        body = bytearray()
        while True:
            line = await self._read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)  # extensions ignored
            except ValueError:
                size = -1
            if size < 0:
                raise NoAnswer(f"malformed chunk size in the reply: {line[:40]!r}")
            if size == 0:
                break
            chunk = await self._read_exactly(size + 2)
            if chunk[-2:] != b"\r\n":
                raise NoAnswer("a chunk of the reply is longer than it says")
            body += chunk[:-2]
        while await self._read_line() != b"\r\n":  # trailers, unused
            pass
        return bytes(body)

    def close(self) -> None:
        self.writer.close()


class ClientPool:
    """Connections lent out for one call at a time, kept alive between calls.

    The runner's semaphore bounds how many are lent at once, so at most `concurrency`
    connections are open to each origin.
    """

    def __init__(self) -> None:
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        # The environment's proxies are read once per origin and run, not per call.
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._proxy_pools: dict[tuple[bool, str], httpcore.AsyncConnectionPool] = {}
        self._ssl_context: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            import httpx  # its certificate bundle and SSL_CERT_FILE handling

            self._ssl_context = httpx.create_ssl_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    async def post_json(
        self,
        url: str,
        body: Any,
        *,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        timeout_s: float,
    ) -> Reply:
        """POST `body` as JSON; the reply read whole. Raises TIMEOUTS or UNREACHABLE."""
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
        parts = urlsplit(url)
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        key = (parts.scheme, parts.netloc)
        if key not in self._proxies:
            self._proxies[key] = proxy_for(url)
        if (proxy := self._proxies[key]) is not None:
            return await self._post_via_proxy(proxy, url, headers, content, timeout_s)
        origin = _Origin.of(parts)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        head = _request_head(target, host, len(content), headers)
        try:
            # One deadline for the call, connecting, sending and the whole reply: the
            # "seconds allowed per call" of timeout_s.
            async with asyncio.timeout(timeout_s):
                connection = await self._connection(origin)
                try:
                    reply = await connection.exchange(head, content)
                except BaseException:
                    # A broken exchange never meets the next call.
                    connection.close()
                    self._open.discard(connection)
                    raise
        except OSError as exc:  # refused, reset, no such host, a bad certificate
            if isinstance(exc, TimeoutError):
                raise
            raise NoAnswer(str(exc) or type(exc).__name__) from None
        self._idle[origin].append(connection)
        return reply

    async def _connection(self, origin: _Origin) -> _Connection:
        """An idle connection to `origin` that is still open, or a new one."""
        idle = self._idle.setdefault(origin, [])
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.close()
            self._open.discard(connection)
        context = self._context() if origin.scheme == "https" else None
        connection = await _Connection.open(origin, context)
        self._open.add(connection)
        return connection

    async def _post_via_proxy(
        self,
        proxy: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
        timeout_s: float,
    ) -> Reply:
        import httpcore  # only a proxied call pays for its import

        secure = url.startswith("https://")
        pool = self._proxy_pools.get((secure, proxy))
        if pool is None:
            context = self._context() if secure else None
            pool = httpcore.AsyncHTTPProxy(proxy_url=proxy, ssl_context=context)
            self._proxy_pools[(secure, proxy)] = pool
        sent = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(content))),
            ("Accept", "application/json"),
            *headers.items(),
        ]
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
        try:
            response = await pool.request(
                "POST",
                url,
                headers=sent,
                content=content,
                extensions={"timeout": timeouts},
            )
        except httpcore.TimeoutException as exc:
            raise TimeoutError(str(exc)) from None
        except (
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.ProxyError,
            httpcore.UnsupportedProtocol,
        ) as exc:
            raise NoAnswer(str(exc) or type(exc).__name__) from None
        except TypeError as exc:  # a header that is not ASCII
            raise NoAnswer(str(exc)) from None
        received = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers
        }
        return Reply(response.status, received, response.content)

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        # Closed sockets are released on the loop's next turn; TLS ones say goodbye
        # to the server first, which a slow server must not drag out.
        waits = [connection.writer.wait_closed() for connection in self._open]
        self._open.clear()
        self._idle.clear()
        if waits:
            try:
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*waits, return_exceptions=True)
            except TimeoutError:
                pass
        for pool in self._proxy_pools.values():
            await pool.aclose()
        self._proxy_pools.clear()
