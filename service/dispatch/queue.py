"""The due queue in `emails`: claiming due emails, giving claims back, expiring leases.

While an email is `sending`, its `due_at` is the end of its lease (`lease_until`), so the
one `emails_due` index finds both the emails that are due and the claims whose dispatcher
has stopped answering.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailSendUncertain

Connection = AsyncConnection[tuple[object, ...]]



@dataclass(frozen=True)
class ClaimedEmail:
    request_id: str
    message_position: int
    topic_id: str
    recipient: str
    attempt: int
    transient_failures: int
    suppressed: str | None = None
    """The suppression reason when the recipient is on the suppression list."""


# One statement: lock due rows that no other dispatcher holds, and mark them as claimed.
# Scheduled rows are claimable once their time has come. The lease end goes into due_at.
# Recipients are stored normalised (service.addresses), the form `suppressions` keys on, so
# the suppression check is a plain lookup in the same round trip.
CLAIM = """
WITH due AS (
    SELECT request_id
    FROM emails
    WHERE due_at <= now() AND status IN ('queued', 'scheduled')
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE emails AS e
SET status = 'sending',
    attempt = e.attempt + 1,
    claimed_by = %(dispatcher)s,
    lease_until = now() + make_interval(secs => %(lease)s),
    due_at = now() + make_interval(secs => %(lease)s),
    updated_at = now()
FROM due
WHERE e.request_id = due.request_id
RETURNING e.request_id::text, e.message_position, e.topic_id, e.recipient, e.attempt,
          e.transient_failures,
          (SELECT s.reason FROM suppressions AS s WHERE s.address = e.recipient)
"""

# Undoes a claim (and the attempt it counted). A claim that expired meanwhile is left
# uncertain: its EmailSendUncertain is written, and operators decide on a resend.
_RELEASE = """
UPDATE emails AS e
SET status = 'queued', attempt = e.attempt - 1, due_at = coalesce(r.due_at, now()),
    claimed_by = NULL, lease_until = NULL, updated_at = now()
FROM unnest(%(request_ids)s::uuid[], %(due_ats)s::timestamptz[]) AS r (request_id, due_at)
WHERE e.request_id = r.request_id
  AND e.status = 'sending'
  AND e.claimed_by = %(dispatcher)s
"""

# A live dispatcher extends the leases of the claims it still works on (waiting for a slot,
# sending, or recording), so that only a dispatcher that died or lost the database loses them.
_RENEW = """
UPDATE emails
SET lease_until = now() + make_interval(secs => %(lease)s),
    due_at = now() + make_interval(secs => %(lease)s)
WHERE request_id = ANY(%(request_ids)s::uuid[])
  AND status = 'sending' AND claimed_by = %(dispatcher)s
RETURNING request_id::text
"""

# Claims whose lease ran out: their dispatcher died (or lost the database) between the
# claim and recording the result, so SES may or may not have the email.
_EXPIRE = """
WITH expired AS (
    SELECT request_id, updated_at AS claimed_at
    FROM emails
    WHERE due_at <= now() AND status = 'sending'
    ORDER BY due_at
    LIMIT 500
    FOR UPDATE SKIP LOCKED
)
UPDATE emails AS e
SET status = 'uncertain', due_at = NULL, lease_until = NULL, updated_at = now()
FROM expired
WHERE e.request_id = expired.request_id
RETURNING e.request_id::text, e.topic_id, e.attempt, expired.claimed_at, e.claimed_by
"""

# Seconds by the database clock, which due_at is compared with.
_NEXT_DUE = """
SELECT extract(epoch FROM due_at - clock_timestamp())::float8
FROM emails
WHERE due_at IS NOT NULL AND status IN ('queued', 'scheduled', 'sending')
ORDER BY due_at
LIMIT 1
"""


def new_dispatcher_id() -> str:
    return f"dispatcher-{uuid.uuid4().hex[:12]}"


async def claim(
    conn: Connection, dispatcher: str, limit: int, lease_seconds: float = 60.0
) -> list[ClaimedEmail]:
    """Claim up to `limit` due emails for `dispatcher` and commit the claim.

    The lease must outlast the wait for a rate slot plus SES's connect and read timeouts.
    """
    async with conn.transaction():
        cursor = await conn.execute(
            CLAIM, {"limit": limit, "dispatcher": dispatcher, "lease": lease_seconds}
        )
        rows = await cursor.fetchall()
    return [
        ClaimedEmail(str(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]),  # type: ignore[call-overload]
                     None if r[6] is None else str(r[6]))
        for r in rows
    ]


async def release(
    conn: Connection, dispatcher: str, released: Sequence[tuple[str, datetime | None]]
) -> None:
    """Give claimed emails back to the queue unsent: (request id, due at, None for now) pairs.

    Call it inside the caller's transaction.
    """
    if not released:
        return
    await conn.execute(
        _RELEASE,
        {
            "request_ids": [request_id for request_id, _ in released],
            "due_ats": [due_at for _, due_at in released],
            "dispatcher": dispatcher,
        },
    )


async def renew(
    conn: Connection, dispatcher: str, request_ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Extend `dispatcher`'s claims on `request_ids` by `lease_seconds`; return those renewed.

    A claim missing from the result is no longer this dispatcher's (its lease expired).
    """
    if not request_ids:
        return set()
    async with conn.transaction():
        cursor = await conn.execute(
            _RENEW,
            {"request_ids": list(request_ids), "dispatcher": dispatcher, "lease": lease_seconds},
        )
        rows = await cursor.fetchall()
    return {str(row[0]) for row in rows}


async def expire_leases(conn: Connection) -> list[str]:
    """Mark emails whose claim expired as uncertain, with an EmailSendUncertain each."""
    async with conn.transaction():
        cursor = await conn.execute(_EXPIRE)
        rows = await cursor.fetchall()
        events = [
            NewEvent(
                str(request_id),
                EmailSendUncertain(
                    request_id=str(request_id),
                    topic_id=str(topic_id),
                    attempt=int(attempt),  # type: ignore[call-overload]
                    claimed_at=claimed_at,  # type: ignore[arg-type]
                    claimed_by=str(claimed_by) if claimed_by is not None else None,
                ),
            )
            for request_id, topic_id, attempt, claimed_at, claimed_by in rows
        ]
        await append(conn, events)
    return [event.stream for event in events]


async def next_due(conn: Connection) -> float | None:
    """Return the seconds until something in the queue next needs a dispatcher, if anything."""
    async with conn.transaction():
        cursor = await conn.execute(_NEXT_DUE)
        row = await cursor.fetchone()
    if row is None:
        return None
    seconds = row[0]
    assert isinstance(seconds, float)
    return seconds
