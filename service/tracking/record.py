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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import msgspec
from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import (
    EmailClicked,
    EmailOpened,
    EmailUnsubscribed,
    EngagementSource,
    Event,
)
from service.suppression import suppress
from service.tracking.agents import Classification, classify
from service.tracking.personalize import original_link

Connection = AsyncConnection[tuple[object, ...]]
UnsubscribeSource = Literal["link", "one_click", "ses"]

# SES's own pixel and ours sit in the same rendered message and load within a second or two
# of each other; SES reports its timestamp, so the window only needs to cover clock skew and
# slow image loads. A minute is wide for that, yet shorter than most re-reads.
DUPLICATE_WINDOW_SECONDS = 60.0

# Real user agents are a few hundred characters long. A longer header is cut, so that a client
# cannot make every stored event (and the classification cache) hold kilobytes.
MAX_USER_AGENT_LENGTH = 512

# The first key of the two-key advisory lock: an arbitrary constant that keeps these locks
# apart from the database's other advisory locks (the migration lock uses a single key).
_ENGAGEMENT_LOCK_CLASS = 0x5E5_0030

# Locks are taken in key order so that two batches sharing some request ids cannot deadlock.
_LOCK = """
SELECT pg_advisory_xact_lock(%s, key)
FROM (SELECT DISTINCT hashtext(request_id) AS key
        FROM unnest(%s::text[]) AS request_id
       ORDER BY key) AS keys
"""

# Per hit: the email's topic, when SES accepted it, and whether another source already
# reported the same engagement. The link condition is true for opens, whose link is NULL.
_CONTEXT = """
SELECT
    emails.topic_id,
    (SELECT occurred_at FROM events
      WHERE stream = hits.request_id::text AND type = 'EmailSent'
      ORDER BY position DESC LIMIT 1),
    EXISTS (
        SELECT 1 FROM events
         WHERE stream = hits.request_id::text
           AND type = %(type)s
           AND data->>'source' <> %(source)s
           AND data->>'duplicate' = 'false'
           AND (hits.link IS NULL OR data->>'link' = hits.link)
           AND occurred_at BETWEEN hits.at - make_interval(secs => %(window)s)
                               AND hits.at + make_interval(secs => %(window)s)
    )
FROM unnest(%(request_ids)s::uuid[], %(ats)s::timestamptz[], %(links)s::text[])
     WITH ORDINALITY AS hits (request_id, at, link, ord)
LEFT JOIN emails ON emails.request_id = hits.request_id
ORDER BY hits.ord
"""


@dataclass(frozen=True)
class Hit:
    """One open or click to record."""

    request_id: str
    user_agent: str | None
    occurred_at: datetime
    link: str | None = None
    """The original target of a click; None for an open."""
    topic_id: str | None = None
    """The topic when the caller knows it (SES tags); looked up in `emails` otherwise."""
    dedupe_key: str | None = None


@dataclass(frozen=True)
class _Context:
    topic_id: str | None
    sent_at: datetime | None
    duplicate: bool


async def _contexts(
    conn: Connection, event_type: str, source: EngagementSource, hits: Sequence[Hit]
) -> list[_Context]:
    request_ids = [hit.request_id for hit in hits]
    await conn.execute(_LOCK, (_ENGAGEMENT_LOCK_CLASS, request_ids))
    cursor = await conn.execute(
        _CONTEXT,
        {
            "type": event_type,
            "source": source,
            "window": DUPLICATE_WINDOW_SECONDS,
            "request_ids": request_ids,
            "ats": [hit.occurred_at for hit in hits],
            "links": [hit.link for hit in hits],
        },
    )
    return [
        _Context(
            topic_id=None if topic_id is None else str(topic_id),
            sent_at=sent_at if isinstance(sent_at, datetime) else None,
            duplicate=bool(duplicate),
        )
        for topic_id, sent_at, duplicate in await cursor.fetchall()
    ]


def _canonical_request_id(request_id: str) -> str:
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise ValueError(f"request id {request_id!r} is not a UUID") from None


def _canonical(hits: Sequence[Hit]) -> list[Hit]:
    return [
        replace(
            hit,
            request_id=_canonical_request_id(hit.request_id),
            user_agent=None if hit.user_agent is None else hit.user_agent[:MAX_USER_AGENT_LENGTH],
        )
        for hit in hits
    ]


def _classification(hit: Hit, sent_at: datetime | None) -> Classification:
    seconds = None if sent_at is None else (hit.occurred_at - sent_at).total_seconds()
    return classify(hit.user_agent, seconds)


async def record_opens(
    conn: Connection, source: EngagementSource, hits: Sequence[Hit]
) -> list[EmailOpened]:
    """Append one `EmailOpened` per hit, classified and checked for duplicates, in one batch.

    Call it inside a transaction. Hits of one batch are compared with stored events only,
    which is right because they all come from the same source.
    """
    if not hits:
        return []
    hits = _canonical(hits)
    contexts = await _contexts(conn, "EmailOpened", source, hits)
    events: list[EmailOpened] = []
    for hit, context in zip(hits, contexts, strict=True):
        kind = _classification(hit, context.sent_at)
        events.append(
            EmailOpened(
                request_id=hit.request_id,
                topic_id=hit.topic_id or context.topic_id,
                user_agent=hit.user_agent,
                machine=kind.machine,
                proxy=kind.proxy,
                source=source,
                duplicate=context.duplicate,
            )
        )
    await append(conn, _new_events(hits, events))
    return events


async def record_clicks(
    conn: Connection, source: EngagementSource, hits: Sequence[Hit]
) -> list[EmailClicked]:
    """Append one `EmailClicked` per hit; `Hit.link` is required. See `record_opens`."""
    if not hits:
        return []
    hits = _canonical(hits)
    if any(hit.link is None for hit in hits):
        raise ValueError("every click needs its link")
    contexts = await _contexts(conn, "EmailClicked", source, hits)
    events: list[EmailClicked] = []
    for hit, context in zip(hits, contexts, strict=True):
        kind = _classification(hit, context.sent_at)
        events.append(
            EmailClicked(
                request_id=hit.request_id,
                topic_id=hit.topic_id or context.topic_id,
                link=hit.link or "",
                user_agent=hit.user_agent,
                machine=kind.machine,
                source=source,
                duplicate=context.duplicate,
            )
        )
    await append(conn, _new_events(hits, events))
    return events


def _new_events(hits: Sequence[Hit], events: Sequence[Event]) -> list[NewEvent]:
    return [
        NewEvent(hit.request_id, event, hit.occurred_at, hit.dedupe_key)
        for hit, event in zip(hits, events, strict=True)
    ]


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
    hit = Hit(request_id, user_agent, occurred_at or datetime.now(UTC), None, topic_id, dedupe_key)
    (event,) = await record_opens(conn, source, [hit])
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
    tracked redirect when click tracking is on here too: pass it through
    `service.tracking.personalize.original_link` first so both sources name the same link.
    """
    hit = Hit(request_id, user_agent, occurred_at or datetime.now(UTC), link, topic_id, dedupe_key)
    (event,) = await record_clicks(conn, source, [hit])
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


async def mark_reported_engagements(
    conn: Connection, events: Sequence[NewEvent], key: bytes | None
) -> list[NewEvent]:
    """Classify the opens and clicks in `events` and flag those another source already recorded.

    The SES feedback path calls this before appending, so SES `Open` and `Click` events get
    the same `machine`, `proxy` and `duplicate` rules as the pixel and tracked links. `key` maps
    SES's view of a tracked link back to its target; with None, links are compared as reported.
    Other events pass through unchanged.
    """
    marked = list(events)
    for event_type in (EmailOpened, EmailClicked):
        indexes = [i for i, new in enumerate(marked) if isinstance(new.event, event_type)]
        if not indexes:
            continue
        hits = _canonical([_hit_of(marked[i], key) for i in indexes])
        source = marked[indexes[0]].event.source  # type: ignore[attr-defined]
        contexts = await _contexts(conn, event_type.type_name, source, hits)
        for index, hit, context in zip(indexes, hits, contexts, strict=True):
            kind = _classification(hit, context.sent_at)
            changes: dict[str, object] = {"machine": kind.machine, "duplicate": context.duplicate}
            if event_type is EmailOpened:
                changes["proxy"] = kind.proxy
            else:
                changes["link"] = hit.link
            event = msgspec.structs.replace(marked[index].event, **changes)
            marked[index] = replace(marked[index], event=event)
    return marked


def _hit_of(new: NewEvent, key: bytes | None) -> Hit:
    event = new.event
    assert isinstance(event, EmailOpened | EmailClicked)
    link = None
    if isinstance(event, EmailClicked):
        link = event.link if key is None else original_link(event.link, key, event.request_id)
    return Hit(
        request_id=event.request_id,
        user_agent=event.user_agent,
        occurred_at=new.occurred_at or datetime.now(UTC),
        link=link,
    )
