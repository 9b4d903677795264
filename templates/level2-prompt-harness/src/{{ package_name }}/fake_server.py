"""A small OpenAI-compatible chat server on 127.0.0.1, for the tests and the benchmark.

By default it answers every POST to /chat/completions with the last user message
(or with `reply`, when set), and a judge's request with a passing verdict. Queue
scripted replies (an HTTP status, a raw body, headers, tool calls, a delay) to play
rate limits, outages, timeouts, tool use and malformed bodies. /embeddings answers
with trigram vectors. It records each request and the most calls it saw at once.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .providers.local import trigram_embedding


@dataclass
class FakeReply:
    status: int = 200
    content: str | None = None  # the assistant's text; None: the last user message
    body: bytes | None = (
        None  # a raw body instead of a chat completion (malformed replies)
    )
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {name, arguments}
    finish_reason: str | None = None


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once in the benchmark

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closes its socket mid-reply: expected.
        pass


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
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self._handler())
        # A short poll interval makes stop() quick (the default waits up to 0.5 s).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def queue(self, *replies: FakeReply) -> None:
        """The next requests get these replies, in order; then the default reply."""
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> FakeChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do
            # Headers and body go out in two writes; with Nagle's algorithm on, the body
            # would wait for the client's delayed ACK (~40 ms on Linux) on every call.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = server._next_reply(body, self.path, headers)
                try:
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.body is not None:
                        payload = reply.body
                    elif self.path.endswith("/embeddings") and reply.status < 400:
                        payload = self._embeddings(body)
                    else:
                        payload = self._completion(body, reply)
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    server._done()

            def _embeddings(self, body: dict[str, Any]) -> bytes:
                texts = body.get("input") or []
                texts = [texts] if isinstance(texts, str) else texts
                data = [
                    {"index": i, "embedding": trigram_embedding(str(t))}
                    for i, t in enumerate(texts)
                ]
                return json.dumps({"data": data, "model": body.get("model")}).encode()

            def _completion(self, body: dict[str, Any], reply: FakeReply) -> bytes:
                if reply.status >= 400:
                    return json.dumps(
                        {"error": {"message": f"fake error {reply.status}"}}
                    ).encode()
                messages = body.get("messages") or [{"role": "user", "content": ""}]
                users = [
                    m.get("content", "") for m in messages if m.get("role") == "user"
                ]
                system = " ".join(
                    str(m.get("content", ""))
                    for m in messages
                    if m.get("role") == "system"
                )
                if reply.content is not None:
                    text = reply.content
                elif '"score"' in system:  # a judge's request: a passing verdict
                    text = json.dumps({"score": 1, "reason": "the stand-in agrees"})
                elif server.reply is not None:
                    text = server.reply
                else:
                    text = users[-1] if users else ""
                prompt_words = sum(
                    len(str(m.get("content", "")).split()) for m in messages
                )
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

        return Handler


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
