"""Running a dispatcher inside a test until the emails it should handle are settled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from service.config import Settings
from service.db.pool import Pool
from service.dispatch.dispatcher import run_dispatcher
from service.dispatch.personalize import Personalizer

FINAL = ("sent", "failed", "suppressed", "cancelled", "uncertain")


@asynccontextmanager
async def dispatching(
    settings: Settings,
    pool: Pool,
    url: str,
    personalizers: Sequence[Personalizer] = (),
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a dispatcher for the duration of the block, then stop it as SIGTERM would."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_dispatcher(settings, pool, url, stop, personalizers=personalizers)
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def statuses(pool: Pool) -> dict[str, str]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT request_id::text, status FROM emails")
        return {str(r[0]): str(r[1]) for r in await cursor.fetchall()}


async def wait_until_settled(
    pool: Pool, request_ids: Sequence[str], seconds: float = 30.0, final: Sequence[str] = FINAL
) -> dict[str, str]:
    """Wait until every email in `request_ids` has a status in `final`; return the statuses."""
    deadline = time.monotonic() + seconds
    while True:
        current = await statuses(pool)
        if all(current.get(r) in final for r in request_ids):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"emails not settled after {seconds} s: {current}")
        await asyncio.sleep(0.05)
