"""A stand-in SESv2 endpoint on 127.0.0.1 that records every SendEmail call and its time.

It answers SendEmail (POST /v2/email/outbound-emails) with a fresh message id, or with the
error a test's `respond` function picks, and GetAccount (GET /v2/email/account) with the
account a test sets, or 404 as moto does.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class StubError:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Call:
    at: float
    """time.monotonic() when the request arrived."""
    wall: float
    """time.time() when the request arrived."""
    body: dict[str, Any]
    message_id: str | None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    raw: bytes = b""
    """The body as it arrived."""


Responder = Callable[[int, dict[str, Any]], StubError | None]
"""(call number from 0, request body) -> an error to answer with, or None to accept."""


def accept_all(_number: int, _body: dict[str, Any]) -> StubError | None:
    return None


@dataclass
class StubSes:
    respond: Responder = accept_all
    account: dict[str, Any] | None = None
    delay: float = 0.0
    """Seconds to wait before answering SendEmail, as a slow SES would."""
    calls: list[Call] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)
    """Client (address, port) pairs that sent SendEmail calls: one per connection."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    tls: ssl.SSLContext | None = None
    """A server context, to serve HTTPS instead of HTTP."""

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    def accepted(self) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.message_id is not None]

    def recipients(self) -> list[str]:
        return [c.body["Destination"]["ToAddresses"][0] for c in self.accepted()]

    def start(self) -> StubSes:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body of a response go out in two writes. With Nagle's
            # algorithm the body waits for the client's delayed ACK, about 40 ms a call.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/v2/email/account") and stub.account is not None:
                    self._answer(200, stub.account)
                else:
                    self._answer(404, {"message": "not implemented"}, "NotFoundException")

            def do_POST(self) -> None:
                arrived, wall = time.monotonic(), time.time()
                length = int(self.headers.get("Content-Length", "0"))
                stub.connections.add(self.client_address[:2])
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                with stub.lock:
                    number = len(stub.calls)
                    error = stub.respond(number, body)
                    message_id = None if error else f"stub-{uuid.uuid4()}"
                    stub.calls.append(Call(arrived, wall, body, message_id,
                                           dict(self.headers.items()), self.path, raw))
                if stub.delay:
                    time.sleep(stub.delay)
                if error is not None:
                    self._answer(error.status, {"message": error.message}, error.code)
                else:
                    self._answer(200, {"MessageId": message_id})

            def _answer(self, status: int, payload: dict[str, Any], error: str = "") -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            # socketserver's default listen backlog of 5 resets connections when a
            # dispatcher opens dozens at once.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """Return the largest number of `times` inside any half-open window [t, t + window)."""
    ordered = sorted(times)
    most = 0
    start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def wait_for_calls(stub: StubSes, count: int, seconds: float = 30.0) -> None:
    """Wait until the stub has received `count` SendEmail calls."""
    for _ in range(int(seconds / 0.01)):
        if len(stub.calls) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(stub.calls)} of {count} calls arrived in {seconds} s")
