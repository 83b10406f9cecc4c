"""Time from `ses-sender run --local` to a 200 from /ready, on a new and on a reused DATA_DIR.

A new DATA_DIR includes creating the embedded PostgreSQL cluster and applying every
migration; a reused one only starts the server. Each run stops the service with SIGTERM and
also times that. Usage: `python bench/local_startup.py [RUNS]` (default 5). Prints medians.
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The acceptance harness already starts and stops the real CLI; the benchmark reuses it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.acceptance.service import start_local_service


def timed_start(root: Path) -> tuple[float, float]:
    started = time.perf_counter()
    service = start_local_service(root)
    ready = time.perf_counter() - started
    stopping = time.perf_counter()
    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(timeout=60)
    stopped = time.perf_counter() - stopping
    if code != 0:
        raise SystemExit(f"ses-sender exited with {code}:\n{service.output()}")
    return ready, stopped


def main(runs: int) -> None:
    fresh, reused, stops = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="ses-sender-bench-") as folder:
            root = Path(folder)
            first, stop_first = timed_start(root)
            second, stop_second = timed_start(root)
        fresh.append(first)
        reused.append(second)
        stops += [stop_first, stop_second]
    print(f"runs: {runs}")
    print(f"new DATA_DIR to ready:    median {statistics.median(fresh):.2f} s")
    print(f"reused DATA_DIR to ready: median {statistics.median(reused):.2f} s")
    print(f"SIGTERM to exit:          median {statistics.median(stops):.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
