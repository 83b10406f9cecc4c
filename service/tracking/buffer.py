"""A bounded in-memory buffer of pixel opens, written to the database in batches.

The pixel is the busiest endpoint, because a campaign sent at once is opened at once. Writing
each open in its own transaction costs several round trips and a commit per request. So the
handler only verifies the token and offers the open here. One background task writes what
has accumulated every `interval` seconds in a single transaction.

Durability trade-off: an open is in memory until its batch commits, normally a few
milliseconds. A process that is killed (SIGKILL, out of memory, power loss) loses the opens
still buffered; SIGTERM and a normal shutdown write them first. When the database is slow or
down the buffer fills up to `max_pending` opens, after which new opens are dropped and
counted (`ses_sender_tracking_requests{kind="open",outcome="dropped"}`), so memory stays
bounded and the pixel keeps answering.
"""

from __future__ import annotations

import asyncio
from collections import deque

from service.db.pool import Pool
from service.logging import get_logger
from service.metrics import TRACKING
from service.tracking.record import Hit, record_opens

log = get_logger(__name__)

_RETRY_DELAYS_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class OpenBuffer:
    """Collects pixel opens and writes them in batches from one background task.

    `max_batch` bounds the Python work done between two awaits (decoding, classifying and
    encoding each open), so a backlog does not stall the event loop that serves the pixel.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        max_pending: int = 20_000,
        max_batch: int = 250,
        interval: float = 0.005,
    ) -> None:
        self._pool = pool
        self._pending: deque[Hit] = deque()
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._interval = interval
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def offer(self, hit: Hit) -> bool:
        """Queue an open; return False and drop it when the buffer is full or closing."""
        if self._closing or len(self._pending) >= self._max_pending:
            TRACKING.labels("open", "dropped").inc()
            return False
        self._pending.append(hit)
        self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="open-buffer")

    async def close(self) -> None:
        """Stop accepting opens, write every buffered one, and stop the task."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing:
                # Gather what arrives in the next few milliseconds into the same batch.
                await asyncio.sleep(self._interval)
            self._wake.clear()
            while self._pending:
                await self._write(self._take())
            if self._closing:
                return

    def _take(self) -> list[Hit]:
        count = min(len(self._pending), self._max_batch)
        return [self._pending.popleft() for _ in range(count)]

    async def _write(self, batch: list[Hit]) -> None:
        delays = iter(_RETRY_DELAYS_SECONDS)
        while True:
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    await record_opens(conn, "pixel", batch)
            except Exception as error:
                delay = next(delays, None)
                if delay is None or self._closing:
                    TRACKING.labels("open", "failed").inc(len(batch))
                    log.error("open_batch_lost", opens=len(batch), error=str(error))
                    return
                log.warning("open_batch_retry", opens=len(batch), delay=delay, error=str(error))
                await asyncio.sleep(delay)
            else:
                TRACKING.labels("open", "recorded").inc(len(batch))
                return

