"""The shared send budget: rate limiter, rolling 24-hour quota and holds, kept in PostgreSQL.

Every dispatcher reserves sends through `reserve_slots` (sql/045_quota_refund.sql), which
locks one row, so all of them together stay under one rate and one quota, across restarts.
A reservation hands out start times ("slots") spaced a little over 1/rate apart; a send
starts at a slot, or not at that slot when it could only start too late (service.dispatch.slots).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import AsyncConnection

# The window rule: never more than EMAIL_RATE sends start in any one-second window [a, a + 1),
# across all dispatchers. Why the two constants below guarantee it:
#
# Let N = floor(EMAIL_RATE), the most sends a window may hold (a count is a whole number;
# below 1 per second N is the rate itself, and a window then holds at most one send).
# reserve_slots hands out slots from one row, each at least T = 1 / (RATE_MARGIN * N) after
# the one before (the next slot is rounded up to the microsecond, never down, and slowing
# down only widens T). A send starts no earlier than its slot and at most
# LATENESS_BUDGET_SECONDS = L after it, or not at all. So a start inside [a, a + 1) belongs
# to a slot inside [a - L, a + 1), a half-open interval of length 1 + L. k slots at least T
# apart inside it span (k - 1) T < 1 + L, so k - 1 < (1 + L) / T, that is
# k <= ceil((1 + L) / T) (the open end is what removes the "+ 1" of a closed interval), so
#
#     starts in any window <= ceil((1 + L) * RATE_MARGIN * N) <= N <= EMAIL_RATE
#
# whenever RATE_MARGIN * (1 + L) <= 1, for every rate. 0.985 allows up to 15.2 ms; L is
# 10 ms, so the product is 0.99485. The other 5 ms are for what the rule does not cover:
# the way from release to SES (connection, network) varies between requests, and SES counts
# arrivals. They also absorb the drift between the database clock and this host's
# monotonic clock over the quarter second a reservation looks ahead.
#
# L counts everything between the slot on the database clock and the moment the request is
# released to SES (`window_tolerance` and `SlotPool.take` in service.dispatch.slots):
# - the reservation round trip: the slot reaches us as a delay from the database's
#   clock_timestamp(), which was read between our sending the query and our receiving the
#   answer. Counting the delay from the moment of receipt makes no send early, and late by
#   at most the round trip;
# - the thread's own lateness at its slot, measured where the request is released.
# A send over the budget is not made at that slot, and takes a later one. A missed slot is
# never handed out again: it lies in the past, and reusing it would put two slots closer
# than T. Its share of the daily quota is given back (`refund`), as no send used it.
RATE_MARGIN = 0.985
LATENESS_BUDGET_SECONDS = 0.010
assert RATE_MARGIN * (1 + LATENESS_BUDGET_SECONDS) < 1

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
    round_trip: float = 0.0
    """Seconds from sending the reservation to receiving it: how late the slots may be."""
    minute: datetime | None = None
    """The daily quota's minute the granted sends were counted in."""

    def slot(self, index: int) -> float:
        return self.first_slot + index * self.spacing

    @property
    def tolerance(self) -> float:
        """How late after its slot (on this host) a send may still start."""
        return window_tolerance(self.round_trip)


def window_tolerance(round_trip: float) -> float:
    """Return the lateness a send may still have after a reservation that took `round_trip`."""
    return LATENESS_BUDGET_SECONDS - round_trip


def window_rate(rate: float) -> float:
    """Return the rate slots are spaced for: a share of the whole sends a window may hold."""
    return RATE_MARGIN * (math.floor(rate) if rate >= 1 else rate)


def max_starts_per_window(rate: float) -> int:
    """Return the most sends that can start in one second at `rate` (see the rule above)."""
    return math.ceil((1 + LATENESS_BUDGET_SECONDS) * window_rate(rate))


_RESERVE = "SELECT * FROM reserve_slots(%s, %s, %s)"


class BlockingLimiter:
    """Reservations from a sending thread, on a connection of its own (autocommit: a
    reservation is one statement and one round trip). A broken connection is replaced on
    the next call."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def reserve(self, requested: int, rate: float, daily_quota: int) -> Reservation:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
                requested_at = time.monotonic()
                row = self._conn.execute(
                    _RESERVE, (requested, window_rate(rate), daily_quota), prepare=True
                ).fetchone()
                received = time.monotonic()
            except psycopg.OperationalError:
                self.close()
                raise
        return _reservation(row, requested_at, received)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _reservation(
    row: tuple[object, ...] | None, requested_at: float, received: float
) -> Reservation:
    assert row is not None
    granted, first_delay, spacing, held_until, held_for, _first_slot, minute = row
    assert isinstance(granted, int)
    if granted == 0:
        assert isinstance(held_until, datetime)
        return Reservation(0, received, 0.0, held_until, str(held_for))
    assert isinstance(first_delay, float)
    assert isinstance(spacing, float)
    assert isinstance(minute, datetime)
    return Reservation(granted, received + first_delay, spacing, round_trip=received - requested_at,
                       minute=minute)


async def refund(conn: AsyncConnection[tuple[object, ...]], unused: Mapping[datetime, int]) -> None:
    """Give back to the daily quota reserved sends that were never made, per counted minute."""
    minutes = sorted(unused)
    await conn.execute(
        """
        UPDATE send_quota_usage AS u
        SET sends = greatest(u.sends - r.unused, 0)
        FROM unnest(%s::timestamptz[], %s::int[]) AS r (minute, unused)
        WHERE u.minute = r.minute
        """,
        (minutes, [unused[m] for m in minutes]),
    )


async def slow_down(conn: AsyncConnection[tuple[object, ...]]) -> None:
    """Lower the shared rate by a fifth (to a tenth at least) after SES throttled a send."""
    await conn.execute(
        """
        UPDATE send_limiter
        SET slowdown = greatest(0.1, 0.8 * least(1.0, slowdown
                           + 0.1 * floor(extract(epoch FROM now.at - coalesce(throttled_at, now.at))
                                         / 10))),
            throttled_at = now.at
        -- One clock reading: two clock_timestamp() calls can differ by a microsecond, and a
        -- negative difference would floor to -1 and cut the rate by more than a fifth.
        FROM (SELECT clock_timestamp() AS at) AS now
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
