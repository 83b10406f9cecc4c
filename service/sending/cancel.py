"""Cancellation of emails that have not been sent yet, per request and per topic.

A dispatcher claims rows with `FOR UPDATE SKIP LOCKED` and sets them to 'sending'. Both
functions here lock the rows they cancel and cancel only rows still 'scheduled' or
'queued': a row a dispatcher holds makes them wait until its claim commits, and PostgreSQL
then re-checks the status on the new row version (READ COMMITTED), so a claimed email is
never cancelled and a cancelled one is never claimed.
"""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailCancelled
from service.logging import get_logger
from service.metrics import EMAILS_CANCELLED
from service.sending.errors import Conflict, EmailNotFound, InvalidRequest
from service.sending.validation import shown

log = get_logger(__name__)

UNSENT = ("scheduled", "queued")

_LOCK_ONE = "SELECT status, topic_id FROM emails WHERE request_id = %s FOR UPDATE"

_CANCEL_ONE = """
UPDATE emails SET status = 'cancelled', due_at = NULL, updated_at = now()
WHERE request_id = %s
"""

# Locking in request_id order keeps two concurrent cancels of one topic from deadlocking.
# A row claimed meanwhile fails the status re-check after the wait and is left out.
_CANCEL_TOPIC = """
WITH unsent AS (
    SELECT request_id FROM emails
    WHERE topic_id = %s AND status IN ('scheduled', 'queued')
    ORDER BY request_id
    FOR UPDATE
)
UPDATE emails SET status = 'cancelled', due_at = NULL, updated_at = now()
FROM unsent
WHERE emails.request_id = unsent.request_id
RETURNING emails.request_id
"""


def parse_request_id(value: str, field: str = "requestId") -> uuid.UUID:
    """Parse a request id; raise InvalidRequest naming `field` when it is not a UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest(
            f"{field} {shown(value)} is not a request id: expected a UUID such as "
            f"0b6e1c9e-4a5f-4d3b-9a57-2f6d1e8c4b21, as POST /v1/messages returns.",
            field,
        ) from None


async def cancel_email(conn: AsyncConnection[tuple[object, ...]], request_id: uuid.UUID) -> None:
    """Cancel one email if it is still scheduled or queued.

    Raises EmailNotFound for an unknown id, and Conflict naming the status otherwise.
    """
    async with conn.transaction():
        cursor = await conn.execute(_LOCK_ONE, (request_id,))
        row = await cursor.fetchone()
        if row is None:
            raise EmailNotFound(f"No email has request id {request_id}.", "requestId")
        status, topic_id = str(row[0]), str(row[1])
        if status not in UNSENT:
            raise Conflict(
                f"Email {request_id} is {status}; only scheduled or queued emails can be "
                f"cancelled.",
                "requestId",
            )
        await conn.execute(_CANCEL_ONE, (request_id,))
        event = EmailCancelled(request_id=str(request_id), topic_id=topic_id, scope="request")
        await append(conn, [NewEvent(str(request_id), event)])
    EMAILS_CANCELLED.labels("request").inc()
    log.info("email_cancelled", request_id=str(request_id), topic_id=topic_id, was=status)


async def cancel_topic(conn: AsyncConnection[tuple[object, ...]], topic_id: str) -> int:
    """Cancel every scheduled or queued email of `topic_id`; return how many."""
    async with conn.transaction():
        cursor = await conn.execute(_CANCEL_TOPIC, (topic_id,))
        request_ids = [str(row[0]) for row in await cursor.fetchall()]
        await append(conn, [_topic_cancelled(request_id, topic_id) for request_id in request_ids])
    EMAILS_CANCELLED.labels("topic").inc(len(request_ids))
    log.info("topic_cancelled", topic_id=topic_id, cancelled=len(request_ids))
    return len(request_ids)


def _topic_cancelled(request_id: str, topic_id: str) -> NewEvent:
    event = EmailCancelled(request_id=request_id, topic_id=topic_id, scope="topic")
    return NewEvent(request_id, event)
