"""One email's current state (from `emails`) and its event timeline (from the log)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from service.events.store import StoredEvent, read_stream
from service.events.types import UnknownEvent
from service.sending.errors import EmailNotFound
from service.sending.payloads import EmailStatus, TimelineEvent

_EMAIL = """
SELECT message_id, topic_id, recipient, status, due_at, attempt, ses_message_id,
       created_at, updated_at
FROM emails
WHERE request_id = %s
"""


async def email_status(
    conn: AsyncConnection[tuple[object, ...]], request_id: uuid.UUID
) -> EmailStatus:
    """Return the email's status and timeline; raise EmailNotFound for an unknown id."""
    cursor = await conn.execute(_EMAIL, (request_id,))
    row = await cursor.fetchone()
    if row is None:
        raise EmailNotFound(f"No email has request id {request_id}.", "requestId")
    message_id, topic_id, recipient, status, due_at, attempt, ses_id, created, updated = row
    events = await read_stream(conn, str(request_id))
    return EmailStatus(
        request_id=str(request_id),
        message_id=str(message_id),
        topic_id=str(topic_id),
        recipient=str(recipient),
        status=str(status),
        due_at=due_at,  # type: ignore[arg-type]
        attempt=int(attempt),  # type: ignore[call-overload]
        ses_message_id=None if ses_id is None else str(ses_id),
        created_at=created,  # type: ignore[arg-type]
        updated_at=updated,  # type: ignore[arg-type]
        events=[_timeline_event(event) for event in events],
    )


def _timeline_event(stored: StoredEvent) -> TimelineEvent:
    data: dict[str, Any]
    if isinstance(stored.event, UnknownEvent):
        data = msgspec.json.decode(stored.event.data)
    else:
        data = msgspec.to_builtins(stored.event)
    return TimelineEvent(
        position=stored.position,
        type=stored.type_name,
        occurred_at=stored.occurred_at,
        recorded_at=stored.recorded_at,
        data=data,
    )
