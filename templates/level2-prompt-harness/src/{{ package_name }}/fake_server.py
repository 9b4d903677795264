"""A small OpenAI-compatible chat server on 127.0.0.1, for the tests and the benchmark.

By default it answers every POST to /chat/completions with the last user message
(or with `reply`, when set), and a judge's request with a passing verdict. Queue
scripted replies (an HTTP status, a raw body, headers, tool calls, a delay) to play
rate limits, outages, timeouts, tool use and malformed bodies. /embeddings answers
with trigram vectors. It records each request and the most calls it saw at once.

It serves from an asyncio loop in a thread of its own: a delay is a timer, not a
sleeping thread, so twenty calls in flight cost the server next to nothing and it
answers each as soon as its delay is over, as a real endpoint's latency would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .providers.local import trigram_embedding


@dataclass
class FakeReply:
    status: int = 200
    content: str | None = None  # the assistant's text; None: the last user message
    # A raw body instead of a chat completion (malformed replies).
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {name, arguments}
    finish_reason: str | None = None


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeChatServer:
    def __init__(
        self, *, delay_s: float = 0.0, port: int = 0, reply: str | None = None
    ) -> None:
        self.delay_s = delay_s
        self.reply = reply
        self.replies: deque[FakeReply] = deque()
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._port = port
        self._address: tuple[str, int] = ("127.0.0.1", port)
        # queue() is called from the tests' thread while the loop reads the replies.
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._address
        return f"http://{host}:{port}/v1"

    def queue(self, *replies: FakeReply) -> None:
        """The next requests get these replies, in order; then the default reply."""
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> FakeChatServer:
        self._thread.start()
        self._listening.wait()
        if self._failed is not None:
            self._thread.join()
            raise self._failed
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                asyncio.start_server(
                    self._connection, "127.0.0.1", self._port, backlog=256
                )
            )
        except OSError as exc:  # the port is taken
            self._failed = exc
            self._listening.set()
            loop.close()
            return
        self._address = server.sockets[0].getsockname()[:2]
        self._loop = loop
        self._listening.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            # Calls still in their delay end here, their connections closed.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.close()

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Requests on one keep-alive connection until the client closes it."""
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that gave up (a timeout test) or sent no HTTP: expected
        finally:
            writer.close()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """One request and its reply; False when the connection is done."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # closed between requests
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, path, version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = await _read_chunks(reader)
        else:
            raw = await reader.readexactly(int(headers.get("content-length", 0)))
        if method != "POST":
            payload = json.dumps({"error": {"message": f"{method} not served"}})
            await _respond(writer, 405, payload.encode(), {})
        else:
            await self._answer(writer, path, headers, raw)
        closing = headers.get("connection", "").lower() == "close"
        return version == "HTTP/1.1" and not closing

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        path: str,
        headers: dict[str, str],
        raw: bytes,
    ) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        reply = self._next_reply(body, path, headers)
        try:
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            if reply.body is not None:
                payload = reply.body
            elif path.endswith("/embeddings") and reply.status < 400:
                payload = _embeddings(body)
            else:
                payload = _completion(body, reply, self.reply)
            await _respond(writer, reply.status, payload, reply.headers)
        finally:
            self._done()

    def _next_reply(
        self, body: dict[str, Any], path: str, headers: dict[str, str]
    ) -> FakeReply:
        with self._lock:
            self.requests.append(SeenRequest(path, headers, body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return (
                self.replies.popleft()
                if self.replies
                else FakeReply(delay_s=self.delay_s)
            )

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return bytes(body)


async def _respond(
    writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str]
) -> None:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in extra.items()),
    ]
    # Head and body in one write: two would wait on the client's delayed ACK.
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()


def _embeddings(body: dict[str, Any]) -> bytes:
    texts = body.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts
    data = [
        {"index": i, "embedding": trigram_embedding(str(t))}
        for i, t in enumerate(texts)
    ]
    return json.dumps({"data": data, "model": body.get("model")}).encode()


def _completion(body: dict[str, Any], reply: FakeReply, default: str | None) -> bytes:
    if reply.status >= 400:
        return json.dumps({"error": {"message": f"fake error {reply.status}"}}).encode()
    messages = body.get("messages") or [{"role": "user", "content": ""}]
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    system = " ".join(
        str(m.get("content", "")) for m in messages if m.get("role") == "system"
    )
    if reply.content is not None:
        text = reply.content
    elif '"score"' in system:  # a judge's request: a passing verdict
        text = json.dumps({"score": 1, "reason": "the stand-in agrees"})
    elif default is not None:
        text = default
    else:
        text = users[-1] if users else ""
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reply.tool_calls:
        message["content"] = reply.content
        message["tool_calls"] = [
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"]),
                },
            }
            for number, call in enumerate(reply.tool_calls)
        ]
    completion = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason
                or ("tool_calls" if reply.tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_words + len(text.split()),
        },
    }
    return json.dumps(completion).encode()


def main() -> None:
    """Serve until interrupted; prints the base URL first (the benchmark reads it)."""
    parser = argparse.ArgumentParser(
        description="A fake OpenAI-compatible chat server."
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="added to every reply"
    )
    parser.add_argument(
        "--reply", help="answer every chat request with this text (default: echo)"
    )
    args = parser.parse_args()
    server = FakeChatServer(
        delay_s=args.delay_ms / 1000, port=args.port, reply=args.reply
    ).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
