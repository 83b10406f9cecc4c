"""How far each projection is behind the head of the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from projections.base import Connection
from service.metrics import PROJECTION_LAG_EVENTS, PROJECTION_LAG_SECONDS

# Unapplied events are those after the checkpoint in read order. The first of them in that
# order approximates the oldest (transaction ids are assigned at the first write, not at the
# start), and the (xact_id, position) index finds it without a scan.
_STATUS = """
SELECT c.projection, c.xact_id::text::bigint, c.position, c.events_applied, c.updated_at,
       (SELECT count(*) FROM events e
        WHERE (e.xact_id, e.position) > (c.xact_id, c.position)),
       (SELECT extract(epoch FROM now() - e.recorded_at) FROM events e
        WHERE (e.xact_id, e.position) > (c.xact_id, c.position)
        ORDER BY e.xact_id, e.position LIMIT 1)
FROM projection_checkpoints c
WHERE c.projection = ANY(%s)
ORDER BY array_position(%s, c.projection)
"""

_HEAD = """
SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1
"""


@dataclass(frozen=True)
class ProjectionStatus:
    projection: str
    xact_id: int
    position: int
    events_applied: int
    updated_at: datetime
    lag_events: int
    lag_seconds: float


@dataclass(frozen=True)
class Head:
    """The newest event in the log: its position and when it was recorded."""

    position: int
    recorded_at: datetime | None


async def projection_status(conn: Connection, names: list[str]) -> list[ProjectionStatus]:
    cursor = await conn.execute(_STATUS, (names, names))
    return [
        ProjectionStatus(
            projection=str(name),
            xact_id=int(xact_id),  # type: ignore[call-overload]
            position=int(position),  # type: ignore[call-overload]
            events_applied=int(applied),  # type: ignore[call-overload]
            updated_at=updated,  # type: ignore[arg-type]
            lag_events=int(lag_events),  # type: ignore[call-overload]
            lag_seconds=max(0.0, float(lag_seconds or 0)),  # type: ignore[arg-type]
        )
        for name, xact_id, position, applied, updated, lag_events, lag_seconds in (
            await cursor.fetchall()
        )
    ]


async def log_head(conn: Connection) -> Head:
    cursor = await conn.execute(_HEAD)
    row = await cursor.fetchone()
    if row is None:
        return Head(0, None)
    return Head(int(row[0]), row[1])  # type: ignore[call-overload, arg-type]


async def record_lag(conn: Connection, names: list[str]) -> list[ProjectionStatus]:
    """Measure the projections' lag and set the Prometheus gauges."""
    statuses = await projection_status(conn, names)
    for status in statuses:
        PROJECTION_LAG_EVENTS.labels(status.projection).set(status.lag_events)
        PROJECTION_LAG_SECONDS.labels(status.projection).set(status.lag_seconds)
    return statuses
