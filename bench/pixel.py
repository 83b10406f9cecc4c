"""Benchmark the open pixel: requests per second and latency of `GET /v1/events/open`.

Starts an embedded PostgreSQL in a temporary folder, creates and migrates a database, inserts
sent emails, starts `ses-sender serve` on 127.0.0.1 against it, and loads it from a second
process with wrk (Debian package `wrk`). Each run measures three loads one after the
other: pixel requests with valid tokens of those emails (each appends an EmailOpened), pixel
requests with rejected tokens (no database work), and `GET /health` (the HTTP floor). The
ratios between them therefore come from the same conditions. Prints one line per
measurement and the medians.

    .venv/bin/python bench/pixel.py --runs 3 --duration 15 --connections 64

Nothing is sent anywhere but 127.0.0.1; the folder and both servers are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.tracking import tokens

SECRET = "bench-tracking-secret-0123456789"  # noqa: S105 - a throwaway key for a throwaway database


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    recorded: int


def _insert_emails(url: str, count: int) -> list[str]:
    request_ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,
                                status, attempt)
            VALUES (%s, %s, 0, 'bench', %s, 'sent', 1)
            """,
            [(rid, str(uuid.uuid4()), f"r{i}@example.com") for i, rid in enumerate(request_ids)],
        )
    return request_ids


def _wrk_script(folder: Path, name: str, paths: list[str]) -> Path:
    lines = ["local paths = {", *(f'  "{p}",' for p in paths), "}", "local i = 0"]
    lines += [
        "request = function()",
        "  i = i + 1",
        '  return wrk.format("GET", paths[(i % #paths) + 1],'
        ' {["User-Agent"] = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148"})',
        "end",
    ]
    script = folder / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def _scenarios(folder: Path, request_ids: list[str]) -> dict[str, Path]:
    """The load to compare in each run: valid pixel, rejected pixel, and the liveness probe."""

    def pixel(key: bytes) -> list[str]:
        return [f"/v1/events/open?requestId={tokens.sign(key, 'open', r)}" for r in request_ids]

    return {
        "pixel, valid token": _wrk_script(folder, "valid", pixel(SECRET.encode())),
        # A token the server rejects: the same response without any database work.
        "pixel, rejected token": _wrk_script(folder, "rejected", pixel(b"not-the-secret")),
        # The cheapest route of the app: the HTTP floor of Litestar and uvicorn.
        "GET /health": _wrk_script(folder, "health", ["/health"]),
    }


def _start_server(url: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "ses-sender"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SERVER_PORT": str(port),
        "TRACKING_SECRET": SECRET,
        "API_KEY": "bench-api-key-0123456789",
        "DATA_DIR": str(folder / "data"),
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
    }
    server = subprocess.Popen(
        [str(executable), "serve", "--bind", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "server.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"ses-sender serve did not answer on port {port}; see {folder}/server.log")


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _run_wrk(port: int, script: Path, duration: int, connections: int, threads: int) -> str:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
        "-s", str(script), f"http://127.0.0.1:{port}",
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _opens(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE type = 'EmailOpened'").fetchone()
    return int(row[0]) if row else 0


def _parse(output: str, recorded: int) -> Result:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Result(rate, p50, p99, errors, recorded)


def _line(result: Result) -> str:
    return (
        f"{result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, errors {result.errors}, "
        f"EmailOpened appended {result.recorded:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="load runs; the median is reported")
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64, help="open connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--emails", type=int, default=2000, help="distinct emails (tokens)")
    parser.add_argument("--port", type=int, default=18_930, help="port for ses-sender serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: install it with `apt-get install wrk`")

    folder = Path(tempfile.mkdtemp(prefix="bench-pixel-"))
    embedded = EmbeddedPostgres(folder / "db")
    server: subprocess.Popen[bytes] | None = None
    try:
        url = embedded.start()
        migrate(url)
        scenarios = _scenarios(folder, _insert_emails(url, args.emails))
        server = _start_server(url, args.port, folder)
        results: dict[str, list[Result]] = {name: [] for name in scenarios}
        for run in range(1, args.runs + 1):
            for name, script in scenarios.items():
                if run == 1:
                    _run_wrk(args.port, script, 3, args.connections, args.threads)  # warm-up
                before = _opens(url)
                output = _run_wrk(
                    args.port, script, args.duration, args.connections, args.threads
                )
                time.sleep(0.5)
                result = _parse(output, _opens(url) - before)
                results[name].append(result)
                print(f"run {run}, {name}: {_line(result)}", flush=True)
        print(f"median of {args.runs} runs ({args.connections} connections, "
              f"{args.threads} wrk thread(s), {os.cpu_count()} CPUs):")
        for name, runs in results.items():
            rate = statistics.median(r.requests_per_second for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            print(f"  {name}: {rate:,.0f} req/s, p99 {p99:.2f} ms")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
