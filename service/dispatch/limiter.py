"""The shared send budget: rate limiter, rolling 24-hour quota and holds, kept in PostgreSQL.

Every dispatcher reserves sends through `reserve_sends` (sql/015_send_limits.sql), which
locks one row, so all of them together stay under one rate and one quota, across restarts.
A reservation hands out start times ("slots") spaced 1/rate apart; the caller starts each
send at its slot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

# Slots are spaced for this share of the configured rate. The margin leaves 15 ms in every
# one-second window for differences in how late sends start after their slots and reach
# SES. SLOT_TOLERANCE_SECONDS in service.dispatch.ses keeps the first part below 5 ms.
RATE_MARGIN = 0.985

HoldReason = str


@dataclass(frozen=True)
class Reservation:
    """Sends granted by one round trip: slot i starts at `first_slot + i * spacing`."""

    granted: int
    first_slot: float
    """time.monotonic() value of the first slot."""
    spacing: float
    held_until: datetime | None = None
    held_for: HoldReason | None = None

    def slot(self, index: int) -> float:
        return self.first_slot + index * self.spacing


async def reserve(
    conn: AsyncConnection[tuple[object, ...]], requested: int, rate: float, daily_quota: int
) -> Reservation:
    """Reserve up to `requested` sends at `rate` per second within `daily_quota` a day.

    Delays come from the database clock and are turned into this host's monotonic clock
    on arrival, so hosts with skewed clocks still share one schedule.
    """
    cursor = await conn.execute(
        "SELECT * FROM reserve_sends(%s, %s, %s)", (requested, rate * RATE_MARGIN, daily_quota)
    )
    row = await cursor.fetchone()
    received = time.monotonic()
    assert row is not None
    granted, first_delay, spacing, held_until, held_for, _first_slot = row
    assert isinstance(granted, int)
    if granted == 0:
        assert isinstance(held_until, datetime)
        return Reservation(0, received, 0.0, held_until, str(held_for))
    assert isinstance(first_delay, float)
    assert isinstance(spacing, float)
    return Reservation(granted, received + first_delay, spacing)


async def slow_down(conn: AsyncConnection[tuple[object, ...]]) -> None:
    """Lower the shared rate by a fifth (to a tenth at least) after SES throttled a send."""
    await conn.execute(
        """
        UPDATE send_limiter
        SET slowdown = greatest(0.1, 0.8 * least(1.0, slowdown
                           + 0.1 * floor(extract(epoch FROM clock_timestamp()
                                                  - coalesce(throttled_at, clock_timestamp()))
                                         / 10))),
            throttled_at = clock_timestamp()
        WHERE id
        """
    )


async def hold(
    conn: AsyncConnection[tuple[object, ...]], seconds: float, reason: HoldReason
) -> datetime:
    """Stop every dispatcher from starting sends for `seconds`; return when the hold ends."""
    cursor = await conn.execute(
        """
        UPDATE send_limiter
        SET hold_until = greatest(coalesce(hold_until, clock_timestamp()),
                                  clock_timestamp() + make_interval(secs => %s)),
            hold_reason = %s
        WHERE id
        RETURNING hold_until
        """,
        (seconds, reason),
    )
    row = await cursor.fetchone()
    assert row is not None
    until = row[0]
    assert isinstance(until, datetime)
    return until
