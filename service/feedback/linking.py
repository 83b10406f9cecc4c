"""Linking feedback to the email it is about, and holding it until the send is recorded.

Feedback names an SES message id (`mail.messageId`) and, when the send carried it, the
request id tag. An email is found by its recorded SES message id first, then by the tag.
Feedback that matches no recorded send is held (a FeedbackHeld event plus a `held_feedback`
row); `link_held_feedback` appends it to the email's stream once EmailSent is recorded.

Both sides take a transaction-scoped advisory lock on the SES message id before they decide,
so feedback that arrives while its send is being recorded is either seen by the linking
transaction or finds the recorded send, never neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import (
    CATALOG,
    EmailBounced,
    EmailSent,
    Event,
    FeedbackHeld,
    decode,
)
from service.feedback.status import next_status, status_of
from service.logging import get_logger
from service.metrics import FEEDBACK
from service.tracking.record import mark_reported_engagements

log = get_logger(__name__)

Connection = AsyncConnection[tuple[Any, ...]]


@dataclass(frozen=True)
class LinkedEmail:
    request_id: str
    topic_id: str
    feedback_status: str | None


_BY_SES_MESSAGE_ID = """
SELECT request_id::text, topic_id, feedback_status
FROM emails
WHERE ses_message_id = %s
FOR UPDATE
"""

_BY_REQUEST_ID = """
SELECT request_id::text, topic_id, feedback_status, status, ses_message_id, attempt
FROM emails
WHERE request_id = %s
FOR UPDATE
"""


async def find_emails(conn: Connection, ses_message_ids: Sequence[str]) -> dict[str, LinkedEmail]:
    """Find and lock the emails with these recorded SES message ids, keyed by that id."""
    # Locking in request_id order keeps two concurrent batches from deadlocking each other.
    cursor = await conn.execute(
        """
        SELECT ses_message_id, request_id::text, topic_id, feedback_status
        FROM emails
        WHERE ses_message_id = ANY(%s)
        ORDER BY request_id
        FOR UPDATE
        """,
        (list(ses_message_ids),),
    )
    return {row[0]: LinkedEmail(row[1], row[2], row[3]) for row in await cursor.fetchall()}


def held_stream(ses_message_id: str) -> str:
    return f"ses:{ses_message_id}"


async def lock_ses_message_id(conn: Connection, ses_message_id: str) -> None:
    """Serialize, until commit, every transaction that links or holds feedback for this id."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (held_stream(ses_message_id),)
    )


async def lock_held(conn: Connection, ses_message_ids: Sequence[str]) -> set[str]:
    """Lock every id as `lock_ses_message_id` does; return those with feedback held.

    For a batch of sends, two round trips in all instead of two per send. The ids are
    locked in one statement and looked up in the next, whose snapshot is taken once the
    locks are held, so feedback held until then is seen and none can be held after.
    """
    if not ses_message_ids:
        return set()
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(stream, 0))"
        " FROM unnest(%s::text[]) AS s(stream) ORDER BY stream",
        ([held_stream(ses_message_id) for ses_message_id in ses_message_ids],),
    )
    cursor = await conn.execute(
        "SELECT DISTINCT ses_message_id FROM held_feedback WHERE ses_message_id = ANY(%s)",
        (list(ses_message_ids),),
    )
    return {str(row[0]) for row in await cursor.fetchall()}


async def find_email(
    conn: Connection, ses_message_id: str, request_tag: str | None
) -> LinkedEmail | None:
    """Find and lock the email feedback is about; resolve an uncertain send it proves sent."""
    cursor = await conn.execute(_BY_SES_MESSAGE_ID, (ses_message_id,))
    row = await cursor.fetchone()
    if row is not None:
        return LinkedEmail(row[0], row[1], row[2])
    if request_tag is None or not _is_uuid(request_tag):
        return None
    cursor = await conn.execute(_BY_REQUEST_ID, (request_tag,))
    row = await cursor.fetchone()
    if row is None:
        return None
    email = LinkedEmail(row[0], row[1], row[2])
    status, recorded_id, attempt = row[3], row[4], row[5]
    if status == "uncertain":
        await _resolve_uncertain(conn, email, ses_message_id, attempt)
        return email
    if recorded_id is None:
        # Its send is not recorded yet (the dispatcher may be recording it right now): hold.
        return None
    log.warning(
        "feedback_ses_message_id_mismatch",
        request_id=email.request_id,
        ses_message_id=ses_message_id,
        recorded_ses_message_id=recorded_id,
    )
    return email


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def _resolve_uncertain(
    conn: Connection, email: LinkedEmail, ses_message_id: str, attempt: int
) -> None:
    # Feedback with this request's tag proves SES accepted the send its dispatcher lost.
    sent = EmailSent(
        request_id=email.request_id,
        topic_id=email.topic_id,
        ses_message_id=ses_message_id,
        attempt=attempt,
    )
    await append(conn, [NewEvent(email.request_id, sent)])
    await conn.execute(
        """
        UPDATE emails
        SET status = 'sent', ses_message_id = %s, due_at = NULL, lease_until = NULL,
            claimed_by = NULL, updated_at = now()
        WHERE request_id = %s
        """,
        (ses_message_id, email.request_id),
    )
    log.info(
        "send_uncertain_resolved",
        request_id=email.request_id,
        topic_id=email.topic_id,
        ses_message_id=ses_message_id,
    )
    await link_held_feedback(conn, email.request_id, email.topic_id, ses_message_id)


def build_event(
    event_type: str, fields: dict[str, Any], request_id: str, topic_id: str | None
) -> Event:
    """Complete a feedback event's fields with the request it belongs to."""
    values = fields | {"request_id": request_id, "topic_id": topic_id}
    event: Event = msgspec.convert(values, CATALOG[event_type])
    return event


def fold_status(current: str | None, events: Sequence[Event]) -> str | None:
    """Return the feedback status after `events`, starting from `current`."""
    status = current
    for event in events:
        hard = isinstance(event, EmailBounced) and event.hard
        status = next_status(status, status_of(event.type_name, hard_bounce=hard))
    return status


async def apply_feedback_status(
    conn: Connection, email: LinkedEmail, events: Sequence[Event]
) -> str | None:
    """Fold `events` into the email's feedback status and store it when it changed."""
    status = fold_status(email.feedback_status, events)
    if status != email.feedback_status:
        await conn.execute(
            "UPDATE emails SET feedback_status = %s, updated_at = now() WHERE request_id = %s",
            (status, email.request_id),
        )
    return status


async def hold_feedback(
    conn: Connection, ses_message_id: str, held: Sequence[tuple[FeedbackHeld, datetime | None, str]]
) -> list[int | None]:
    """Append FeedbackHeld events (event, occurred_at, dedupe key) and index the new ones."""
    stream = held_stream(ses_message_id)
    positions = await append(
        conn, [NewEvent(stream, event, occurred, key) for event, occurred, key in held]
    )
    new = [p for p in positions if p is not None]
    if new:
        await conn.execute(
            "INSERT INTO held_feedback (position, ses_message_id) SELECT unnest(%s::bigint[]), %s",
            (new, ses_message_id),
        )
    return positions


_TAKE_HELD = """
WITH taken AS (
    DELETE FROM held_feedback WHERE ses_message_id = %s RETURNING position
)
SELECT e.position, e.data::text, e.occurred_at
FROM events e JOIN taken USING (position)
ORDER BY e.position
"""


async def link_held_feedback(
    conn: Connection, request_id: str, topic_id: str, ses_message_id: str
) -> int:
    """Append the feedback held for `ses_message_id` to the email's stream; return how many.

    The dispatcher calls this in the transaction that records EmailSent (after setting
    `emails.ses_message_id`), so early feedback and the send commit together. Feedback
    statuses are applied; suppressions were applied when the feedback arrived.
    """
    await lock_ses_message_id(conn, ses_message_id)
    cursor = await conn.execute(_TAKE_HELD, (ses_message_id,))
    rows = await cursor.fetchall()
    if not rows:
        return 0
    linked: list[NewEvent] = []
    for position, data, occurred_at in rows:
        held = decode(FeedbackHeld.type_name, data)
        assert isinstance(held, FeedbackHeld)
        event = build_event(held.event_type, held.fields, request_id, topic_id)
        # The held event's position keeps this append idempotent, like the SNS dedupe key.
        linked.append(NewEvent(request_id, event, occurred_at, f"held:{position}"))
        FEEDBACK.labels(type=held.ses_type or held.event_type, outcome="linked").inc()
    # No tracking key here: a held click keeps the link SES reported when checked for a
    # duplicate. Held feedback predates its send record, so a tracked click on it is unlikely.
    linked = await mark_reported_engagements(conn, linked, None)
    positions = await append(conn, linked)
    cursor = await conn.execute(
        "SELECT feedback_status FROM emails WHERE request_id = %s FOR UPDATE", (request_id,)
    )
    row = await cursor.fetchone()
    email = LinkedEmail(request_id, topic_id, row[0] if row else None)
    new_events = [n.event for n, p in zip(linked, positions, strict=True) if p is not None]
    if row is not None:
        await apply_feedback_status(conn, email, new_events)
    log.info(
        "feedback_linked", request_id=request_id, ses_message_id=ses_message_id, count=len(rows)
    )
    return len(new_events)
