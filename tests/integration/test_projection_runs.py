"""Projections under rebuilds, crashes and several projectors at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from projections.base import Connection, Projection, Tables
from projections.checkpoints import run_batch
from projections.lag import projection_status
from projections.rebuild import RebuildError, rebuild
from projections.registry import PROJECTIONS
from projections.runner import RunnerOptions, run_projector
from service.db.pool import Pool, open_pool
from service.events.store import StoredEvent
from tests.integration.projection_history import append_all, interleave, make_history
from tests.integration.test_projections import check_against_log, project_all, table_rows


async def dump_tables(pool: Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, sorted."""
    dumped = {}
    for projection in PROJECTIONS.values():
        for table in projection.tables:
            rows = await table_rows(pool, f"SELECT * FROM {table}")
            dumped[table] = sorted(rows, key=repr)
    return dumped


async def caught_up(pool: Pool) -> bool:
    async with pool.connection() as conn:
        statuses = await projection_status(conn, list(PROJECTIONS))
    return all(status.lag_events == 0 for status in statuses)


async def wait_until_caught_up(pool: Pool, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await caught_up(pool):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"projections did not catch up within {seconds} s")


async def test_rebuild_gives_identical_tables(pool: Pool, database_url: str) -> None:
    """Replaying the whole log after an incremental build changes no row."""
    history = make_history(11)
    events = interleave(history)
    await append_all(pool, events[: len(events) // 2], history.rng)
    await project_all(pool, batch_size=23)
    await append_all(pool, events[len(events) // 2 :], history.rng)
    await project_all(pool, batch_size=41)
    before = await dump_tables(pool)
    assert sum(len(rows) for rows in before.values()) > 500

    for projection in PROJECTIONS.values():
        result = await rebuild(database_url, projection, batch_size=97)
        assert result.events == len(events)

    assert await dump_tables(pool) == before
    leftovers = await table_rows(
        pool, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%__rebuild'"
    )
    assert leftovers == [(0,)]


async def test_rebuild_while_projector_runs(pool: Pool, database_url: str) -> None:
    """A rebuild during live traffic and a running projector ends with correct counts."""
    history = make_history(12)
    events = interleave(history)
    await append_all(pool, events[: len(events) // 3], history.rng)
    stop = asyncio.Event()
    options = RunnerOptions(batch_size=50, poll_interval=0.2)
    projector = asyncio.create_task(run_projector(pool, database_url, options, stop))
    writer = asyncio.create_task(append_all(pool, events[len(events) // 3 :], history.rng))
    for projection in PROJECTIONS.values():
        await rebuild(database_url, projection, batch_size=60)
    await writer
    await wait_until_caught_up(pool)
    stop.set()
    await projector
    await check_against_log(pool)


async def test_concurrent_rebuilds_rejected(pool: Pool, database_url: str) -> None:
    """A second rebuild of the same projection stops with a clear error."""
    holder = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await holder.execute(
            "SELECT pg_advisory_lock(%s, hashtext('topic_stats'))", (0x5E5_0040,)
        )
        with pytest.raises(RebuildError, match="another rebuild of 'topic_stats'"):
            await rebuild(database_url, PROJECTIONS["topic_stats"], batch_size=10)
    finally:
        await holder.close()


class CrashAfterApply:
    """Applies a batch, then fails before the transaction commits."""

    def __init__(self, inner: Projection, terminate: bool) -> None:
        self.inner = inner
        self.terminate = terminate
        self.name = inner.name
        self.tables = inner.tables

    async def apply(
        self, conn: Connection, events: Sequence[StoredEvent], tables: Tables
    ) -> None:
        await self.inner.apply(conn, events, tables)
        if self.terminate:
            # The server ends the session, as when the process is killed mid-batch.
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        raise RuntimeError("crash between read and commit")


@pytest.mark.parametrize("terminate", [False, True])
async def test_crash_mid_batch_does_not_double_count(
    pool: Pool, terminate: bool
) -> None:
    """A batch that dies before its commit leaves no trace; the next one counts once."""
    history = make_history(13, emails=120)
    await append_all(pool, interleave(history), history.rng)
    for projection in PROJECTIONS.values():
        crashing = CrashAfterApply(projection, terminate)
        for _ in range(3):
            with pytest.raises((RuntimeError, psycopg.OperationalError)):
                async with pool.connection() as conn:
                    await run_batch(conn, crashing, 100)
    await project_all(pool, batch_size=100)
    await check_against_log(pool)


async def test_two_projectors_do_not_double_count(pool: Pool, database_url: str) -> None:
    """Two projectors with their own connections, running at once, count each event once."""
    history = make_history(14, emails=400)
    events = interleave(history)
    other_pool = await open_pool(database_url, name="second", min_size=1, max_size=4)
    stop = asyncio.Event()
    options = RunnerOptions(batch_size=25, poll_interval=0.1)
    applied: list[tuple[str, int]] = []
    batches = {"first": 0, "second": 0}

    def recorder(runner: str) -> Any:
        def record(name: str, batch: Any) -> None:
            batches[runner] += 1
            applied.extend((name, event.position) for event in batch.events)

        return record

    try:
        first = asyncio.create_task(
            run_projector(pool, database_url, options, stop, on_batch=recorder("first"))
        )
        second = asyncio.create_task(
            run_projector(other_pool, database_url, options, stop, on_batch=recorder("second"))
        )
        await append_all(pool, events, history.rng)
        await wait_until_caught_up(pool)
        stop.set()
        await asyncio.gather(first, second)
    finally:
        await other_pool.close()
    assert batches["first"] > 0
    assert batches["second"] > 0
    assert len(applied) == len(set(applied)) == len(events) * len(PROJECTIONS)
    await check_against_log(pool)


async def test_projector_recovers_from_lost_connections(pool: Pool, database_url: str) -> None:
    """After every connection is cut, as in a database restart, the projector carries on."""
    history = make_history(15, emails=120)
    events = interleave(history)
    projector_pool = await open_pool(database_url, name="projector", min_size=1, max_size=4)
    stop = asyncio.Event()
    options = RunnerOptions(batch_size=50, poll_interval=0.2)
    projector = asyncio.create_task(run_projector(projector_pool, database_url, options, stop))
    try:
        await append_all(pool, events[: len(events) // 2], history.rng)
        await wait_until_caught_up(pool)
        async with pool.connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        await append_all(pool, events[len(events) // 2 :], history.rng)
        await wait_until_caught_up(pool)
    finally:
        stop.set()
        await projector
        await projector_pool.close()
    await check_against_log(pool)


async def test_lag_gauges_follow_the_projection(pool: Pool) -> None:
    """The Prometheus lag gauges show the backlog, then zero once it is applied."""
    from projections.runner import ProjectionRunner
    from service.metrics import REGISTRY

    history = make_history(16, emails=30)
    events = interleave(history)
    await append_all(pool, events, history.rng)
    runner = ProjectionRunner(
        pool, PROJECTIONS["hourly_counts"], RunnerOptions(batch_size=10, lag_interval=0)
    )
    await runner.step()
    behind = REGISTRY.get_sample_value(
        "ses_sender_projection_lag_events", {"projection": "hourly_counts"}
    )
    assert behind == len(events) - 10
    for _ in range(len(events) // 10 + 1):
        await runner.step()
    assert REGISTRY.get_sample_value(
        "ses_sender_projection_lag_events", {"projection": "hourly_counts"}
    ) == 0
    assert REGISTRY.get_sample_value(
        "ses_sender_projection_lag_seconds", {"projection": "hourly_counts"}
    ) == 0
