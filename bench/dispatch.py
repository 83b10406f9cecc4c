"""Sending benchmarks: pipeline throughput, submit-to-SES latency, scheduling, rate accuracy.

Starts an embedded PostgreSQL in a temporary folder (or uses --server-url), a stub SES
endpoint in its own process on 127.0.0.1 (bench/ses_stub_server.py, no rate limit), and:

- throughput: N queued emails sent by one in-process dispatcher (claim, SES call, EmailSent
  committed), side by side with a bare boto3 loop sending the same emails from the same
  number of threads with no database;
- latency: single-recipient submissions, one every 50 ms, each timed from the commit of
  `submit` to the moment the stub receives its SendEmail, with a `ses-sender dispatch`
  process sending;
- lateness: emails scheduled 50 ms apart, timed from their scheduled time to arrival;
- rate: a backlog of ten seconds' worth at EMAIL_RATE 14, 100 and 500, sent by two
  `ses-sender dispatch` processes, checking the achieved rate and every one-second window,
  both of arrival times at the stub and of the start times the dispatchers log.

Each scenario runs --runs times; the summary is the median run.

    PYTHONPATH=. .venv/bin/python bench/dispatch.py [--runs 3] [--emails 3000] 2>bench.log
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from service.config import Settings
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import Pool, open_pool
from service.dispatch.dispatcher import run_dispatcher
from service.dispatch.ses import OutgoingEmail, create_client, send_email
from service.logging import configure_logging
from service.metrics import SLOTS_MISSED
from service.secret import Secret
from service.sending.payloads import MessageIn, SubmitRequest
from service.sending.submit import submit
from service.sending.validation import validate_submission

HTML = "<html><body><h1>Spring sale</h1>" + "<p>Twenty percent off.</p>" * 80 + "</body></html>"
CONCURRENCY = 64
SENDER = "sender@example.com"


@contextmanager
def stub_ses(workdir: Path) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """Run the stub SES process; yield its URL and a function that stops it and returns calls."""
    calls_file = workdir / f"calls-{time.monotonic_ns()}.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ses_stub_server.py")), str(calls_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ | {"PYTHONPATH": "."},
    )
    assert process.stdout is not None
    assert process.stdin is not None
    url = process.stdout.readline().decode().strip()

    def finish() -> list[dict[str, Any]]:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(60)
        return [json.loads(line) for line in calls_file.read_text().splitlines()]

    try:
        yield url, finish
    finally:
        if process.poll() is None:
            process.kill()


def settings_for(url: str, ses_url: str, workdir: Path, rate: float) -> Settings:
    return Settings(
        database_url=Secret(url), data_dir=workdir, ses_endpoint_url=ses_url,
        email_sender=SENDER, email_rate=rate, email_daily_quota=10_000_000,
        dispatch_concurrency=CONCURRENCY,
    )


async def reset(pool: Pool) -> None:
    async with pool.connection() as conn:
        # TRUNCATE is not an UPDATE or DELETE, so the append-only trigger allows it.
        await conn.execute("TRUNCATE events, emails, send_quota_usage, idempotency_keys")
        await conn.execute(
            "UPDATE send_limiter SET next_slot = now(), slowdown = 1, throttled_at = NULL,"
            " hold_until = NULL, hold_reason = NULL"
        )


async def enqueue(
    pool: Pool, settings: Settings, recipients: list[str], scheduled_at: datetime | None = None
) -> None:
    for start in range(0, len(recipients), 1000):
        message = MessageIn(
            topic_id="bench", emails=recipients[start : start + 1000], subject="Spring sale",
            content=HTML, text="Twenty percent off.",
            scheduled_at=scheduled_at.isoformat() if scheduled_at else None,
        )
        messages = validate_submission(SubmitRequest(messages=[message]), settings)
        async with pool.connection() as conn:
            await submit(conn, messages)


async def count_status(pool: Pool, status: str) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM emails WHERE status = %s", (status,))
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def wait_all(pool: Pool, status: str, total: int, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while await count_status(pool, status) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{status}: fewer than {total} after {limit} s")
        await asyncio.sleep(0.02)


# --- throughput ---------------------------------------------------------------------------


async def pipeline_rate(pool: Pool, url: str, settings: Settings, emails: int) -> float:
    """Return sends per second of one in-process dispatcher emptying a queue of `emails`."""
    await reset(pool)
    await enqueue(pool, settings, [f"p{i}@example.com" for i in range(emails)])
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(run_dispatcher(settings, pool, url, stop))
    await wait_all(pool, "sent", emails)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return emails / elapsed


def bare_rate(settings: Settings, emails: int) -> float:
    client = create_client(settings, max_connections=CONCURRENCY)
    batch = [
        OutgoingEmail(SENDER, f"b{i}@example.com", "Spring sale", HTML, "Twenty percent off.",
                      tags=(("request_id", f"r{i}"), ("topic_id", "bench")))
        for i in range(emails)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda email: send_email(client, email, None), batch))
    return emails / (time.perf_counter() - started)


# --- latency and lateness -------------------------------------------------------------------


@contextmanager
def dispatcher_processes(
    url: str, ses_url: str, workdir: Path, rate: float, count: int = 1,
    log_path: Path | None = None,
) -> Iterator[None]:
    env = os.environ | {
        "DATABASE_URL": url, "SES_ENDPOINT_URL": ses_url, "EMAIL_SENDER": SENDER,
        "EMAIL_RATE": str(rate), "EMAIL_DAILY_QUOTA": "10000000", "DATA_DIR": str(workdir),
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "LOG_FORMAT": "json",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with (log_path or workdir / "dispatchers.log").open("ab") as log:
        processes = [
            subprocess.Popen([sys.executable, "-m", "service.cli", "dispatch"], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
            for _ in range(count)
        ]
    time.sleep(2.0)  # startup: imports, pool, first GetAccount
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)


async def submit_latency(
    pool: Pool, url: str, settings: Settings, workdir: Path, count: int
) -> list[float]:
    await reset(pool)
    committed: dict[str, float] = {}
    with stub_ses(workdir) as (ses_url, finish):
        with dispatcher_processes(url, ses_url, workdir, rate=1000):
            for i in range(count):
                recipient = f"l{i}@example.com"
                await enqueue(pool, settings, [recipient])
                committed[recipient] = time.monotonic()
                await asyncio.sleep(0.05)
            await wait_all(pool, "sent", count, limit=60)
        calls = finish()
    return sorted((c["at"] - committed[c["to"]]) * 1000 for c in calls)


async def scheduled_lateness(
    pool: Pool, url: str, settings: Settings, workdir: Path, count: int
) -> list[float]:
    await reset(pool)
    first = datetime.now(UTC) + timedelta(seconds=4)
    due = {f"s{i}@example.com": first + timedelta(milliseconds=50 * i) for i in range(count)}
    for recipient, at in due.items():
        await enqueue(pool, settings, [recipient], scheduled_at=at)
    with stub_ses(workdir) as (ses_url, finish):
        with dispatcher_processes(url, ses_url, workdir, rate=1000):
            await wait_all(pool, "sent", count, limit=60)
        calls = finish()
    return sorted((c["wall"] - due[c["to"]].timestamp()) * 1000 for c in calls)


# --- rate accuracy --------------------------------------------------------------------------


@dataclass(frozen=True)
class RateResult:
    configured: float
    achieved: float
    max_window: int
    windows_over: int
    max_start_window: int
    """The fullest window counted on the start times the dispatchers logged (email_sent)."""
    start_windows_over: int


def windows(times: list[float], rate: float) -> tuple[int, int]:
    """Return the fullest one-second window [t, t + 1) and how many windows exceed `rate`."""
    ordered = sorted(times)
    most, over, start = 0, 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        inside = end - start + 1
        most = max(most, inside)
        over += inside > rate
    return most, over


async def rate_accuracy(
    pool: Pool, url: str, settings: Settings, workdir: Path, rate: float
) -> RateResult:
    await reset(pool)
    total = int(rate * 10)
    await enqueue(pool, settings, [f"r{i}@example.com" for i in range(total)])
    log_path = workdir / f"dispatchers-{time.monotonic_ns()}.log"
    with stub_ses(workdir) as (ses_url, finish):
        with dispatcher_processes(url, ses_url, workdir, rate=rate, count=2, log_path=log_path):
            await wait_all(pool, "sent", total, limit=120)
        calls = finish()
    times = [c["at"] for c in calls]
    most, over = windows(times, rate)
    starts = logged_starts(log_path)
    if len(starts) != total:
        raise RuntimeError(f"{log_path}: {len(starts)} email_sent start times, expected {total}")
    most_started, over_started = windows(starts, rate)
    achieved = (len(times) - 1) / (max(times) - min(times))
    return RateResult(rate, achieved, most, over, most_started, over_started)


def logged_starts(log_path: Path) -> list[float]:
    """Return the start times (wall clock) of the sends in a dispatcher log."""
    starts = []
    for line in log_path.read_text().splitlines():
        if '"email_sent"' not in line:
            continue
        started_at = json.loads(line).get("started_at")
        if started_at is not None:
            starts.append(datetime.fromisoformat(started_at).timestamp())
    return starts


# --- driver -------------------------------------------------------------------------------


@contextmanager
def database(server_url: str | None, workdir: Path) -> Iterator[str]:
    if server_url is not None:
        name = f"ses_sender_dispatch_bench_{os.getpid()}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
        try:
            migrate(url)
            yield url
        finally:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]
        return
    embedded = EmbeddedPostgres(workdir / "db")
    url = embedded.start()
    try:
        migrate(url)
        yield url
    finally:
        embedded.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning", "json")
    workdir = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    # Placeholder credentials: boto3 signs requests to the local stub with them.
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
         "AWS_EC2_METADATA_DISABLED": "true"}
    )
    with database(args.server_url, workdir) as url:
        pool = await open_pool(url, name="bench", min_size=2, max_size=8)
        try:
            await run_all(pool, url, workdir, args)
        finally:
            await pool.close()


async def run_all(pool: Pool, url: str, workdir: Path, args: argparse.Namespace) -> None:
    ratios, pipelines, bares = [], [], []
    for run in range(args.runs):
        with stub_ses(workdir) as (ses_url, finish):
            settings = settings_for(url, ses_url, workdir, rate=1_000_000)
            pipeline = await pipeline_rate(pool, url, settings, args.emails)
            bare = await asyncio.to_thread(bare_rate, settings, args.emails)
            finish()
        pipelines.append(pipeline)
        bares.append(bare)
        ratios.append(pipeline / bare)
        print(f"run {run + 1}: pipeline {pipeline:.0f}/s, bare boto3 {bare:.0f}/s, "
              f"ratio {pipeline / bare:.2f}, slots missed so far {SLOTS_MISSED._value.get():.0f}",
              flush=True)
    print(f"throughput (median of {args.runs}): pipeline {statistics.median(pipelines):.0f}/s,"
          f" bare boto3 {statistics.median(bares):.0f}/s,"
          f" ratio {statistics.median(ratios):.2f}")

    settings = settings_for(url, "http://127.0.0.1:9", workdir, rate=1000)
    latencies = [await submit_latency(pool, url, settings, workdir, args.latency_emails)
                 for _ in range(args.runs)]
    p50 = statistics.median(percentile(run, 0.5) for run in latencies)
    p99 = statistics.median(percentile(run, 0.99) for run in latencies)
    print(f"submit commit to SES call (median of {args.runs}): p50 {p50:.1f} ms, p99 {p99:.1f} ms")

    lateness = [await scheduled_lateness(pool, url, settings, workdir, args.latency_emails)
                for _ in range(args.runs)]
    print(f"scheduled lateness (median of {args.runs}): "
          f"min {statistics.median(min(r) for r in lateness):.1f} ms, "
          f"p50 {statistics.median(percentile(r, 0.5) for r in lateness):.1f} ms, "
          f"p99 {statistics.median(percentile(r, 0.99) for r in lateness):.1f} ms")

    for rate in args.rates:
        results = [await rate_accuracy(pool, url, settings, workdir, rate)
                   for _ in range(args.runs)]
        achieved = statistics.median(r.achieved for r in results)
        print(f"rate {rate:g}/s (median of {args.runs}): achieved {achieved:.2f}/s "
              f"({achieved / rate:.1%}); on arrival: fullest window "
              f"{max(r.max_window for r in results)}, windows over the rate "
              f"{sum(r.windows_over for r in results)}; on start: fullest window "
              f"{max(r.max_start_window for r in results)}, windows over the rate "
              f"{sum(r.start_windows_over for r in results)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--latency-emails", type=int, default=200)
    parser.add_argument("--rates", type=float, nargs="*", default=[14, 100, 500])
    parser.add_argument("--server-url", default=None,
                        help="PostgreSQL maintenance URL to create the database on")
    asyncio.run(main(parser.parse_args()))
