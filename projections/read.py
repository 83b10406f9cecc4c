"""Queries over the read models for the statistics API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from projections.base import Connection
from projections.topic_stats import COUNT_COLUMNS

_TOPIC = f"""
SELECT {", ".join(COUNT_COLUMNS)}, first_activity_at, last_activity_at
FROM topic_stats WHERE topic_id = %s
"""

# Keyset paging: newest first, the topic id breaking ties, so pages never overlap.
_TOPIC_PAGE = """
SELECT topic_id, requested, sent, failed, delivered, bounced_hard, bounced_soft, complained,
       opened_unique, clicked_unique, first_activity_at, last_activity_at
FROM topic_stats
WHERE %(after)s::boolean IS FALSE
   OR (first_activity_at, topic_id) < (%(first)s::timestamptz, %(topic)s::text)
ORDER BY first_activity_at DESC, topic_id DESC
LIMIT %(limit)s
"""

_SENT_PER_HOUR = """
SELECT hour, sum(events)::bigint FROM hourly_counts
WHERE event_type = 'EmailSent' AND hour >= %s
GROUP BY hour
"""


@dataclass(frozen=True)
class TopicRow:
    counts: dict[str, int]
    first_activity_at: datetime
    last_activity_at: datetime


@dataclass(frozen=True)
class TopicSummaryRow:
    topic_id: str
    requested: int
    sent: int
    failed: int
    delivered: int
    bounced_hard: int
    bounced_soft: int
    complained: int
    opened_unique: int
    clicked_unique: int
    first_activity_at: datetime
    last_activity_at: datetime


async def topic(conn: Connection, topic_id: str) -> TopicRow | None:
    cursor = await conn.execute(_TOPIC, (topic_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    counts = {column: int(value) for column, value in zip(COUNT_COLUMNS, row, strict=False)}  # type: ignore[call-overload]
    return TopicRow(counts, row[-2], row[-1])  # type: ignore[arg-type]


async def topic_page(
    conn: Connection, limit: int, after: tuple[datetime, str] | None
) -> list[TopicSummaryRow]:
    params = {
        "after": after is not None,
        "first": after[0] if after else None,
        "topic": after[1] if after else None,
        "limit": limit,
    }
    cursor = await conn.execute(_TOPIC_PAGE, params)
    return [TopicSummaryRow(*row) for row in await cursor.fetchall()]  # type: ignore[arg-type]


async def sent_per_hour(conn: Connection, first_hour: datetime, hours: int) -> list[int]:
    """Return the emails sent in each of `hours` UTC hours from `first_hour`, oldest first."""
    cursor = await conn.execute(_SENT_PER_HOUR, (first_hour,))
    by_hour = {hour: int(count) for hour, count in await cursor.fetchall()}  # type: ignore[call-overload]
    return [by_hour.get(first_hour + timedelta(hours=index), 0) for index in range(hours)]
