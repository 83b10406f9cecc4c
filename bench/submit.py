"""Throughput and latency of POST /v1/messages against a real `ses-sender serve` process.

Creates a database (an embedded PostgreSQL in a temporary folder, or a new database on
--server-url), applies the migrations, starts `ses-sender serve` on 127.0.0.1 as a
subprocess, and sends batches of requests from concurrent HTTP clients in this process.
Each scenario runs --runs times; the summary is the median run of each figure.

    .venv/bin/python bench/submit.py [--requests 300] [--concurrency 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate

# About 2 KB of HTML, a short newsletter.
HTML = "<html><body><h1>Spring sale</h1>" + "<p>Twenty percent off.</p>" * 80 + "</body></html>"


@dataclass(frozen=True)
class Scenario:
    name: str
    messages: int
    recipients: int
    idempotency_key: bool = False

    def body(self, run_id: str, index: int) -> dict[str, Any]:
        return {
            "messages": [
                {
                    "topicId": f"bench-{run_id}",
                    "emails": [
                        f"user-{index}-{m}-{r}@example.com" for r in range(self.recipients)
                    ],
                    "subject": "Spring sale",
                    "content": HTML,
                }
                for m in range(self.messages)
            ]
        }


SCENARIOS = (
    Scenario("1 message x 100 recipients", messages=1, recipients=100),
    Scenario("100 messages x 1 recipient", messages=100, recipients=1),
    Scenario("1 x 100 with Idempotency-Key", messages=1, recipients=100, idempotency_key=True),
)


@dataclass(frozen=True)
class RunResult:
    requests_per_second: float
    emails_per_second: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def database(server_url: str | None, workdir: Path) -> Iterator[str]:
    """Yield the URL of a new, migrated database; drop or stop it afterwards."""
    if server_url is None:
        embedded = EmbeddedPostgres(workdir / "db")
        url = embedded.start()
        try:
            migrate(url)
            yield url
        finally:
            embedded.stop()
        return
    name = f"ses_sender_bench_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    params = conninfo_to_dict(make_conninfo(server_url, dbname=name))
    credentials = params.get("user", "postgres")
    if params.get("password"):
        credentials = f"{credentials}:{params['password']}"
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    url = f"postgresql://{credentials}@{host}:{port}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@contextmanager
def server(url: str, api_key: str, workdir: Path) -> Iterator[str]:
    """Run `ses-sender serve` on 127.0.0.1 until the block ends; yield its base URL."""
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": url,
        "API_KEY": api_key,
        "SERVER_PORT": str(port),
        "DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
    }
    command = [str(Path(sys.executable).parent / "ses-sender"), "serve", "--bind", "127.0.0.1"]
    process = subprocess.Popen(command, env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ses-sender serve exited with code {process.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("ses-sender serve did not become ready within 30 s")


async def run_once(
    base: str, api_key: str, scenario: Scenario, requests: int, concurrency: int
) -> RunResult:
    run_id = uuid.uuid4().hex[:8]
    bodies = [scenario.body(run_id, index) for index in range(requests)]
    latencies: list[float] = []
    next_index = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for index in next_index:
                headers = {"x-api-key": api_key}
                if scenario.idempotency_key:
                    headers["Idempotency-Key"] = f"{run_id}-{index}"
                started = time.perf_counter()
                response = await client.post("/v1/messages", json=bodies[index], headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    raise SystemExit(f"unexpected {response.status_code}: {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    emails = requests * scenario.messages * scenario.recipients
    return RunResult(
        requests_per_second=requests / wall,
        emails_per_second=emails / wall,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def median_of(results: list[RunResult], figure: Callable[[RunResult], float]) -> float:
    return statistics.median(figure(result) for result in results)


def hardware() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}"


async def main_async(args: argparse.Namespace, base: str, api_key: str) -> None:
    print(f"hardware: {hardware()}")
    print(
        f"requests per run: {args.requests}, concurrency: {args.concurrency}, runs: {args.runs}"
    )
    print("| scenario | requests/s | emails/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for scenario in SCENARIOS:
        # A short warm-up so connection set-up and first-request costs are not measured.
        await run_once(base, api_key, scenario, min(20, args.requests), args.concurrency)
        results = [
            await run_once(base, api_key, scenario, args.requests, args.concurrency)
            for _ in range(args.runs)
        ]
        print(
            f"| {scenario.name} "
            f"| {median_of(results, lambda r: r.requests_per_second):.0f} "
            f"| {median_of(results, lambda r: r.emails_per_second):.0f} "
            f"| {median_of(results, lambda r: r.p50_ms):.1f} "
            f"| {median_of(results, lambda r: r.p99_ms):.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario; medians shown")
    parser.add_argument(
        "--server-url",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="PostgreSQL maintenance URL to create the benchmark database on "
        "(default: TEST_DATABASE_URL, else an embedded server in a temporary folder)",
    )
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="ses-sender-bench-") as folder:
        workdir = Path(folder)
        # Run as root, the embedded server runs as another user, which must reach its folder.
        os.chmod(workdir, 0o755)  # noqa: S103
        with database(args.server_url, workdir) as url, server(url, api_key, workdir) as base:
            asyncio.run(main_async(args, base, api_key))


if __name__ == "__main__":
    main()
