"""The shared rate limiter and daily quota in PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime

import psycopg
import pytest

from service.db.pool import Pool
from service.dispatch import limiter
from service.dispatch.limiter import RATE_MARGIN, Reservation
from tests.support.ses_stub import max_in_any_window


async def reserve(pool: Pool, requested: int, rate: float, quota: int = 1_000_000) -> Reservation:
    """Reserve as a dispatcher's sending thread does, on a connection of its own."""
    blocking = limiter.BlockingLimiter(str(pool.conninfo))
    try:
        return await asyncio.to_thread(blocking.reserve, requested, rate, quota)
    finally:
        blocking.close()


def database_url_of(pool: Pool) -> str:
    return str(pool.conninfo)


def slots(reservation: Reservation) -> list[float]:
    return [reservation.slot(i) for i in range(reservation.granted)]


async def test_concurrent_reservers_never_exceed_rate(pool: Pool) -> None:
    """Four reservers taking batches at once: no one-second window over the rate, none lost.

    Slot times are read on the database clock, where the schedule is made, so the check is
    exact; the margin against network delays is checked end to end with a stub SES.
    """
    rate = 50.0
    times: list[float] = []

    async def reserver(batch: int) -> None:
        for _ in range(8):
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT granted, spacing, extract(epoch FROM first_slot)::float8"
                    " FROM reserve_slots(%s, %s, 1000000)",
                    (batch, rate * RATE_MARGIN),
                )
                row = await cursor.fetchone()
            assert row is not None
            granted, spacing, first = row
            times.extend(first + i * spacing for i in range(granted))

    await asyncio.gather(*(reserver(batch) for batch in (3, 5, 7, 11)))
    assert len(times) == 8 * (3 + 5 + 7 + 11)
    assert max_in_any_window(times) <= rate
    span = max(times) - min(times)
    assert (len(times) - 1) / span >= 0.98 * rate


async def test_slots_are_spaced_for_rate(pool: Pool) -> None:
    """A batch's slots are 1/rate apart, less the safety margin."""
    reservation = await reserve(pool, 10, 20.0)
    assert reservation.granted == 10
    assert abs(reservation.spacing - 1 / (20.0 * RATE_MARGIN)) < 1e-9


async def test_no_burst_after_idle(pool: Pool) -> None:
    """After an idle period the first slot is now and the next ones are spaced again."""
    await reserve(pool, 5, 10.0)
    await asyncio.sleep(1.0)
    before = time.monotonic()
    reservation = await reserve(pool, 10, 10.0)
    assert reservation.first_slot - before < 0.05
    assert reservation.slot(9) - reservation.first_slot > 0.85


async def test_state_survives_new_connections(pool: Pool) -> None:
    """A reservation on another connection (a restarted dispatcher) continues the schedule."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM first_slot)::float8, spacing FROM reserve_slots(20, 10, 100)"
        )
        first = await cursor.fetchone()
    async with await psycopg.AsyncConnection.connect(database_url_of(pool)) as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM first_slot)::float8 FROM reserve_slots(1, 10, 100)"
        )
        second = await cursor.fetchone()
    assert first is not None
    assert second is not None
    assert second[0] == pytest.approx(first[0] + 20 * first[1])


async def test_quota_grants_what_is_left(pool: Pool) -> None:
    """Reservations are cut at the quota; then every send is held until the window frees."""
    assert (await reserve(pool, 7, 1000.0, quota=10)).granted == 7
    assert (await reserve(pool, 7, 1000.0, quota=10)).granted == 3
    held = await reserve(pool, 1, 1000.0, quota=10)
    assert held.granted == 0
    assert held.held_for == "daily_quota"
    assert held.held_until is not None
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT %s - now() > interval '24 hours'", (held.held_until,))
        row = await cursor.fetchone()
    assert row == (True,)


async def test_quota_window_rolls(pool: Pool) -> None:
    """Sends older than 24 hours (and a minute) no longer count against the quota."""
    async with pool.connection() as conn:
        for hours_ago, sends in ((25, 10), (23, 4)):
            await conn.execute(
                "INSERT INTO send_quota_usage"
                " VALUES (date_trunc('minute', now()) - make_interval(hours => %s), %s)",
                (hours_ago, sends),
            )
    assert (await reserve(pool, 10, 1000.0, quota=10)).granted == 6


async def test_hold_stops_reservations(pool: Pool) -> None:
    """A hold set by one dispatcher stops every reservation until it ends."""
    async with pool.connection() as conn, conn.transaction():
        await limiter.hold(conn, 0.5, "account_paused")
    held = await reserve(pool, 1, 100.0)
    assert held.granted == 0
    assert held.held_for == "account_paused"
    await asyncio.sleep(0.6)
    assert (await reserve(pool, 1, 100.0)).granted == 1


async def test_throttling_slows_the_rate(pool: Pool) -> None:
    """After SES throttles, slots are spaced wider by a fifth."""
    async with pool.connection() as conn, conn.transaction():
        await limiter.slow_down(conn)
    reservation = await reserve(pool, 2, 100.0)
    assert abs(reservation.spacing - 1 / (100.0 * RATE_MARGIN * 0.8)) < 1e-9


async def test_reservation_counts_its_round_trip(pool: Pool) -> None:
    """The round trip of a reservation is measured and taken off the lateness a send may have."""
    reservation = await reserve(pool, 3, 10.0)
    assert 0 < reservation.round_trip < 1
    assert reservation.tolerance == pytest.approx(
        limiter.LATENESS_BUDGET_SECONDS - reservation.round_trip
    )


async def test_slots_never_closer_than_spacing(pool: Pool) -> None:
    """Across reservations the next slot is rounded up to the microsecond, never down."""
    rate = 1 / 0.0123452  # 12345.2 microseconds: rounded to the nearest it would lose 0.2
    firsts: list[datetime] = []
    async with pool.connection() as conn:
        for _ in range(40):
            cursor = await conn.execute(
                "SELECT first_slot, spacing FROM reserve_slots(1, %s, 1000000)", (rate,)
            )
            row = await cursor.fetchone()
            assert row is not None
            first, spacing = row
            firsts.append(first)
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(firsts)]
    assert min(gaps) >= spacing


async def test_refund_gives_unused_sends_back(pool: Pool) -> None:
    """Slots that were never used go back to the quota of the minute they were counted in."""
    first = await reserve(pool, 8, 1000.0, quota=10)
    assert first.minute is not None
    async with pool.connection() as conn, conn.transaction():
        await limiter.refund(conn, {first.minute: 5})
    assert (await reserve(pool, 10, 1000.0, quota=10)).granted == 7
    # A refund never takes a minute below zero.
    async with pool.connection() as conn, conn.transaction():
        await limiter.refund(conn, {first.minute: 1000})
    assert (await reserve(pool, 10, 1000.0, quota=10)).granted == 10
