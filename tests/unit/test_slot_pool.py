"""The slot pool: slots go to whichever thread is ready, never early, never past tolerance."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from service.dispatch.limiter import Reservation, max_starts_per_window, window_rate
from service.dispatch.slots import LeaseEnding, SlotPool, SlotsHeld
from tests.support.ses_stub import max_in_any_window

MINUTE = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class FakeLimiter:
    """A GCRA like reserve_slots, on this host's monotonic clock."""

    def __init__(self, rate: float, tolerance: float = 0.010, held: datetime | None = None):
        self.spacing = 1 / window_rate(rate)
        self.tolerance = tolerance
        self.held = held
        self.next_slot = 0.0
        self.requests: list[int] = []
        self.lock = threading.Lock()

    def reserve(self, count: int) -> Reservation:
        with self.lock:
            self.requests.append(count)
            if self.held is not None:
                return Reservation(0, time.monotonic(), 0.0, self.held, "daily_quota")
            first = max(self.next_slot, time.monotonic())
            self.next_slot = first + count * self.spacing
            return Reservation(count, first, self.spacing, minute=MINUTE,
                               round_trip=0.010 - self.tolerance)


def take_all(pool: SlotPool, threads: int, each: int) -> list[float]:
    """Let `threads` threads take `each` slots; return every start time (time.monotonic())."""
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            pool.take()
            at = time.monotonic()
            with lock:
                starts.append(at)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return starts


def test_pool_keeps_every_window_under_rate() -> None:
    limiter = FakeLimiter(rate=50)
    pool = SlotPool(limiter.reserve, lambda: 50)
    starts = take_all(pool, threads=8, each=12)
    assert len(starts) == 96
    assert max_in_any_window(starts) <= max_starts_per_window(50) <= 50
    # Never faster than the spaced rate, and backlogged, not much slower: 96 sends need
    # 95 spacings (the upper bound leaves room for a loaded machine).
    span = max(starts) - min(starts)
    assert 95 * limiter.spacing * 0.99 <= span <= 95 * limiter.spacing * 1.3


def test_pool_never_starts_early() -> None:
    limiter = FakeLimiter(rate=20)
    pool = SlotPool(limiter.reserve, lambda: 20)
    before = time.monotonic()
    starts = sorted(take_all(pool, threads=3, each=3))
    # Slots are 1 / (0.985 * 20) apart from the first reservation on.
    for index, started in enumerate(starts):
        assert started >= before + index * limiter.spacing - 0.001


def test_pool_reserves_for_waiting_threads() -> None:
    limiter = FakeLimiter(rate=1000)
    pool = SlotPool(limiter.reserve, lambda: 1000)
    take_all(pool, threads=6, each=5)
    assert sum(limiter.requests) >= 30
    # A reservation is for the threads waiting (none announced itself with `expect`).
    assert max(limiter.requests) <= 6


def test_pool_late_thread_takes_next_slot() -> None:
    limiter = FakeLimiter(rate=100)
    pool = SlotPool(limiter.reserve, lambda: 100)
    original = time.sleep

    def oversleep(seconds: float) -> None:
        # The first wait runs 30 ms long, as a thread held up by the GIL would.
        original(seconds + (0.030 if not overslept else 0.0))
        overslept.append(seconds)

    overslept: list[float] = []
    time.sleep = oversleep  # type: ignore[assignment]
    try:
        pool.take()
        pool.take()
    finally:
        time.sleep = original
    unused = pool.take_unused()
    assert unused[MINUTE] >= 1
    assert len(limiter.requests) >= 2


def test_pool_returns_unused_slots_per_minute() -> None:
    limiter = FakeLimiter(rate=10)
    pool = SlotPool(limiter.reserve, lambda: 10)
    pool.expect()
    pool.expect()
    pool.expect()
    pool.take()  # reserves three slots: one for this thread, two announced ones
    pool.unexpect()
    pool.unexpect()
    assert pool.take_unused(everything=True) == {MINUTE: 2}
    assert pool.take_unused(everything=True) == {}


def test_pool_hold_raises_slots_held() -> None:
    until = datetime.now(UTC) + timedelta(minutes=5)
    pool = SlotPool(FakeLimiter(rate=10, held=until).reserve, lambda: 10)
    with pytest.raises(SlotsHeld) as held:
        pool.take()
    assert held.value.until == until
    assert held.value.reason == "daily_quota"
    # The hold is kept locally: the next take does not ask the limiter again.
    with pytest.raises(SlotsHeld):
        pool.take()


def test_pool_lease_ending_raises() -> None:
    limiter = FakeLimiter(rate=1)
    pool = SlotPool(limiter.reserve, lambda: 1)
    pool.take()  # the next slot is a second away
    with pytest.raises(LeaseEnding):
        pool.take(lambda: time.monotonic() + 0.2)
    # The slot stays for a send that can still make it.
    assert pool.take_unused() == {}


def test_pool_retries_database_errors() -> None:
    limiter = FakeLimiter(rate=100)
    failures = [psycopg.OperationalError("connection refused")]

    def flaky(count: int) -> Reservation:
        if failures:
            raise failures.pop()
        return limiter.reserve(count)

    pool = SlotPool(flaky, lambda: 100)
    started = time.monotonic()
    pool.take()
    assert time.monotonic() - started >= 0.4  # waited RETRY_SECONDS before trying again
    assert limiter.requests == [1]
