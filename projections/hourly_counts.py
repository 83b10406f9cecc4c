"""The `hourly_counts` read model: events per UTC hour, event type and topic.

Every event type is counted, known or not, except opens and clicks that another source
already reported. An event that names a request but no topic is counted under the topic
of that request's EmailRequested event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from projections.base import Connection, Tables
from projections.fields import hour_of, is_duplicate, request_id_of, topic_id_of
from service.events.store import StoredEvent

_Key = tuple[datetime, str, str | None]

# The EmailRequested event of an email's stream (its request id) names the email's topic.
_TOPICS_OF_REQUESTS = """
SELECT stream, data->>'topic_id' FROM events
WHERE stream = ANY(%s) AND type = 'EmailRequested'
"""

_WRITE = """
INSERT INTO {hourly_counts} AS h (hour, event_type, topic_id, events)
SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::bigint[])
ON CONFLICT (hour, event_type, topic_id) DO UPDATE SET events = h.events + EXCLUDED.events
"""


class HourlyCountsProjection:
    name = "hourly_counts"
    tables = ("hourly_counts",)

    async def apply(
        self, conn: Connection, events: Sequence[StoredEvent], tables: Tables
    ) -> None:
        counted = [stored for stored in events if not is_duplicate(stored.event)]
        topics = await _topics_of_requests(conn, _requests_without_topic(counted))
        counts: Counter[_Key] = Counter()
        for stored in counted:
            topic = topic_id_of(stored.event)
            if topic is None:
                topic = topics.get(request_id_of(stored.event) or "")
            counts[(hour_of(stored.occurred_at), stored.type_name, topic)] += 1
        await _write(conn, tables, counts)


def _requests_without_topic(events: Sequence[StoredEvent]) -> set[str]:
    return {
        request_id
        for stored in events
        if topic_id_of(stored.event) is None
        and (request_id := request_id_of(stored.event)) is not None
    }


async def _topics_of_requests(conn: Connection, request_ids: set[str]) -> dict[str, str]:
    if not request_ids:
        return {}
    cursor = await conn.execute(_TOPICS_OF_REQUESTS, (list(request_ids),))
    return {str(stream): str(topic) for stream, topic in await cursor.fetchall() if topic}


async def _write(conn: Connection, tables: Tables, counts: Counter[_Key]) -> None:
    if not counts:
        return
    keys = list(counts)
    await conn.execute(
        tables.query(_WRITE),
        (
            [key[0] for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
            [counts[key] for key in keys],
        ),
    )
