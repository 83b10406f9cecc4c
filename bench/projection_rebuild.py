"""Rebuild speed of the projections over a bulk-generated log (default one million events).

Creates a database (an embedded PostgreSQL in a temporary folder, or a new database on
--server-url), inserts the events with INSERT ... SELECT, then times
`projections.rebuild.rebuild` for each projection alone and for all three at once.
Each measurement runs --runs times; the summary gives the median.

    .venv/bin/python bench/projection_rebuild.py [--requests 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from projection_setup import fresh_database, generate_history

from projections.rebuild import rebuild
from projections.registry import PROJECTIONS


async def _timed(url: str, names: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(
        *(rebuild(url, PROJECTIONS[name], batch_size) for name in names)
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="emails; 5 events each")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--server-url", default=os.environ.get("BENCH_SERVER_URL"))
    args = parser.parse_args()
    events = args.requests * 5
    with fresh_database(args.server_url) as url:
        seconds = generate_history(url, args.requests)
        print(f"generated {events:,} events in {seconds:.1f} s")
        scenarios = [[name] for name in PROJECTIONS] + [list(PROJECTIONS)]
        for names in scenarios:
            times = [asyncio.run(_timed(url, names, args.batch_size)) for _ in range(args.runs)]
            median = statistics.median(times)
            label = " + ".join(names) if len(names) > 1 else names[0]
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(
                f"{label:<45} median {median:6.1f} s  {events / median:>9,.0f} events/s"
                f"  (runs: {runs} s)"
            )


if __name__ == "__main__":
    main()
