"""Recording what happened to claimed emails: events and `emails` rows, one transaction a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection

from service.dispatch import queue
from service.dispatch.outcomes import FailureKind
from service.events.store import NewEvent, append
from service.events.types import EmailSendFailed, EmailSent, EmailSuppressed, Event
from service.feedback.linking import link_held_feedback, lock_held

Connection = AsyncConnection[tuple[object, ...]]


@dataclass(frozen=True)
class Sent:
    request_id: str
    topic_id: str
    attempt: int
    ses_message_id: str
    started_at: float | None = None
    """When the request left for SES (time.time()): the event's occurred_at, and in the log."""


@dataclass(frozen=True)
class Failed:
    """A failed attempt; `retry_at` None means the email failed for good."""

    request_id: str
    topic_id: str
    attempt: int
    kind: FailureKind
    code: str
    message: str
    retry_at: datetime | None


@dataclass(frozen=True)
class Suppressed:
    request_id: str
    topic_id: str
    attempt: int
    recipient: str
    reason: str


@dataclass(frozen=True)
class Released:
    """An email that was not sent. Its claim is given back, and it is due again at `due_at`
    (None: now). No event is written, as nothing happened to the email."""

    request_id: str
    due_at: datetime | None


Result = Sent | Failed | Suppressed

# Only the claim this dispatcher still holds is updated. A claim that expired meanwhile
# (status uncertain) is resolved by the result, because the result is what happened.
_UPDATE = """
UPDATE emails AS e
SET status = b.status,
    due_at = b.due_at,
    ses_message_id = coalesce(b.ses_message_id, e.ses_message_id),
    transient_failures = e.transient_failures + b.transient,
    lease_until = NULL,
    updated_at = now()
FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::timestamptz[], %s::text[], %s::int[])
     AS b (request_id, attempt, status, due_at, ses_message_id, transient)
WHERE e.request_id = b.request_id
  AND e.attempt = b.attempt
  AND e.status IN ('sending', 'uncertain')
  AND e.claimed_by = %s
"""


def _event(result: Result) -> Event:
    if isinstance(result, Sent):
        return EmailSent(
            request_id=result.request_id,
            topic_id=result.topic_id,
            ses_message_id=result.ses_message_id,
            attempt=result.attempt,
        )
    if isinstance(result, Suppressed):
        return EmailSuppressed(
            request_id=result.request_id,
            topic_id=result.topic_id,
            recipient=result.recipient,
            reason=result.reason,
        )
    return EmailSendFailed(
        request_id=result.request_id,
        topic_id=result.topic_id,
        attempt=result.attempt,
        error_code=result.code,
        error_message=result.message,
        permanent=result.retry_at is None,
        retry_at=result.retry_at,
        kind=result.kind,
    )


def _row(result: Result) -> tuple[str, datetime | None, str | None, int]:
    """(status, due_at, ses_message_id, transient failures to add) for the emails row."""
    if isinstance(result, Sent):
        return "sent", None, result.ses_message_id, 0
    if isinstance(result, Suppressed):
        return "suppressed", None, None, 0
    transient = 1 if result.kind == "transient" else 0
    if result.retry_at is None:
        return "failed", None, None, transient
    return "queued", result.retry_at, None, transient


def _new_event(result: Result) -> NewEvent:
    event = _event(result)
    # A batch whose COMMIT succeeded but whose response was lost with the connection is
    # written again; the key makes the second copy of each event a no-op.
    key = f"dispatch:{event.type_name}:{result.request_id}:{result.attempt}"
    # A send happened when its request left for SES, the moment the rate rule counts. The
    # event is stored a few milliseconds later.
    occurred_at = None
    if isinstance(result, Sent) and result.started_at is not None:
        occurred_at = datetime.fromtimestamp(result.started_at, UTC)
    return NewEvent(result.request_id, event, occurred_at=occurred_at, dedupe_key=key)


async def record(
    conn: Connection, dispatcher: str, outcomes: Sequence[Result | Released]
) -> None:
    """Append one event per result, update the emails rows and give back released claims,
    in one transaction."""
    results = [r for r in outcomes if not isinstance(r, Released)]
    released = [r for r in outcomes if isinstance(r, Released)]
    async with conn.transaction():
        await queue.release(conn, dispatcher, [(r.request_id, r.due_at) for r in released])
        if results:
            await _record_results(conn, dispatcher, results)


async def _record_results(conn: Connection, dispatcher: str, results: Sequence[Result]) -> None:
    rows = [_row(result) for result in results]
    await append(conn, [_new_event(r) for r in results])
    await conn.execute(
        _UPDATE,
        (
            [r.request_id for r in results],
            [r.attempt for r in results],
            [row[0] for row in rows],
            [row[1] for row in rows],
            [row[2] for row in rows],
            [row[3] for row in rows],
            dispatcher,
        ),
    )
    # Feedback that arrived before its send was recorded is linked in the same commit.
    sent = [result for result in results if isinstance(result, Sent)]
    held = await lock_held(conn, [result.ses_message_id for result in sent])
    for result in sent:
        if result.ses_message_id in held:
            await link_held_feedback(
                conn, result.request_id, result.topic_id, result.ses_message_id
            )
