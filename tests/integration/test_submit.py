"""Submission core against real PostgreSQL: events, due queue rows, duplicates, scheduling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.config import Settings
from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailRequested, EmailScheduled, MessageSubmitted
from service.sending.payloads import MessageIn, SubmitRequest
from service.sending.submit import submit
from service.sending.validation import validate_submission


def one_message(**fields: object) -> SubmitRequest:
    values: dict[str, object] = {
        "topic_id": "news-2026",
        "emails": ["a@example.com", "b@example.com"],
        "subject": "Hello",
        "content": "<p>Hi</p>",
    }
    values.update(fields)
    return SubmitRequest(messages=[MessageIn(**values)])  # type: ignore[arg-type]


async def count(pool: Pool, table: str) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(f"SELECT count(*) FROM {table}")  # type: ignore[arg-type]
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_submit_writes_events_and_rows(pool: Pool, settings: Settings) -> None:
    """One message to two recipients: one body event, two requests, two queued rows."""
    messages = validate_submission(one_message(), settings)
    async with pool.connection() as conn:
        submitted = await submit(conn, messages)
    assert submitted.status == 202
    assert submitted.response.count == 2
    accepted = submitted.response.messages[0]
    assert accepted.status == "queued"
    assert [r.email for r in accepted.requests] == ["a@example.com", "b@example.com"]
    async with pool.connection() as conn:
        body = await read_stream(conn, accepted.message_id)
        email = await read_stream(conn, accepted.requests[0].request_id)
        cursor = await conn.execute(
            "SELECT status, due_at, message_position, recipient FROM emails ORDER BY recipient"
        )
        rows = await cursor.fetchall()
    assert isinstance(body[0].event, MessageSubmitted)
    assert body[0].event.html == "<p>Hi</p>"
    assert isinstance(email[0].event, EmailRequested)
    assert email[0].event.recipient == "a@example.com"
    assert [r[0] for r in rows] == ["queued", "queued"]
    assert rows[0][2] == body[0].position
    assert rows[0][1] is not None


async def test_future_time_is_scheduled(pool: Pool, settings: Settings) -> None:
    """A future scheduledAt gives status scheduled, due_at that time and EmailScheduled."""
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    messages = validate_submission(one_message(scheduled_at=when.isoformat()), settings)
    async with pool.connection() as conn:
        submitted = await submit(conn, messages)
        accepted = submitted.response.messages[0]
        events = await read_stream(conn, accepted.requests[0].request_id)
        cursor = await conn.execute("SELECT DISTINCT status, due_at FROM emails")
        rows = await cursor.fetchall()
    assert accepted.status == "scheduled"
    assert rows == [("scheduled", when)]
    assert [e.type_name for e in events] == ["EmailRequested", "EmailScheduled"]
    assert isinstance(events[1].event, EmailScheduled)
    assert events[1].event.scheduled_at == when


async def test_past_time_is_queued_now(pool: Pool, settings: Settings) -> None:
    """A past scheduledAt is queued with due_at = the submission time, not dropped."""
    past = "2020-01-01T00:00:00Z"
    messages = validate_submission(one_message(scheduled_at=past), settings)
    async with pool.connection() as conn:
        submitted = await submit(conn, messages)
        cursor = await conn.execute("SELECT DISTINCT status, due_at, now() FROM emails")
        rows = await cursor.fetchall()
        events = await read_stream(conn, submitted.response.messages[0].requests[0].request_id)
    assert len(rows) == 1
    status, due_at, now = rows[0]
    assert status == "queued"
    assert due_at > datetime(2020, 1, 2, tzinfo=UTC)
    assert due_at <= now
    assert [e.type_name for e in events] == ["EmailRequested"]
    requested = events[0].event
    assert isinstance(requested, EmailRequested)
    assert requested.requested_scheduled_at == datetime(2020, 1, 1, tzinfo=UTC)
    assert requested.scheduled_at == due_at
