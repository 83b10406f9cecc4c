"""Rows and events that tracking tests need: an email that was sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailSent


async def insert_sent_email(
    conn: AsyncConnection[tuple[object, ...]],
    *,
    topic_id: str = "newsletter",
    recipient: str = "reader@example.com",
    sent_at: datetime | None = None,
) -> str:
    """Insert an `emails` row in status sent and its EmailSent event; return the request id."""
    request_id = str(uuid.uuid4())
    await conn.execute(
        """
        INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,
                            status, attempt, ses_message_id)
        VALUES (%s, %s, 0, %s, %s, 'sent', 1, %s)
        """,
        (request_id, str(uuid.uuid4()), topic_id, recipient, f"ses-{request_id}"),
    )
    sent = EmailSent(
        request_id=request_id, topic_id=topic_id, ses_message_id=f"ses-{request_id}", attempt=1
    )
    await append(conn, [NewEvent(request_id, sent, sent_at or datetime(2026, 1, 1, tzinfo=UTC))])
    return request_id
