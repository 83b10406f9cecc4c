"""Rebuilding a projection from the start of the log while the service keeps running.

The events are replayed into shadow copies of the projection's tables (`<table>__rebuild`)
while the live tables keep being updated and served. Once the replay has caught up, one
transaction locks the live checkpoint (pausing the live projectors of this projection for a
moment), applies the last few events, replaces the live rows with the shadow rows and moves
the checkpoint. Readers see the old rows until that commit and the new ones after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from projections.base import Connection, Projection, Tables
from projections.checkpoints import apply_after, lock_checkpoint
from service.errors import ServiceError
from service.events.store import Checkpoint, read_after
from service.logging import get_logger

log = get_logger(__name__)

Progress = Callable[[int], None]
"""Called with the number of events each batch applied."""

# Identifies rebuild locks among the database's advisory locks; the second key is the
# projection's name hashed by PostgreSQL.
_REBUILD_LOCK_CLASS = 0x5E5_0040

_COUNT_EVENTS = "SELECT count(*) FROM events"

# pg_get_indexdef returns "CREATE UNIQUE INDEX name ON table USING btree (columns) ...".
_UNIQUE_INDEXES = """
SELECT pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = %s::regclass AND indisunique
"""

_MOVE = """
UPDATE projection_checkpoints
SET xact_id = %s::text::xid8, position = %s, events_applied = %s, updated_at = now()
WHERE projection = %s
"""


class RebuildError(ServiceError):
    """A rebuild could not start or finish; the live tables are unchanged."""


@dataclass(frozen=True)
class RebuildResult:
    projection: str
    events: int
    checkpoint: Checkpoint


async def count_events(conn: Connection) -> int:
    cursor = await conn.execute(_COUNT_EVENTS)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


async def rebuild(
    url: str, projection: Projection, batch_size: int, progress: Progress | None = None
) -> RebuildResult:
    """Replay the whole log into `projection`'s tables and swap the result in."""
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as reader,
    ):
        await _take_rebuild_lock(conn, projection.name)
        shadow = Tables.shadow(projection.tables)
        try:
            await _create_shadow_tables(conn, projection)
            checkpoint, applied = await _replay(
                conn, reader, projection, shadow, batch_size, progress
            )
            checkpoint, applied = await _swap(
                conn, projection, shadow, checkpoint, applied, batch_size, progress
            )
        finally:
            await _drop_shadow_tables(conn, projection)
    log.info(
        "projection_rebuilt",
        projection=projection.name,
        events=applied,
        position=checkpoint.position,
    )
    return RebuildResult(projection.name, applied, checkpoint)


async def _take_rebuild_lock(conn: Connection, name: str) -> None:
    # A session lock: released when this connection closes, also when the process dies.
    cursor = await conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_REBUILD_LOCK_CLASS, name)
    )
    row = await cursor.fetchone()
    if not row or not row[0]:
        raise RebuildError(
            f"another rebuild of {name!r} is running; wait for it to finish and try again"
        )


async def _create_shadow_tables(conn: Connection, projection: Projection) -> None:
    for table in projection.tables:
        shadow = sql.Identifier(Tables.shadow([table]).names[table])
        await conn.execute(
            sql.SQL(
                "DROP TABLE IF EXISTS {shadow}; "
                "CREATE UNLOGGED TABLE {shadow} (LIKE {live} INCLUDING DEFAULTS)"
            ).format(shadow=shadow, live=sql.Identifier(table))
        )
        # Only the unique indexes, which the upserts need: the others would slow every
        # batch down, and the live table maintains its own when the rows are copied over.
        cursor = await conn.execute(_UNIQUE_INDEXES, (table,))
        for (definition,) in await cursor.fetchall():
            method_and_columns = str(definition).split(" USING ", 1)[1]
            await conn.execute(
                sql.SQL("CREATE UNIQUE INDEX ON {shadow} USING {rest}").format(
                    shadow=shadow, rest=sql.SQL(method_and_columns)
                )
            )


async def _drop_shadow_tables(conn: Connection, projection: Projection) -> None:
    if conn.closed:
        return
    for table in projection.tables:
        shadow = Tables.shadow([table]).names[table]
        await conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(shadow))
        )


async def _replay(
    conn: Connection,
    reader: Connection,
    projection: Projection,
    shadow: Tables,
    batch_size: int,
    progress: Progress | None,
) -> tuple[Checkpoint, int]:
    """Apply batches to the shadow tables, one transaction each, until the log is read.

    The next batch is read on a second connection while the current one is applied, so the
    database reads and writes in parallel.
    """
    checkpoint = Checkpoint()
    applied = 0
    upcoming = asyncio.create_task(read_after(reader, checkpoint, batch_size))
    try:
        while True:
            events = await upcoming
            if len(events) == batch_size:
                upcoming = asyncio.create_task(
                    read_after(reader, events[-1].checkpoint, batch_size)
                )
            if events:
                async with conn.transaction():
                    await projection.apply(conn, events, shadow)
                checkpoint = events[-1].checkpoint
                applied += len(events)
                if progress is not None:
                    progress(len(events))
            if len(events) < batch_size:
                return checkpoint, applied
    finally:
        if not upcoming.done():
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await upcoming


async def _swap(
    conn: Connection,
    projection: Projection,
    shadow: Tables,
    checkpoint: Checkpoint,
    applied: int,
    batch_size: int,
    progress: Progress | None,
) -> tuple[Checkpoint, int]:
    """Catch up and replace the live rows with the shadow rows in one transaction."""
    async with conn.transaction():
        # Waits for a live projector's batch in flight; the live ones skip this projection
        # until the commit.
        await lock_checkpoint(conn, projection.name, wait=True)
        while True:
            batch = await apply_after(conn, projection, shadow, checkpoint, batch_size)
            checkpoint = batch.after
            applied += len(batch.events)
            if progress is not None and batch.events:
                progress(len(batch.events))
            if len(batch.events) < batch_size:
                break
        for table in projection.tables:
            await conn.execute(
                sql.SQL("DELETE FROM {live}; INSERT INTO {live} SELECT * FROM {shadow}")
                .format(
                    live=sql.Identifier(table),
                    shadow=sql.Identifier(shadow.names[table]),
                )
            )
        await conn.execute(
            _MOVE, (str(checkpoint.xact_id), checkpoint.position, applied, projection.name)
        )
    return checkpoint, applied
