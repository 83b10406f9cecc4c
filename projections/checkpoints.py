"""Applying one batch: lock the checkpoint, read after it, apply, move it, all in one commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from projections.base import Connection, Projection, Tables
from service.events.store import Checkpoint, StoredEvent, read_after

# The row lock is what makes an event count once: a second projector waits for (or skips)
# the first one's batch and then reads the checkpoint that batch committed. A process that
# dies mid-batch loses its connection, PostgreSQL rolls the batch back and releases the lock.
_LOCK = """
SELECT xact_id::text::bigint, position FROM projection_checkpoints
WHERE projection = %s
FOR UPDATE {skip}
"""

_EXISTS = "SELECT 1 FROM projection_checkpoints WHERE projection = %s"

_MOVE = """
UPDATE projection_checkpoints
SET xact_id = %s::text::xid8, position = %s, events_applied = events_applied + %s,
    updated_at = now()
WHERE projection = %s
"""


@dataclass(frozen=True)
class Batch:
    """One applied batch: its events and the checkpoint before them."""

    before: Checkpoint
    events: Sequence[StoredEvent]

    @property
    def after(self) -> Checkpoint:
        return self.events[-1].checkpoint if self.events else self.before


class CheckpointMissing(LookupError):
    """The projection has no checkpoint row: the migrations that add it were not applied."""


async def lock_checkpoint(conn: Connection, name: str, *, wait: bool) -> Checkpoint | None:
    """Lock the projection's checkpoint row in the current transaction and return it.

    Returns None when another transaction has locked it and `wait` is false.
    """
    query = _LOCK.format(skip="" if wait else "SKIP LOCKED")
    cursor = await conn.execute(query, (name,))
    row = await cursor.fetchone()
    if row is not None:
        return Checkpoint(int(row[0]), int(row[1]))  # type: ignore[call-overload]
    exists = await conn.execute(_EXISTS, (name,))
    if await exists.fetchone() is None:
        raise CheckpointMissing(
            f"projection {name!r} has no checkpoint row; run `ses-sender migrate`"
        )
    return None


async def move_checkpoint(conn: Connection, name: str, batch: Batch) -> None:
    after = batch.after
    await conn.execute(_MOVE, (str(after.xact_id), after.position, len(batch.events), name))


async def apply_after(
    conn: Connection, projection: Projection, tables: Tables, before: Checkpoint, limit: int
) -> Batch:
    """Read up to `limit` events after `before` and apply them to `tables`."""
    events = await read_after(conn, before, limit)
    if events:
        await projection.apply(conn, events, tables)
    return Batch(before, events)


async def run_batch(
    conn: Connection, projection: Projection, limit: int, *, wait: bool = False
) -> Batch | None:
    """Apply the next batch to the live tables in one transaction.

    Returns None when another projector is applying a batch of this projection right now.
    """
    async with conn.transaction():
        before = await lock_checkpoint(conn, projection.name, wait=wait)
        if before is None:
            return None
        batch = await apply_after(conn, projection, Tables.live(projection.tables), before, limit)
        if batch.events:
            await move_checkpoint(conn, projection.name, batch)
    return batch
