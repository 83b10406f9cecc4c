"""The event store against real PostgreSQL: atomic batches, dedupe, and no skipped events."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import psycopg
import pytest

from service.db.pool import Pool
from service.events.store import Checkpoint, NewEvent, append, read_after, read_stream
from service.events.types import EmailCancelled, EmailRequested, EmailSent

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def requested(request_id: str, topic: str = "news") -> NewEvent:
    return NewEvent(
        stream=request_id,
        event=EmailRequested(
            request_id=request_id,
            message_id="m1",
            topic_id=topic,
            recipient=f"{request_id}@example.com",
            scheduled_at=NOW,
        ),
        occurred_at=NOW,
    )


async def read_all(pool: Pool) -> list[int]:
    async with pool.connection() as conn:
        return [e.position for e in await read_after(conn, Checkpoint(), limit=100_000)]


async def test_append_returns_positions_in_order(pool: Pool) -> None:
    """A batch gets ascending positions in the order given."""
    async with pool.connection() as conn, conn.transaction():
        positions = await append(conn, [requested("r1"), requested("r2"), requested("r3")])
    assert positions == sorted(positions)
    assert len(set(positions)) == 3


async def test_batch_is_atomic(pool: Pool) -> None:
    """A failing transaction leaves none of its events behind."""

    async def append_then_fail() -> None:
        async with pool.connection() as conn, conn.transaction():
            await append(conn, [requested("r1"), requested("r2")])
            raise RuntimeError("caller fails after appending")

    with pytest.raises(RuntimeError):
        await append_then_fail()
    assert await read_all(pool) == []


async def test_dedupe_key_reports_already_recorded(pool: Pool) -> None:
    """An event whose dedupe key exists comes back as None and is stored once."""
    first = NewEvent("r1", EmailCancelled(request_id="r1", topic_id="t"), dedupe_key="sns:1:a")
    async with pool.connection() as conn, conn.transaction():
        assert (await append(conn, [first]))[0] is not None
    async with pool.connection() as conn, conn.transaction():
        again = await append(conn, [requested("r0"), first, requested("r2")])
    assert again[1] is None
    assert again[0] is not None
    assert again[2] is not None
    assert len(await read_all(pool)) == 3


async def test_dedupe_key_repeated_inside_one_batch(pool: Pool) -> None:
    """The same key twice in one batch is stored once, for its first occurrence."""
    event = NewEvent("r1", EmailCancelled(request_id="r1", topic_id="t"), dedupe_key="k")
    async with pool.connection() as conn, conn.transaction():
        positions = await append(conn, [event, event])
    assert positions[0] is not None
    assert positions[1] is None


async def test_round_trip_through_the_table(pool: Pool) -> None:
    """What is read back equals what was appended, type and fields."""
    sent = EmailSent(request_id="r1", topic_id="t", ses_message_id="0100-abc", attempt=2)
    async with pool.connection() as conn, conn.transaction():
        await append(conn, [requested("r1"), NewEvent("r1", sent, occurred_at=NOW)])
    async with pool.connection() as conn:
        stored = await read_stream(conn, "r1")
    assert [s.type_name for s in stored] == ["EmailRequested", "EmailSent"]
    assert stored[1].event == sent
    assert stored[1].occurred_at == NOW


async def test_recorded_when_stored_not_when_begun(pool: Pool) -> None:
    """recorded_at is the moment of the insert, not the start of its transaction."""
    sent = EmailSent(request_id="r1", topic_id="t", ses_message_id="0100-abc", attempt=1)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT 1")
        await asyncio.sleep(0.05)
        await append(conn, [NewEvent("r1", sent)])
    async with pool.connection() as conn:
        [stored] = await read_stream(conn, "r1")
    assert stored.occurred_at <= stored.recorded_at


async def test_events_cannot_be_updated_or_deleted(pool: Pool) -> None:
    """The table refuses UPDATE and DELETE."""
    async with pool.connection() as conn, conn.transaction():
        await append(conn, [requested("r1")])
    for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(statement)  # type: ignore[arg-type]


async def test_one_notify_per_transaction(pool: Pool, database_url: str) -> None:
    """Two appends in one transaction wake a listener once."""
    listener = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await listener.execute("LISTEN events")
        async with pool.connection() as conn, conn.transaction():
            await append(conn, [requested("r1")])
            await append(conn, [requested("r2")])
        received = [n async for n in listener.notifies(timeout=0.5)]
    finally:
        await listener.close()
    assert len(received) == 1


async def test_reader_waits_for_a_late_commit(pool: Pool, database_url: str) -> None:
    """An event with a smaller position that commits later is still read, after the other."""
    slow = await psycopg.AsyncConnection.connect(database_url)
    try:
        await append(slow, [requested("slow")])  # takes the smaller position, not committed
        async with pool.connection() as conn, conn.transaction():
            await append(conn, [requested("fast")])
        async with pool.connection() as conn:
            first_read = await read_after(conn, Checkpoint())
        # The fast event is held back while the older transaction runs.
        assert first_read == []
        await slow.commit()
    finally:
        await slow.close()
    async with pool.connection() as conn:
        streams = [e.stream for e in await read_after(conn, Checkpoint())]
    assert sorted(streams) == ["fast", "slow"]


async def test_position_walk_would_skip_a_late_commit(pool: Pool, database_url: str) -> None:
    """The race is real: a reader that walks positions alone misses the late commit."""
    slow = await psycopg.AsyncConnection.connect(database_url)
    try:
        await append(slow, [requested("slow")])
        async with pool.connection() as conn, conn.transaction():
            await append(conn, [requested("fast")])
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT max(position) FROM events")
            row = await cursor.fetchone()
        naive_checkpoint = row[0] if row else 0
        await slow.commit()
    finally:
        await slow.close()
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT stream FROM events WHERE position > %s", (naive_checkpoint,)
        )
        missed = await cursor.fetchall()
    assert missed == []  # the slow event sits below the naive checkpoint and is never read


async def test_concurrent_writers_reader_sees_every_event_once(
    pool: Pool, database_url: str
) -> None:
    """Writers commit out of position order while a reader follows; none skipped, none twice."""
    writers, transactions, batch = 4, 500, 5
    total = writers * transactions * batch
    rng = random.Random(20261204)
    delays = [[rng.random() * 0.002 for _ in range(transactions)] for _ in range(writers)]

    async def write(writer: int) -> None:
        conn = await psycopg.AsyncConnection.connect(database_url)
        try:
            for index in range(transactions):
                async with conn.transaction():
                    await append(
                        conn, [requested(f"w{writer}-{index}-{k}") for k in range(batch)]
                    )
                    # Hold the transaction open so later positions commit first.
                    await asyncio.sleep(delays[writer][index])
        finally:
            await conn.close()

    seen: list[int] = []

    async def follow(done: asyncio.Event) -> None:
        checkpoint = Checkpoint()
        async with pool.connection() as conn:
            while True:
                finished = done.is_set()
                events = await read_after(conn, checkpoint, limit=500)
                seen.extend(e.position for e in events)
                if events:
                    checkpoint = events[-1].checkpoint
                elif finished:
                    return
                else:
                    await asyncio.sleep(0.001)

    done = asyncio.Event()
    reader = asyncio.create_task(follow(done))
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await reader

    assert len(seen) == total
    assert len(set(seen)) == total
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM events")
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == total
