"""A fast stand-in SESv2 endpoint for the benchmarks, in its own process on 127.0.0.1.

One asyncio protocol per connection with a minimal HTTP/1.1 parser. It responds to every
SendEmail (POST /v2/email/outbound-emails) with a new message id and GetAccount with 404, as
moto does, and keeps connections open. The benchmarks measure the dispatcher, so the stub
should cost as little CPU per request as it can: http.server's parsing alone costs more than
a send. Arrival times are taken when a request is complete.

Prints its URL on the first line of stdout, answers until stdin closes, then writes one JSON
line per SendEmail call (recipient, monotonic and wall-clock arrival) to the file named on
the command line. time.monotonic() is CLOCK_MONOTONIC on Linux, shared by every process of
the host, so arrival times compare with times taken in the benchmark process.

    python bench/fast_ses_stub.py CALLS_FILE
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

import msgspec

SEND_PATH = b"/v2/email/outbound-emails"


class Destination(msgspec.Struct):
    ToAddresses: list[str]


class SendEmail(msgspec.Struct):
    Destination: Destination


_decode = msgspec.json.Decoder(SendEmail).decode
_ids = itertools.count()
calls: list[tuple[str, float, float]] = []
"""(recipient, time.monotonic(), time.time()) per SendEmail, in arrival order."""


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class StubProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._answer(head.split(b" ", 2), body)

    def _answer(self, request_line: list[bytes], body: bytes) -> None:
        assert self._transport is not None
        if request_line[0] == b"POST" and request_line[1].startswith(SEND_PATH):
            arrived, wall = time.monotonic(), time.time()
            recipient = _decode(body).Destination.ToAddresses[0]
            calls.append((recipient, arrived, wall))
            message_id = f"stub-{next(_ids):012d}".encode()
            self._transport.write(_response(b"200 OK", b'{"MessageId":"' + message_id + b'"}'))
        else:
            self._transport.write(_response(b"404 Not Found", b'{"message":"not implemented"}'))


async def serve(calls_file: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    # Serve until stdin closes (the benchmark is done with this stub).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    with calls_file.open("w") as out:
        for recipient, at, wall in calls:
            out.write(json.dumps({"to": recipient, "at": at, "wall": wall}) + "\n")


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
