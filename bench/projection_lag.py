"""Projection lag while events arrive at a steady rate (default 500 events per second).

Creates a database (an embedded PostgreSQL in a temporary folder, or a new database on
--server-url), runs the projector in this process with the default settings, and appends
events from a separate writer process: every 10 ms one transaction with the five events of
one email (requested, sent, delivered, opened, clicked). The lag of an event is the time
from its `recorded_at` (the start of its writer's transaction) to the commit of the
projection batch that applied it, measured for every event and every projection.

    .venv/bin/python bench/projection_lag.py [--rate 500] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from projection_setup import fresh_database

from projections.checkpoints import Batch
from projections.registry import PROJECTIONS
from projections.runner import RunnerOptions, run_projector
from service.db.pool import open_pool
from service.events.store import NewEvent, append
from service.events.types import (
    EmailClicked,
    EmailDelivered,
    EmailOpened,
    EmailRequested,
    EmailSent,
    Event,
)

EVENTS_PER_TRANSACTION = 5


def _email_events(index: int) -> list[NewEvent]:
    request_id = f"lag-{index}"
    topic = f"topic-{index % 20}"
    now = datetime.now(UTC)
    events: list[Event] = [
        EmailRequested(request_id=request_id, message_id="m", topic_id=topic,
                       recipient=f"u{index}@example.com", scheduled_at=now),
        EmailSent(request_id=request_id, topic_id=topic, ses_message_id=f"ses-{index}",
                  attempt=1),
        EmailDelivered(request_id=request_id, topic_id=topic, ses_message_id=f"ses-{index}",
                       recipient=f"u{index}@example.com"),
        EmailOpened(request_id=request_id, topic_id=topic),
        EmailClicked(request_id=request_id, topic_id=topic, link="https://example.com/"),
    ]
    return [NewEvent(request_id, event, occurred_at=now) for event in events]


async def _write(url: str, rate: int, seconds: float) -> None:
    interval = EVENTS_PER_TRANSACTION / rate
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        index = 0
        while (due := started + index * interval) < started + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with conn.transaction():
                await append(conn, _email_events(index))
            index += 1


def _writer(url: str, rate: int, seconds: float) -> None:
    asyncio.run(_write(url, rate, seconds))


async def _project(url: str, writer: multiprocessing.Process) -> dict[str, list[float]]:
    lags: dict[str, list[float]] = {name: [] for name in PROJECTIONS}

    def observe(name: str, batch: Batch) -> None:
        committed = datetime.now(UTC)
        lags[name].extend((committed - e.recorded_at) / timedelta(seconds=1) for e in batch.events)

    pool = await open_pool(url, name="bench", min_size=1, max_size=len(PROJECTIONS) + 1)
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(pool, url, RunnerOptions(), stop,
                                                  on_batch=observe))
    await asyncio.sleep(1)  # the projector is listening before the first event
    writer.start()
    await asyncio.to_thread(writer.join)
    await asyncio.sleep(3)  # the last events are applied
    stop.set()
    await projector
    await pool.close()
    return lags


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--server-url", default=os.environ.get("BENCH_SERVER_URL"))
    args = parser.parse_args()
    with fresh_database(args.server_url) as url:
        context = multiprocessing.get_context("spawn")
        writer = context.Process(target=_writer, args=(url, args.rate, args.seconds))
        lags = asyncio.run(_project(url, writer))
    everything: list[float] = []
    for name, values in lags.items():
        everything.extend(values)
        print(
            f"{name:<14} events {len(values):>7,}  p50 {statistics.median(values) * 1000:6.1f} ms"
            f"  p99 {_percentile(values, 0.99) * 1000:6.1f} ms"
            f"  max {max(values) * 1000:7.1f} ms"
        )
    print(f"{'all':<14} events {len(everything):>7,}  "
          f"p99 {_percentile(everything, 0.99) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
