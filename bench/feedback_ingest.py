"""Benchmark: verified SNS notifications ingested per second through the HTTP endpoint.

Starts an embedded PostgreSQL and `ses-sender serve` on 127.0.0.1, records one sent email per
notification, then posts SES Delivery notifications signed by the local SNS signer (the
certificate is in SNS_CERTS_DIR, so it is loaded once and cached) with a fixed number of
concurrent connections. Each notification is verified, linked to its email, appended and
sets the email's feedback status. Signing happens before the clock starts.

    .venv/bin/python bench/feedback_ingest.py [--notifications 5000] [--concurrency 32] [--runs 3]

Prints the rate of each run, the API process's CPU time per notification (PostgreSQL's is
not included), and the median rate. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.feedback.local_signer import LocalSnsSigner, encode
from tests import ses_payloads as ses

TOPIC = "arn:aws:sns:us-east-1:123456789012:bench-feedback"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record_sent_emails(url: str, count: int) -> list[str]:
    """Insert `count` sent emails and return their SES message ids."""
    message_ids = [f"0100018c-{uuid.uuid4()}-000000" for _ in range(count)]
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,
                                status, ses_message_id, attempt)
            SELECT gen_random_uuid(), gen_random_uuid(), 0, 'bench', 'alice@example.com',
                   'sent', id, 1
            FROM unnest(%s::text[]) AS id
            """,
            (message_ids,),
        )
    return message_ids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(url: str, port: int, certs_dir: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DATABASE_URL": url,
        "DATA_DIR": str(data_dir),
        "SERVER_PORT": str(port),
        "SNS_TOPIC_ARNS": TOPIC,
        "SNS_CERTS_DIR": str(certs_dir),
        "API_KEY": "bench-api-key-0123456789",
        "LOG_FORMAT": "json",
    }
    executable = Path(sys.executable).parent / "ses-sender"
    # The child keeps its own copy of the file descriptor after ours is closed.
    with (data_dir / "server.log").open("wb") as log_file:
        return subprocess.Popen(
            [str(executable), "serve", "--bind", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not become healthy")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length)
    return int(status_line.split()[1]), body


async def post_all(port: int, bodies: list[bytes], concurrency: int) -> float:
    """Post every body over `concurrency` keep-alive connections; return the elapsed seconds.

    A minimal HTTP/1.1 client on asyncio streams: an httpx client used as much CPU per
    request as the server on this machine, which measured the client instead of the server.
    """
    requests = [
        b"POST /v1/events/results HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: text/plain; charset=UTF-8\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body in bodies
    ]
    pending = iter(requests)
    failures: list[bytes] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in pending:
                status, body = await _exchange(reader, writer, request)
                if status != 200 or b'"outcome":"stored"' not in body:
                    failures.append(body)
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} notifications not stored, first: {failures[0]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=5000, help="per run")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent connections")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    signer = LocalSnsSigner.create()
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as folder:
        root = Path(folder)
        certs_dir = root / "certs"
        signer.install(certs_dir)
        embedded = EmbeddedPostgres(root / "pg")
        url = embedded.start()
        server = None
        try:
            migrate(url)
            port = free_port()
            server = start_server(url, port, certs_dir, root)
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_ready(base))
            rates = []
            for run in range(1, args.runs + 1):
                ids = record_sent_emails(url, args.notifications)
                bodies = [
                    encode(signer.notification(TOPIC, ses.delivery(i, ["alice@example.com"])))
                    for i in ids
                ]
                cpu_before = cpu_seconds(server.pid)
                elapsed = asyncio.run(post_all(port, bodies, args.concurrency))
                cpu_ms = (cpu_seconds(server.pid) - cpu_before) / len(bodies) * 1000
                rate = len(bodies) / elapsed
                rates.append(rate)
                print(
                    f"run {run}: {len(bodies)} notifications in {elapsed:.2f} s = {rate:,.0f}/s; "
                    f"server process CPU {cpu_ms:.2f} ms per notification"
                )
            print(
                f"median: {statistics.median(rates):,.0f} notifications/s "
                f"(concurrency {args.concurrency}, {os.cpu_count()} CPUs)"
            )
        except Exception:
            log_tail = (root / "server.log").read_text(errors="replace")[-3000:]
            print(f"server log tail:\n{log_tail}", file=sys.stderr)
            raise
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            embedded.stop()


if __name__ == "__main__":
    main()
