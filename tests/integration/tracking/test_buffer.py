"""The pixel's open buffer: batched writes, shutdown flush and the bound on memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailOpened
from service.metrics import TRACKING
from service.tracking.buffer import OpenBuffer
from service.tracking.record import Hit
from tests.integration.tracking.helpers import insert_sent_email


async def _sent_emails(pool: Pool, count: int) -> list[str]:
    async with pool.connection() as conn, conn.transaction():
        return [await insert_sent_email(conn, topic_id="buffered") for _ in range(count)]


async def _opens(pool: Pool, request_id: str) -> list[EmailOpened]:
    async with pool.connection() as conn:
        stored = await read_stream(conn, request_id)
    return [item.event for item in stored if isinstance(item.event, EmailOpened)]


def _hit(request_id: str) -> Hit:
    return Hit(request_id, "Thunderbird/128.0", datetime.now(UTC))


async def test_buffer_writes_offered_opens(pool: Pool) -> None:
    """Offered opens are written soon after, each with its email's topic."""
    request_ids = await _sent_emails(pool, 3)
    buffer = OpenBuffer(pool, interval=0.001)
    buffer.start()
    try:
        for request_id in request_ids:
            assert buffer.offer(_hit(request_id))
        for _ in range(250):
            if buffer.pending == 0 and all([await _opens(pool, r) for r in request_ids]):
                break
            await asyncio.sleep(0.02)
    finally:
        await buffer.close()
    for request_id in request_ids:
        (opened,) = await _opens(pool, request_id)
        assert opened.topic_id == "buffered"
        assert opened.source == "pixel"


async def test_buffer_close_writes_everything(pool: Pool) -> None:
    """Closing writes every buffered open, in batches of the configured size."""
    request_ids = await _sent_emails(pool, 5)
    buffer = OpenBuffer(pool, interval=60, max_batch=2)
    buffer.start()
    for request_id in request_ids:
        buffer.offer(_hit(request_id))
    await buffer.close()
    assert buffer.pending == 0
    for request_id in request_ids:
        assert len(await _opens(pool, request_id)) == 1


async def test_buffer_full_drops_and_counts(pool: Pool) -> None:
    """Past max_pending new opens are dropped and counted, not queued."""
    (request_id,) = await _sent_emails(pool, 1)
    dropped = TRACKING.labels("open", "dropped")
    before = dropped._value.get()
    buffer = OpenBuffer(pool, interval=60, max_pending=2)
    buffer.start()
    results = [buffer.offer(_hit(request_id)) for _ in range(4)]
    await buffer.close()
    assert results == [True, True, False, False]
    assert dropped._value.get() - before == 2
    assert len(await _opens(pool, request_id)) == 2


async def test_buffer_rejects_after_close(pool: Pool) -> None:
    """A closed buffer accepts nothing."""
    (request_id,) = await _sent_emails(pool, 1)
    buffer = OpenBuffer(pool)
    buffer.start()
    await buffer.close()
    assert buffer.offer(_hit(request_id)) is False
