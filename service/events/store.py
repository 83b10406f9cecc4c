"""Appending to and reading from the `events` table.

Appends run inside the caller's transaction, so the tables kept next to the log (the due
queue, the suppression list) change in the same commit as the events that change them.
Readers follow the log with a Checkpoint; see sql/001_event_store.sql for why the read
order is (xact_id, position) and why that never skips an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection

from service.errors import EventDecodeError
from service.events.types import Event, UnknownEvent, decode, encode

NOTIFY_CHANNEL = "events"


@dataclass(frozen=True)
class NewEvent:
    """An event to append. `dedupe_key` marks events that may arrive twice from outside."""

    stream: str
    event: Event
    occurred_at: datetime | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A reader's place in the log: everything up to and including this pair has been read."""

    xact_id: int = 0
    position: int = 0


@dataclass(frozen=True)
class StoredEvent:
    position: int
    xact_id: int
    stream: str
    type_name: str
    event: Event | UnknownEvent
    occurred_at: datetime
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.xact_id, self.position)


# unnest keeps the batch to one statement and one round trip; ORDER BY ord makes positions
# follow the batch order. A dedupe key already present is skipped, not an error.
_APPEND = """
INSERT INTO events (stream, type, data, occurred_at, dedupe_key)
SELECT stream, type, data, occurred_at, dedupe_key
FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::timestamptz[], %s::text[])
     WITH ORDINALITY AS batch (stream, type, data, occurred_at, dedupe_key, ord)
ORDER BY ord
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
RETURNING position, dedupe_key
"""

# Only transactions older than every running one are read: see sql/001_event_store.sql.
_READ = """
SELECT position, xact_id::text::bigint, stream, type, data::text, occurred_at, recorded_at
FROM events
WHERE (xact_id, position) > (%s::text::xid8, %s)
  AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id, position
LIMIT %s
"""

_READ_STREAM = """
SELECT position, xact_id::text::bigint, stream, type, data::text, occurred_at, recorded_at
FROM events
WHERE stream = %s
ORDER BY position
"""


async def append(
    conn: AsyncConnection[tuple[object, ...]], events: Sequence[NewEvent]
) -> list[int | None]:
    """Append `events` in order and NOTIFY listeners once when the transaction commits.

    Returns each event's position, or None for an event whose dedupe key was already recorded.
    Call it inside a transaction together with whatever else must change atomically.
    """
    if not events:
        return []
    now = datetime.now(UTC)
    cursor = await conn.execute(
        _APPEND,
        (
            [e.stream for e in events],
            [e.event.type_name for e in events],
            [encode(e.event).decode() for e in events],
            [e.occurred_at or now for e in events],
            [e.dedupe_key for e in events],
        ),
    )
    rows = await cursor.fetchall()
    # PostgreSQL folds identical notifications of one transaction into one, so several
    # appends in one transaction still wake each listener once.
    await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return _match_positions(events, rows)


def _match_positions(
    events: Sequence[NewEvent], rows: Sequence[tuple[object, ...]]
) -> list[int | None]:
    # Inserted rows got ascending positions in batch order; skipped ones are absent.
    inserted_keys = {row[1] for row in rows if row[1] is not None}
    positions = iter(sorted(int(row[0]) for row in rows))  # type: ignore[call-overload]
    result: list[int | None] = []
    for event in events:
        key = event.dedupe_key
        if key is None or key in inserted_keys:
            result.append(next(positions))
            # A key repeated inside one batch is inserted once, for its first occurrence.
            inserted_keys.discard(key)
        else:
            result.append(None)
    return result


def _stored(row: tuple[object, ...]) -> StoredEvent:
    position, xact_id, stream, type_name, data, occurred_at, recorded_at = row
    assert isinstance(position, int)
    assert isinstance(type_name, str)
    assert isinstance(data, str)
    try:
        event = decode(type_name, data)
    except Exception as error:
        raise EventDecodeError(type_name, position, error) from error
    return StoredEvent(
        position=position,
        xact_id=int(xact_id),  # type: ignore[call-overload]
        stream=str(stream),
        type_name=type_name,
        event=event,
        occurred_at=occurred_at,  # type: ignore[arg-type]
        recorded_at=recorded_at,  # type: ignore[arg-type]
    )


async def read_after(
    conn: AsyncConnection[tuple[object, ...]], after: Checkpoint, limit: int = 1000
) -> list[StoredEvent]:
    """Return up to `limit` committed events after `after`, in read order.

    An event whose transaction is still running, or younger than one still running, is
    not returned yet. A later call returns it, after everything before it.
    """
    cursor = await conn.execute(_READ, (str(after.xact_id), after.position, limit))
    return [_stored(row) for row in await cursor.fetchall()]


async def read_stream(
    conn: AsyncConnection[tuple[object, ...]], stream: str
) -> list[StoredEvent]:
    """Return every committed event of one stream in position order."""
    cursor = await conn.execute(_READ_STREAM, (stream,))
    return [_stored(row) for row in await cursor.fetchall()]
