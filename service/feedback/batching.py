"""Group commits for feedback: notifications that arrive together share one transaction.

Every commit waits for a WAL flush, and a callback per transaction would make that flush the
limit on how many notifications a process can take. Instead each callback queues its work
and waits. A writer task takes every queued item (up to `max_batch`), hands them to one `process`
call in one transaction, and commits once; each callback gets its answer only after the
commit, so SNS gets a 200 only for what is stored.

If a batch fails, its items are run again one transaction each, so one bad item fails alone
and a database outage fails every item with the database error.

Writer tasks start on demand and end as soon as the queue is empty, so nothing keeps running
between bursts and there is nothing to shut down.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from service.db.pool import Pool
from service.feedback.linking import Connection
from service.logging import get_logger

log = get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

Process = Callable[[Connection, list[Item]], Awaitable[list[Result]]]
"""Handles a batch of items in the given transaction; returns one result per item, in order."""


class BatchWriter(Generic[Item, Result]):
    def __init__(
        self,
        pool: Pool,
        process: Process[Item, Result],
        *,
        max_batch: int = 200,
        writers: int = 2,
        timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._process = process
        self._max_batch = max_batch
        self._max_writers = writers
        self._timeout = timeout
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._writers: set[asyncio.Task[None]] = set()

    async def run(self, item: Item) -> Result:
        """Process `item` in a shared transaction; return its result once that has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._writers) < self._max_writers:
            task = asyncio.create_task(self._write())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await future

    async def _write(self) -> None:
        # No await happens between the empty check and returning, so an item queued by
        # `run` is always seen either by this loop or by the writer `run` starts.
        while self._queue:
            count = min(self._max_batch, len(self._queue))
            await self._commit([self._queue.popleft() for _ in range(count)])

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            async with self._pool.connection(timeout=self._timeout) as conn, conn.transaction():
                results = await self._process(conn, [item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            log.warning("feedback_batch_failed", size=len(batch), error=str(error))
            for entry in batch:
                await self._commit([entry])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: Exception | None = None
) -> None:
    # A callback whose client went away has a cancelled future; its work is committed anyway.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
