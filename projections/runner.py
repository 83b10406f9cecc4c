"""The projector: keeps every projection up to date, woken by NOTIFY and by a poll timer.

Any number of projectors may run against one database. Each batch locks its projection's
checkpoint row, so at most one process applies a given projection at a time and an event is
never applied twice. The other processes skip that projection until the batch commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import psycopg
from psycopg_pool import PoolTimeout

from projections.base import Connection, Projection
from projections.checkpoints import Batch, run_batch
from projections.lag import record_lag
from projections.listener import listen
from projections.registry import PROJECTIONS
from service.db.pool import Pool
from service.events.store import Checkpoint
from service.logging import get_logger

log = get_logger(__name__)

BatchObserver = Callable[[str, Batch], None]

_MAX_BACKOFF_SECONDS = 30.0

# Events after the checkpoint that read_after did not return yet: they wait for an older
# transaction to end. Such a transaction may end without a NOTIFY, so the runner polls
# for them soon instead of sleeping until the next poll.
_HELD_BACK = """
SELECT EXISTS (SELECT 1 FROM events WHERE (xact_id, position) > (%s::text::xid8, %s))
"""


@dataclass(frozen=True)
class RunnerOptions:
    batch_size: int = 1000
    poll_interval: float = 2.0
    """Seconds between polls when no notification arrives."""
    lag_interval: float = 5.0
    """Seconds between lag measurements for the Prometheus gauges."""


class _Next(Enum):
    MORE = "more"
    HELD_BACK = "held_back"
    IDLE = "idle"


async def run_projector(
    pool: Pool,
    url: str,
    options: RunnerOptions,
    stop: asyncio.Event,
    *,
    projections: Sequence[Projection] | None = None,
    on_batch: BatchObserver | None = None,
) -> None:
    """Run every projection (or those given) until `stop` is set."""
    selected = list(projections or PROJECTIONS.values())
    runners = [ProjectionRunner(pool, projection, options, on_batch) for projection in selected]
    listener = asyncio.create_task(listen(url, [r.wake for r in runners], stop))
    log.info("projector_started", projections=[p.name for p in selected])
    try:
        await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    log.info("projector_stopped")


class ProjectionRunner:
    """Applies one projection's batches in a loop."""

    def __init__(
        self,
        pool: Pool,
        projection: Projection,
        options: RunnerOptions,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.pool = pool
        self.projection = projection
        self.options = options
        self.on_batch = on_batch
        self.wake = asyncio.Event()
        self._lag_measured = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        held_back_delay = 0.01
        while not stop.is_set():
            try:
                step = await self.step()
            except (psycopg.OperationalError, PoolTimeout) as error:
                log.warning(
                    "projection_database_unavailable",
                    projection=self.projection.name,
                    error=str(error),
                    retry_in=backoff,
                )
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            except Exception as error:
                # A bug or an undecodable event: the projection stops here, and retries in
                # case the cause is transient, until an operator fixes it.
                log.error(
                    "projection_batch_failed",
                    projection=self.projection.name,
                    exc_info=error,
                    retry_in=backoff,
                )
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.5
            if step is _Next.MORE:
                held_back_delay = 0.01
            elif step is _Next.HELD_BACK:
                await self._sleep(stop, held_back_delay, wake=True)
                held_back_delay = min(held_back_delay * 2, self.options.poll_interval)
            else:
                held_back_delay = 0.01
                await self._sleep(stop, self.options.poll_interval, wake=True)

    async def step(self) -> _Next:
        """Apply one batch and return what the loop does next."""
        # Cleared before reading, so a notification that arrives during the batch counts.
        self.wake.clear()
        async with self.pool.connection() as conn:
            batch = await run_batch(conn, self.projection, self.options.batch_size)
            if batch is None:
                return _Next.IDLE  # another projector is applying this projection
            if batch.events and self.on_batch is not None:
                self.on_batch(self.projection.name, batch)
            await self._measure_lag(conn)
            if len(batch.events) == self.options.batch_size:
                return _Next.MORE
            if await _held_back(conn, batch.after):
                return _Next.HELD_BACK
        return _Next.IDLE

    async def _measure_lag(self, conn: Connection) -> None:
        now = time.monotonic()
        if now - self._lag_measured < self.options.lag_interval:
            return
        self._lag_measured = now
        await record_lag(conn, [self.projection.name])

    async def _sleep(self, stop: asyncio.Event, seconds: float, *, wake: bool = False) -> None:
        waiters = [asyncio.create_task(stop.wait())]
        if wake:
            waiters.append(asyncio.create_task(self.wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


async def _held_back(conn: Connection, after: Checkpoint) -> bool:
    cursor = await conn.execute(_HELD_BACK, (str(after.xact_id), after.position))
    row = await cursor.fetchone()
    return bool(row and row[0])
