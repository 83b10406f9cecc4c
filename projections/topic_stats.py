"""The `topic_stats` read model: per topic, emails per milestone and engagement totals.

Its private table `topic_stats_emails` keeps each email's topic and milestone set, so that
each email counts once per column. `unlinked_events` counts the feedback and engagement
that cannot be attributed to any topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg import sql

from projections.base import Connection, Tables
from projections.fields import request_id_of, topic_id_of, unlinked_feedback_type
from projections.staging import copy_upsert
from projections.topic_milestones import (
    COUNTER_COLUMNS,
    MILESTONE_COLUMNS,
    effect_of,
    new_milestone_columns,
    pending,
)
from service.events.store import StoredEvent
from service.events.types import MessageSubmitted

COUNT_COLUMNS = ("pending", *MILESTONE_COLUMNS.values(), *COUNTER_COLUMNS)


@dataclass
class TopicDelta:
    """The amounts one batch adds to one topic_stats row."""

    counts: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, column: str, amount: int = 1) -> None:
        self.counts[column] = self.counts.get(column, 0) + amount

    def touch(self, moment: datetime) -> None:
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)


@dataclass
class Unlinked:
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class EmailState:
    topic_id: str
    milestones: int


class TopicStatsProjection:
    name = "topic_stats"
    tables = ("topic_stats", "topic_stats_emails", "unlinked_events")

    async def apply(
        self, conn: Connection, events: Sequence[StoredEvent], tables: Tables
    ) -> None:
        request_ids = {rid for stored in events if (rid := request_id_of(stored.event))}
        emails = await _load_emails(conn, tables, request_ids)
        batch = _Batch(emails)
        for stored in events:
            batch.apply(stored)
        await _write_emails(conn, tables, {rid: emails[rid] for rid in batch.changed})
        await _write_topics(conn, tables, batch.topics)
        await _write_unlinked(conn, tables, batch.unlinked)


class _Batch:
    """Folds a batch of events into per-topic deltas, updating the email states in place."""

    def __init__(self, emails: dict[str, EmailState]) -> None:
        self.emails = emails
        self.changed: set[str] = set()
        self.topics: dict[str, TopicDelta] = {}
        self.unlinked: dict[str, Unlinked] = {}

    def apply(self, stored: StoredEvent) -> None:
        event = stored.event
        if isinstance(event, MessageSubmitted):
            delta = self._topic(event.topic_id)
            delta.add("messages")
            delta.touch(stored.occurred_at)
            return

        request_id = request_id_of(event)
        if request_id is None:
            feedback_type = unlinked_feedback_type(stored.type_name, event)
            if feedback_type is not None:
                self._count_unlinked(feedback_type, stored.occurred_at)
            return
        effect = effect_of(event)
        if not effect.milestones and not effect.counters:
            return  # a duplicate, or an event that counts nowhere

        state = self._email(request_id, topic_id_of(event))
        if state is None:
            self._count_unlinked(stored.type_name, stored.occurred_at)
            return

        delta = self._topic(state.topic_id)
        before = state.milestones
        after = before | effect.milestones
        for column in new_milestone_columns(before, after):
            delta.add(column)
        delta.add("pending", pending(after) - pending(before))
        for column, amount in effect.counters:
            delta.add(column, amount)
        delta.touch(stored.occurred_at)

        if after != before:
            state.milestones = after
            self.changed.add(request_id)

    def _email(self, request_id: str, topic_id: str | None) -> EmailState | None:
        state = self.emails.get(request_id)
        if state is None and topic_id is not None:
            state = self.emails[request_id] = EmailState(topic_id, 0)
        return state

    def _topic(self, topic_id: str) -> TopicDelta:
        delta = self.topics.get(topic_id)
        if delta is None:
            delta = self.topics[topic_id] = TopicDelta()
        return delta

    def _count_unlinked(self, event_type: str, moment: datetime) -> None:
        entry = self.unlinked.setdefault(event_type, Unlinked())
        entry.events += 1
        entry.first = moment if entry.first is None else min(entry.first, moment)
        entry.last = moment if entry.last is None else max(entry.last, moment)


_LOAD_EMAILS = """
SELECT request_id, topic_id, milestones FROM {topic_stats_emails} WHERE request_id = ANY(%s)
"""

_EMAILS_ON_CONFLICT = sql.SQL(
    "ON CONFLICT (request_id) DO UPDATE SET milestones = EXCLUDED.milestones"
)

_WRITE_UNLINKED = """
INSERT INTO {unlinked_events} AS u (event_type, events, first_event_at, last_event_at)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (event_type) DO UPDATE SET
    events = u.events + EXCLUDED.events,
    first_event_at = LEAST(u.first_event_at, EXCLUDED.first_event_at),
    last_event_at = GREATEST(u.last_event_at, EXCLUDED.last_event_at)
"""


def _write_topics_query() -> str:
    columns = ", ".join(COUNT_COLUMNS)
    arrays = ", ".join("%s::bigint[]" for _ in COUNT_COLUMNS)
    sums = ",\n    ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)
    return f"""
INSERT INTO {{topic_stats}} AS t (topic_id, {columns}, first_activity_at, last_activity_at)
SELECT * FROM unnest(%s::text[], {arrays}, %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (topic_id) DO UPDATE SET
    {sums},
    first_activity_at = LEAST(t.first_activity_at, EXCLUDED.first_activity_at),
    last_activity_at = GREATEST(t.last_activity_at, EXCLUDED.last_activity_at)
"""


_WRITE_TOPICS = _write_topics_query()


async def _load_emails(
    conn: Connection, tables: Tables, request_ids: set[str]
) -> dict[str, EmailState]:
    if not request_ids:
        return {}
    cursor = await conn.execute(tables.query(_LOAD_EMAILS), (list(request_ids),))
    return {
        str(rid): EmailState(str(topic), int(bits))  # type: ignore[call-overload]
        for rid, topic, bits in await cursor.fetchall()
    }


async def _write_emails(
    conn: Connection, tables: Tables, emails: dict[str, EmailState]
) -> None:
    if not emails:
        return
    rows = ((rid, state.topic_id, state.milestones) for rid, state in emails.items())
    await copy_upsert(
        conn,
        tables.names["topic_stats_emails"],
        ("request_id", "topic_id", "milestones"),
        rows,
        _EMAILS_ON_CONFLICT,
    )


async def _write_topics(conn: Connection, tables: Tables, topics: dict[str, TopicDelta]) -> None:
    if not topics:
        return
    deltas = list(topics.values())
    arrays: list[list[object]] = [list(topics)]
    arrays.extend([delta.counts.get(column, 0) for delta in deltas] for column in COUNT_COLUMNS)
    arrays.append([delta.first for delta in deltas])
    arrays.append([delta.last for delta in deltas])
    await conn.execute(tables.query(_WRITE_TOPICS), arrays)


async def _write_unlinked(
    conn: Connection, tables: Tables, unlinked: dict[str, Unlinked]
) -> None:
    if not unlinked:
        return
    await conn.execute(
        tables.query(_WRITE_UNLINKED),
        (
            list(unlinked),
            [entry.events for entry in unlinked.values()],
            [entry.first for entry in unlinked.values()],
            [entry.last for entry in unlinked.values()],
        ),
    )
