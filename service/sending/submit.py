"""Submission: append a validated batch to the log and the due queue in one transaction.

For each message: one MessageSubmitted (stream = message id) holding the body once, then per
distinct recipient one EmailRequested (stream = request id), an EmailScheduled when its time
lies ahead, and a row in `emails`. A scheduledAt in the past means now: the email is queued
with due_at = the submission time, never dropped.

Besides the event store's NOTIFY on `events`, each submission sends one NOTIFY on
DUE_CHANNEL whose payload is the earliest due_at it wrote (ISO 8601, UTC), so dispatchers can
wake for new due emails without waking on every event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailRequested, EmailScheduled, MessageSubmitted
from service.logging import get_logger
from service.metrics import EMAILS_ACCEPTED
from service.sending import idempotency
from service.sending.errors import Conflict, InvalidRequest
from service.sending.idempotency import IdempotencyKey
from service.sending.payloads import AcceptedEmail, AcceptedMessage, EmailState, SubmitResponse
from service.sending.validation import ValidMessage

log = get_logger(__name__)

DUE_CHANNEL = "email_due"
ACCEPTED_STATUS = 202
_LOGGED_IDS = 10

_decoder = msgspec.json.Decoder(SubmitResponse)


@dataclass(frozen=True)
class Submitted:
    status: int
    response: SubmitResponse
    replayed: bool = False
    """True when an idempotency key matched and the first response was returned."""


@dataclass(frozen=True)
class _Email:
    request_id: uuid.UUID
    message_index: int
    recipient: str


@dataclass(frozen=True)
class _Plan:
    events: list[NewEvent]
    message_event_indexes: list[int]
    """Index of each message's MessageSubmitted event in `events`."""
    emails: list[_Email]
    messages: list[AcceptedMessage]


async def submit(
    conn: AsyncConnection[tuple[object, ...]],
    messages: Sequence[ValidMessage],
    *,
    idempotency_key: IdempotencyKey | None = None,
) -> Submitted:
    """Store `messages` and their emails atomically; return the 202 response.

    Runs in its own transaction (a savepoint when the caller already has one open). If the
    idempotency key was used before with the same body, nothing is written and the first
    response is returned with `replayed` set. If it was used with another body, Conflict
    is raised.
    """
    if not messages:
        raise InvalidRequest("messages is empty: send at least one message.", "messages")
    started = time.perf_counter()
    async with conn.transaction():
        if idempotency_key is not None:
            stored = await idempotency.claim(conn, idempotency_key)
            if stored is not None:
                return _replay(idempotency_key, stored)
        now = await _database_now(conn)
        plan = _plan(messages, now)
        positions = await append(conn, plan.events)
        await _insert_emails(conn, plan, positions)
        earliest = min(message.due_at for message in plan.messages)
        await conn.execute("SELECT pg_notify(%s, %s)", (DUE_CHANNEL, earliest.isoformat()))
        response = SubmitResponse(
            count=len(plan.emails),
            messages=plan.messages,
            elapsed=f"{(time.perf_counter() - started) * 1000:.1f}ms",
        )
        if idempotency_key is not None:
            body = msgspec.json.encode(response)
            await idempotency.store(conn, idempotency_key, ACCEPTED_STATUS, body)
    _record(plan)
    return Submitted(ACCEPTED_STATUS, response)


def _replay(key: IdempotencyKey, stored: idempotency.StoredResponse) -> Submitted:
    if stored.body_hash != key.body_hash:
        raise Conflict(
            f"{idempotency.HEADER} {key.key!r} was already used with a different request "
            f"body; use a new key for a new request.",
            idempotency.HEADER,
        )
    log.info("submission_replayed", idempotency_key=key.key)
    return Submitted(stored.status, _decoder.decode(stored.body), replayed=True)


async def _database_now(conn: AsyncConnection[tuple[object, ...]]) -> datetime:
    # The database clock, which dispatchers compare due_at with, not this host's.
    cursor = await conn.execute("SELECT now()")
    row = await cursor.fetchone()
    assert row is not None
    now = row[0]
    assert isinstance(now, datetime)
    # In UTC whatever the session's TimeZone, so responses and payloads read the same.
    return now.astimezone(UTC)


def _plan(messages: Sequence[ValidMessage], now: datetime) -> _Plan:
    events: list[NewEvent] = []
    indexes: list[int] = []
    emails: list[_Email] = []
    accepted: list[AcceptedMessage] = []
    for message_index, message in enumerate(messages):
        message_id = str(uuid.uuid4())
        # A past (or absent) time means now: the email is queued, never dropped.
        due_at = max(message.scheduled_at or now, now)
        scheduled = due_at > now
        indexes.append(len(events))
        events.append(NewEvent(message_id, _message_event(message_id, message), now))
        requests: list[AcceptedEmail] = []
        for recipient in message.recipients:
            email = _Email(uuid.uuid4(), message_index, recipient)
            emails.append(email)
            requests.append(AcceptedEmail(recipient, str(email.request_id)))
            events.extend(_email_events(email, message_id, message, due_at, now))
        status: EmailState = "scheduled" if scheduled else "queued"
        accepted.append(
            AcceptedMessage(
                message_id, message.topic_id, status, due_at, requests, message.duplicates_removed
            )
        )
    return _Plan(events, indexes, emails, accepted)


def _message_event(message_id: str, message: ValidMessage) -> MessageSubmitted:
    return MessageSubmitted(
        message_id=message_id,
        topic_id=message.topic_id,
        subject=message.subject,
        html=message.html,
        text=message.text,
        reply_to=message.reply_to,
        tags=message.tags,
        track_clicks=message.track_clicks,
        unsubscribe=message.unsubscribe,
        recipient_count=len(message.recipients),
    )


def _email_events(
    email: _Email, message_id: str, message: ValidMessage, due_at: datetime, now: datetime
) -> list[NewEvent]:
    request_id = str(email.request_id)
    requested = EmailRequested(
        request_id=request_id,
        message_id=message_id,
        topic_id=message.topic_id,
        recipient=email.recipient,
        scheduled_at=due_at,
        requested_scheduled_at=message.scheduled_at,
    )
    events = [NewEvent(request_id, requested, now)]
    if due_at > now:
        scheduled = EmailScheduled(
            request_id=request_id, topic_id=message.topic_id, scheduled_at=due_at
        )
        events.append(NewEvent(request_id, scheduled, now))
    return events


# One statement for the whole batch. The arrays go in binary (%b), which psycopg encodes
# many times faster than quoted text arrays.
_INSERT_EMAILS = """
INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient, status, due_at,
                    created_at, updated_at)
SELECT request_id, message_id, message_position, topic_id, recipient, status, due_at,
       now(), now()
FROM unnest(%b::uuid[], %b::uuid[], %b::bigint[], %b::text[], %b::text[], %b::text[],
            %b::timestamptz[])
     AS batch (request_id, message_id, message_position, topic_id, recipient, status, due_at)
"""


async def _insert_emails(
    conn: AsyncConnection[tuple[object, ...]], plan: _Plan, positions: Sequence[int | None]
) -> None:
    message_positions = [positions[index] for index in plan.message_event_indexes]
    messages = [plan.messages[email.message_index] for email in plan.emails]
    await conn.execute(
        _INSERT_EMAILS,
        (
            [email.request_id for email in plan.emails],
            [uuid.UUID(message.message_id) for message in messages],
            [message_positions[email.message_index] for email in plan.emails],
            [message.topic_id for message in messages],
            [email.recipient for email in plan.emails],
            [message.status for message in messages],
            [message.due_at for message in messages],
        ),
    )


def _record(plan: _Plan) -> None:
    for message in plan.messages:
        EMAILS_ACCEPTED.labels(message.status).inc(len(message.requests))
    # Ids of the first few messages only, so a request of thousands stays one short line.
    log.info(
        "messages_submitted",
        messages=len(plan.messages),
        emails=len(plan.emails),
        message_ids=[message.message_id for message in plan.messages[:_LOGGED_IDS]],
        topic_ids=sorted({message.topic_id for message in plan.messages})[:_LOGGED_IDS],
    )
