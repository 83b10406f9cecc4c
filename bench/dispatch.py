"""Sending benchmarks: pipeline throughput, submit-to-SES latency, scheduling, rate accuracy.

Starts an embedded PostgreSQL in a temporary folder (or uses --server-url), a stub SES
endpoint in its own process on 127.0.0.1 (bench/fast_ses_stub.py, no rate limit), and:

- throughput: N queued emails sent by 1 and by 2 `ses-sender dispatch` processes (claim,
  SES call, EmailSent committed), side by side with as many bare loops sending the same
  number of emails from the same number of threads with no database: boto3 alone, and the
  SesSender the dispatcher uses (bench/bare_loop.py);
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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.bare_loop import HTML, SENDER
from service.config import Settings
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import Pool, open_pool
from service.logging import configure_logging
from service.secret import Secret
from service.sending.payloads import MessageIn, SubmitRequest
from service.sending.submit import submit
from service.sending.validation import validate_submission

CONCURRENCY = 32
"""DISPATCH_CONCURRENCY of each dispatcher in the throughput runs, and threads per bare loop
(--concurrency)."""
STARTUP_SECONDS = 8.0


@contextmanager
def stub_ses(workdir: Path) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """Run the stub SES process; yield its URL and a function that stops it and returns calls."""
    calls_file = workdir / f"calls-{time.monotonic_ns()}.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fast_ses_stub.py")), str(calls_file)],
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


@dataclass(frozen=True)
class Throughput:
    pipeline: float
    bare_boto3: float
    bare_sender: float


async def throughput(
    pool: Pool, url: str, settings: Settings, workdir: Path, emails: int, processes: int
) -> Throughput:
    """Sends per second of `processes` dispatcher processes emptying a queue of `emails`,
    and of as many bare loops sending the same number with no database."""
    await reset(pool)
    # Scheduled for one moment a few seconds ahead, so that the dispatchers have started
    # (imports, clients, first GetAccount) before the emails fall due. The time runs from
    # that moment until every email is `sent`.
    due = datetime.now(UTC) + timedelta(seconds=STARTUP_SECONDS)
    await enqueue(pool, settings, [f"p{i}@example.com" for i in range(emails)], scheduled_at=due)
    with stub_ses(workdir) as (ses_url, finish):
        with dispatcher_processes(url, ses_url, workdir, rate=1_000_000, count=processes,
                                  extra={"LOG_LEVEL": "warning",
                                         "DISPATCH_CONCURRENCY": str(CONCURRENCY)}):
            await asyncio.sleep(max(0.0, due.timestamp() - time.time()))
            started = time.perf_counter()
            await wait_all(pool, "sent", emails)
            pipeline = emails / (time.perf_counter() - started)
        finish()
    bare = {}
    for kind in ("boto3", "sender"):
        with stub_ses(workdir) as (ses_url, finish):
            bare[kind] = await asyncio.to_thread(bare_loops, kind, ses_url, emails, processes)
            finish()
    return Throughput(pipeline, bare["boto3"], bare["sender"])


def bare_loops(kind: str, ses_url: str, emails: int, processes: int) -> float:
    """Run `processes` bare loops at once, each with CONCURRENCY threads; return sends/s."""
    share = emails // processes
    loops = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("bare_loop.py")), kind, ses_url,
             str(share), str(CONCURRENCY), f"b{n}-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=os.environ | {"PYTHONPATH": "."},
        )
        for n in range(processes)
    ]
    for process in loops:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bare {kind} loop did not start")
    for process in loops:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    times = []
    for process in loops:
        output, _ = process.communicate(timeout=600)
        times.append(json.loads(output))
    return share * processes / (max(t["end"] for t in times) - min(t["start"] for t in times))


# --- latency and lateness -------------------------------------------------------------------


@contextmanager
def dispatcher_processes(
    url: str, ses_url: str, workdir: Path, rate: float, count: int = 1,
    log_path: Path | None = None, extra: dict[str, str] | None = None,
) -> Iterator[None]:
    env = os.environ | {
        "DATABASE_URL": url, "SES_ENDPOINT_URL": ses_url, "EMAIL_SENDER": SENDER,
        "EMAIL_RATE": str(rate), "EMAIL_DAILY_QUOTA": "10000000", "DATA_DIR": str(workdir),
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "LOG_FORMAT": "json",
        "AWS_EC2_METADATA_DISABLED": "true",
    } | (extra or {})
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
    global CONCURRENCY
    CONCURRENCY = args.concurrency
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
    settings = settings_for(url, "http://127.0.0.1:9", workdir, rate=1000)
    if "throughput" in args.scenarios:
        for processes in args.processes:
            runs = []
            for run in range(args.runs):
                result = await throughput(pool, url, settings, workdir, args.emails, processes)
                runs.append(result)
                print(f"{processes} process(es), run {run + 1}: pipeline {result.pipeline:.0f}/s,"
                      f" bare boto3 {result.bare_boto3:.0f}/s,"
                      f" bare SesSender {result.bare_sender:.0f}/s,"
                      f" pipeline/boto3 {result.pipeline / result.bare_boto3:.2f},"
                      f" pipeline/SesSender {result.pipeline / result.bare_sender:.2f}", flush=True)
            print(f"throughput, {processes} process(es) (median of {args.runs}):"
                  f" pipeline {statistics.median(r.pipeline for r in runs):.0f}/s,"
                  f" bare boto3 {statistics.median(r.bare_boto3 for r in runs):.0f}/s,"
                  f" bare SesSender {statistics.median(r.bare_sender for r in runs):.0f}/s,"
                  f" pipeline/boto3"
                  f" {statistics.median(r.pipeline / r.bare_boto3 for r in runs):.2f},"
                  f" pipeline/SesSender"
                  f" {statistics.median(r.pipeline / r.bare_sender for r in runs):.2f}", flush=True)
    if "latency" in args.scenarios:
        await latency_scenarios(pool, url, settings, workdir, args)
    if "rate" in args.scenarios:
        await rate_scenarios(pool, url, settings, workdir, args)


async def latency_scenarios(
    pool: Pool, url: str, settings: Settings, workdir: Path, args: argparse.Namespace
) -> None:
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


async def rate_scenarios(
    pool: Pool, url: str, settings: Settings, workdir: Path, args: argparse.Namespace
) -> None:
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
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help="DISPATCH_CONCURRENCY and threads per bare loop (throughput)")
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2],
                        help="dispatcher processes (and bare loops) in the throughput runs")
    parser.add_argument("--scenarios", nargs="*", default=["throughput", "latency", "rate"],
                        choices=["throughput", "latency", "rate"])
    parser.add_argument("--server-url", default=None,
                        help="PostgreSQL maintenance URL to create the database on")
    asyncio.run(main(parser.parse_args()))
