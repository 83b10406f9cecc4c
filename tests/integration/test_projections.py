"""Projections against real PostgreSQL: counts equal those computed from the raw log."""

from __future__ import annotations

from typing import Any

import pytest

from projections.checkpoints import run_batch
from projections.registry import PROJECTIONS
from service.db.pool import Pool
from tests.integration.projection_history import (
    EXPECTED_HOURLY,
    append_all,
    expected_statuses,
    expected_topic_stats,
    expected_unlinked,
    interleave,
    make_history,
    raw_events,
)


async def project_all(pool: Pool, batch_size: int = 1000) -> None:
    """Apply every projection until each has caught up with the log."""
    for projection in PROJECTIONS.values():
        while True:
            async with pool.connection() as conn:
                batch = await run_batch(conn, projection, batch_size, wait=True)
            assert batch is not None
            if len(batch.events) < batch_size:
                break


async def table_rows(pool: Pool, query: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(query)  # type: ignore[arg-type]
        return list(await cursor.fetchall())


async def topic_stats(pool: Pool) -> dict[str, dict[str, Any]]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT * FROM topic_stats")
        names = [column.name for column in cursor.description or []]
        rows = await cursor.fetchall()
    return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in rows}


async def check_against_log(pool: Pool) -> None:
    rows = await raw_events(pool)

    actual = await topic_stats(pool)
    expected = expected_topic_stats(rows)
    assert set(actual) == set(expected)
    for topic, counts in expected.items():
        nonzero = {column: value for column, value in actual[topic].items() if value != 0}
        assert nonzero == {column: value for column, value in counts.items() if value != 0}, topic

    unlinked = await table_rows(pool, "SELECT event_type, events FROM unlinked_events")
    assert dict(unlinked) == expected_unlinked(rows)  # type: ignore[arg-type]

    hourly = await table_rows(pool, "SELECT hour, event_type, topic_id, events FROM hourly_counts")
    assert sorted(hourly, key=repr) == sorted(await table_rows(pool, EXPECTED_HOURLY), key=repr)

    statuses = await table_rows(pool, "SELECT request_id, status FROM email_status")
    assert dict(statuses) == expected_statuses(rows)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_history_matches_log(pool: Pool, seed: int) -> None:
    """Counts built in batches equal the counts computed from the events table."""
    history = make_history(seed)
    events = interleave(history)
    half = len(events) // 2
    await append_all(pool, events[:half], history.rng)
    await project_all(pool, batch_size=37)
    await append_all(pool, events[half:], history.rng)
    await project_all(pool, batch_size=37)
    await check_against_log(pool)


async def test_email_status_milestones_match_log(pool: Pool) -> None:
    """Milestone times are the earliest event of each kind; ids and recipient are kept."""
    history = make_history(7)
    await append_all(pool, interleave(history), history.rng)
    await project_all(pool, batch_size=50)
    expected = await table_rows(
        pool,
        """
        SELECT e.stream,
               min(e.occurred_at) FILTER (WHERE e.type = 'EmailRequested'),
               min(e.occurred_at) FILTER (WHERE e.type = 'EmailSent'),
               min(e.occurred_at) FILTER (WHERE e.type = 'EmailDelivered'),
               min(e.occurred_at) FILTER (WHERE e.type = 'EmailBounced'),
               max(e.data->>'ses_message_id') FILTER (WHERE e.type = 'EmailSent'),
               max(e.data->>'recipient') FILTER (WHERE e.type = 'EmailRequested'),
               count(*) FILTER (WHERE e.type = 'EmailOpened'
                                AND NOT (e.data->>'duplicate')::boolean)
        FROM events e
        WHERE e.stream LIKE 'req-%%'
        GROUP BY e.stream
        """,
    )
    actual = await table_rows(
        pool,
        """
        SELECT request_id, requested_at, sent_at, delivered_at, bounced_at, ses_message_id,
               recipient, opens
        FROM email_status
        """,
    )
    assert sorted(actual) == sorted(expected)


async def test_checkpoint_moves_with_batches(pool: Pool) -> None:
    """After catching up, every checkpoint sits on the last event in read order."""
    history = make_history(4, emails=40)
    await append_all(pool, interleave(history), history.rng)
    await project_all(pool, batch_size=10)
    rows = await table_rows(
        pool, "SELECT projection, position, events_applied FROM projection_checkpoints"
    )
    last = await table_rows(
        pool, "SELECT position, (SELECT count(*) FROM events) FROM events "
        "ORDER BY xact_id DESC, position DESC LIMIT 1"
    )
    assert {row[0] for row in rows} == set(PROJECTIONS)
    for _, position, applied in rows:
        assert (position, applied) == last[0]


async def test_read_after_follows_the_read_order_index(pool: Pool) -> None:
    """Reading after a checkpoint walks the (xact_id, position) index without sorting."""
    from service.events.store import _READ

    history = make_history(5, emails=200)
    await append_all(pool, interleave(history), history.rng)
    async with pool.connection() as conn:
        await conn.execute("ANALYZE events")
        cursor = await conn.execute(
            f"EXPLAIN (FORMAT JSON) {_READ}",  # type: ignore[arg-type]
            ("0", 0, 100),
        )
        row = await cursor.fetchone()
    assert row is not None
    plan = repr(row[0])
    assert "events_read_order" in plan
    assert "'Sort'" not in plan


async def test_several_batches_in_one_transaction(pool: Pool) -> None:
    """Batches applied in one transaction, as a rebuild's final catch-up does, add up."""
    from projections.base import Tables
    from service.events.store import Checkpoint, read_after

    history = make_history(6, emails=60)
    await append_all(pool, interleave(history), history.rng)
    async with pool.connection() as conn, conn.transaction():
        events = await read_after(conn, Checkpoint(), 100_000)
        for projection in PROJECTIONS.values():
            tables = Tables.live(projection.tables)
            for start in range(0, len(events), 40):
                await projection.apply(conn, events[start : start + 40], tables)
    await check_against_log(pool)
