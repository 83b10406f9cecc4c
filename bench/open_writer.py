"""Benchmark the open writer alone: `record_opens` in batches, without HTTP.

Starts an embedded PostgreSQL in a temporary folder, inserts sent emails and writes
`--opens` pixel opens through `record_opens` in transactions of `--batch` opens, the way the
pixel's buffer does. Prints opens per second and the Python CPU time per open for each run,
then the median.

    .venv/bin/python bench/open_writer.py --runs 3 --opens 20000 --batch 250
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import open_pool
from service.tracking.record import Hit, record_opens

AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"


def _insert_emails(url: str, count: int) -> list[str]:
    request_ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,
                                status)
            VALUES (%s, %s, 0, 'bench', 'reader@example.com', 'sent')
            """,
            [(request_id, str(uuid.uuid4())) for request_id in request_ids],
        )
    return request_ids


async def _write(url: str, request_ids: list[str], opens: int, batch: int) -> tuple[float, float]:
    """Write the opens; return opens per second and Python CPU microseconds per open."""
    pool = await open_pool(url, name="bench", min_size=1, max_size=2)
    try:
        now = datetime.now(UTC)
        hits = [Hit(request_ids[i % len(request_ids)], AGENT, now) for i in range(opens)]
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, opens, batch):
            async with pool.connection() as conn, conn.transaction():
                await record_opens(conn, "pixel", hits[start : start + batch])
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        await pool.close()
    return opens / wall, cpu / opens * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--opens", type=int, default=20_000, help="opens written per run")
    parser.add_argument("--batch", type=int, default=250, help="opens per transaction")
    parser.add_argument("--emails", type=int, default=2_000, help="distinct emails")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-open-writer-"))
    embedded = EmbeddedPostgres(folder / "db")
    try:
        url = embedded.start()
        migrate(url)
        request_ids = _insert_emails(url, args.emails)
        rates = []
        for run in range(1, args.runs + 1):
            rate, cpu_us = asyncio.run(_write(url, request_ids, args.opens, args.batch))
            rates.append(rate)
            print(f"run {run}: {rate:,.0f} opens/s, Python CPU {cpu_us:.0f} µs per open")
        print(f"median of {args.runs}: {statistics.median(rates):,.0f} opens/s "
              f"(batches of {args.batch})")
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
