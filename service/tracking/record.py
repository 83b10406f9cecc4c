"""Recording opens, clicks and unsubscribes as events.

Opens and clicks can reach the service twice: from its own pixel and tracked links, and from
SES event publishing (`Open` and `Click`) when the configuration set tracks them too. Both
paths call `record_open` and `record_click`, which mark an event `duplicate=True` when the
other source already reported the same open (the same request within
`DUPLICATE_WINDOW_SECONDS` of it) or the same click (the same request and link, within the
same window). Read models skip duplicates. Only events that are not duplicates themselves
count as a match, so two real opens a few seconds apart, each reported by both sources, still
count as two.

A transaction-scoped advisory lock on the request id serialises recordings of one email, so
two sources reporting at the same moment cannot both miss each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailClicked, EmailOpened, EmailUnsubscribed, EngagementSource
from service.suppression import suppress
from service.tracking.agents import Classification, classify

Connection = AsyncConnection[tuple[object, ...]]
UnsubscribeSource = Literal["link", "one_click", "ses"]

# SES's own pixel and ours sit in the same rendered message and load within a second or two
# of each other; SES reports its timestamp, so the window only needs to cover clock skew and
# slow image loads. A minute is wide for that, yet shorter than most re-reads.
DUPLICATE_WINDOW_SECONDS = 60.0

# The first key of the two-key advisory lock: an arbitrary constant that keeps these locks
# apart from the database's other advisory locks (the migration lock uses a single key).
_ENGAGEMENT_LOCK_CLASS = 0x5E5_0030

_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"

# The email's topic, when SES accepted it, and whether another source already reported the
# same engagement. The link condition is true for opens, which pass NULL.
_CONTEXT = """
SELECT
    (SELECT topic_id FROM emails WHERE request_id = %(request_id)s::uuid),
    (SELECT occurred_at FROM events
      WHERE stream = %(stream)s AND type = 'EmailSent'
      ORDER BY position DESC LIMIT 1),
    EXISTS (
        SELECT 1 FROM events
         WHERE stream = %(stream)s
           AND type = %(type)s
           AND data->>'source' <> %(source)s
           AND data->>'duplicate' = 'false'
           AND (%(link)s::text IS NULL OR data->>'link' = %(link)s::text)
           AND occurred_at BETWEEN %(at)s - make_interval(secs => %(window)s)
                               AND %(at)s + make_interval(secs => %(window)s)
    )
"""


@dataclass(frozen=True)
class _Context:
    topic_id: str | None
    sent_at: datetime | None
    duplicate: bool


async def _context(
    conn: Connection,
    *,
    request_id: str,
    event_type: str,
    source: EngagementSource,
    at: datetime,
    link: str | None = None,
) -> _Context:
    await conn.execute(_LOCK, (_ENGAGEMENT_LOCK_CLASS, request_id))
    cursor = await conn.execute(
        _CONTEXT,
        {
            "request_id": request_id,
            "stream": request_id,
            "type": event_type,
            "source": source,
            "link": link,
            "at": at,
            "window": DUPLICATE_WINDOW_SECONDS,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    topic_id, sent_at, duplicate = row
    return _Context(
        topic_id=None if topic_id is None else str(topic_id),
        sent_at=sent_at if isinstance(sent_at, datetime) else None,
        duplicate=bool(duplicate),
    )


def _canonical_request_id(request_id: str) -> str:
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise ValueError(f"request id {request_id!r} is not a UUID") from None


def _classification(
    user_agent: str | None, at: datetime, sent_at: datetime | None
) -> Classification:
    seconds = None if sent_at is None else (at - sent_at).total_seconds()
    return classify(user_agent, seconds)


async def record_open(
    conn: Connection,
    *,
    request_id: str,
    source: EngagementSource,
    user_agent: str | None,
    occurred_at: datetime | None = None,
    topic_id: str | None = None,
    dedupe_key: str | None = None,
) -> EmailOpened:
    """Append an `EmailOpened` for one email, classified and checked for a duplicate.

    Call it inside a transaction. `occurred_at` is when the open happened (SES's timestamp for
    `source='ses'`), now when None. `dedupe_key` is for events that may arrive twice (SNS).
    """
    request_id = _canonical_request_id(request_id)
    at = occurred_at or datetime.now(UTC)
    context = await _context(
        conn, request_id=request_id, event_type="EmailOpened", source=source, at=at
    )
    kind = _classification(user_agent, at, context.sent_at)
    event = EmailOpened(
        request_id=request_id,
        topic_id=topic_id or context.topic_id,
        user_agent=user_agent,
        machine=kind.machine,
        proxy=kind.proxy,
        source=source,
        duplicate=context.duplicate,
    )
    await append(conn, [NewEvent(request_id, event, at, dedupe_key)])
    return event


async def record_click(
    conn: Connection,
    *,
    request_id: str,
    link: str,
    source: EngagementSource,
    user_agent: str | None,
    occurred_at: datetime | None = None,
    topic_id: str | None = None,
    dedupe_key: str | None = None,
) -> EmailClicked:
    """Append an `EmailClicked` for one email and link, classified and checked for a duplicate.

    `link` is the original target. SES reports the URL it saw in the message, which is the
    tracked redirect when click tracking is on here too: pass it through `original_link`
    first so both sources name the same link.
    """
    request_id = _canonical_request_id(request_id)
    at = occurred_at or datetime.now(UTC)
    context = await _context(
        conn, request_id=request_id, event_type="EmailClicked", source=source, at=at, link=link
    )
    kind = _classification(user_agent, at, context.sent_at)
    event = EmailClicked(
        request_id=request_id,
        topic_id=topic_id or context.topic_id,
        link=link,
        user_agent=user_agent,
        machine=kind.machine,
        source=source,
        duplicate=context.duplicate,
    )
    await append(conn, [NewEvent(request_id, event, at, dedupe_key)])
    return event


_RECIPIENT = "SELECT topic_id, recipient FROM emails WHERE request_id = %s::uuid"


async def record_unsubscribe(
    conn: Connection,
    *,
    request_id: str,
    source: UnsubscribeSource,
) -> EmailUnsubscribed | None:
    """Append `EmailUnsubscribed` once per email and put its recipient on the suppression list.

    Returns None when no email has this request id. Repeating it changes nothing: the event's
    dedupe key is per request, and `suppress` ignores an address already on the list.
    """
    request_id = _canonical_request_id(request_id)
    cursor = await conn.execute(_RECIPIENT, (request_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    topic_id, recipient = str(row[0]), str(row[1])
    event = EmailUnsubscribed(
        request_id=request_id,
        topic_id=topic_id,
        recipient=recipient,
        source=source,
    )
    await append(conn, [NewEvent(request_id, event, dedupe_key=f"unsubscribe:{request_id}")])
    await suppress(conn, recipient, "unsubscribe", request_id=request_id)
    return event
