"""Group commits: items queued together share a transaction; a failing item fails alone."""

from __future__ import annotations

import asyncio

import pytest

from service.db.pool import Pool
from service.feedback.batching import BatchWriter
from service.feedback.linking import Connection


async def test_concurrent_items_share_transactions(pool: Pool) -> None:
    batch_sizes: list[int] = []

    async def process(conn: Connection, items: list[int]) -> list[int]:
        batch_sizes.append(len(items))
        cursor = await conn.execute("SELECT txid_current()")
        row = await cursor.fetchone()
        assert row is not None
        return [int(row[0])] * len(items)

    writer: BatchWriter[int, int] = BatchWriter(pool, process, writers=1)
    transactions = await asyncio.gather(*(writer.run(i) for i in range(50)))
    assert sum(batch_sizes) == 50
    assert len(set(transactions)) == len(batch_sizes) < 50


async def test_failing_item_fails_alone(pool: Pool) -> None:
    async def process(conn: Connection, items: list[int]) -> list[int]:
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (item int)")
        for item in items:
            if item == 3:
                raise ValueError("item 3 is bad")
            await conn.execute("INSERT INTO seen VALUES (%s)", (item,))
        return [item * 10 for item in items]

    writer: BatchWriter[int, int] = BatchWriter(pool, process, writers=1)
    results = await asyncio.gather(*(writer.run(i) for i in range(6)), return_exceptions=True)
    assert results[:3] == [0, 10, 20]
    assert results[4:] == [40, 50]
    assert isinstance(results[3], ValueError)


async def test_database_error_reaches_every_caller(pool: Pool) -> None:
    async def process(conn: Connection, items: list[int]) -> list[int]:
        await conn.execute("SELECT * FROM no_such_table")
        return items

    writer: BatchWriter[int, int] = BatchWriter(pool, process)
    with pytest.raises(Exception, match="no_such_table"):
        await writer.run(1)
