"""The due queue: the claim statement, its index, leases and uncertain emails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from service.config import Settings
from service.db.pool import Pool
from service.dispatch import queue, uncertain
from service.events.store import read_stream
from service.events.types import EmailRequeued, EmailSendUncertain
from service.sending.cancel import cancel_email
from tests.support.enqueue import enqueue


async def test_claim_uses_due_index(pool: Pool, settings: Settings) -> None:
    """With many emails already sent, the claim reads the emails_due index, not the table."""
    await enqueue(pool, settings, [f"u{i}@example.com" for i in range(2000)])
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE emails SET status = 'sent', due_at = NULL WHERE recipient NOT LIKE 'u1%%'"
        )
        await conn.execute("ANALYZE emails")
        cursor = await conn.execute(
            "EXPLAIN " + queue.CLAIM,
            {"limit": 10, "dispatcher": "d", "lease": 60.0},
        )
        plan = "\n".join(str(row[0]) for row in await cursor.fetchall())
    assert "emails_due" in plan, plan


async def test_claim_marks_and_skips_locked(pool: Pool, settings: Settings) -> None:
    """A claim marks rows sending with a lease; a second claim gets only the rest."""
    request_ids = await enqueue(pool, settings, [f"u{i}@example.com" for i in range(5)])
    async with pool.connection() as conn:
        first = await queue.claim(conn, "d1", 3)
        second = await queue.claim(conn, "d2", 10)
        cursor = await conn.execute(
            "SELECT status, claimed_by, attempt, lease_until > now() FROM emails"
            " WHERE request_id = %s", (first[0].request_id,)
        )
        row = await cursor.fetchone()
    assert len(first) == 3
    assert len(second) == 2
    assert {e.request_id for e in first + second} == set(request_ids)
    assert row == ("sending", "d1", 1, True)


async def test_scheduled_not_claimed_early(pool: Pool, settings: Settings) -> None:
    """A scheduled email is claimable only once its time has come."""
    later = datetime.now(UTC) + timedelta(hours=1)
    await enqueue(pool, settings, ["a@example.com"], scheduled_at=later)
    async with pool.connection() as conn:
        assert await queue.claim(conn, "d", 10) == []
        await conn.execute("UPDATE emails SET due_at = now() - interval '1 second'")
        claimed = await queue.claim(conn, "d", 10)
    assert len(claimed) == 1


async def test_cancelled_not_claimed(pool: Pool, settings: Settings) -> None:
    """A cancelled email is never claimed."""
    [request_id] = await enqueue(pool, settings, ["a@example.com"])
    async with pool.connection() as conn:
        await cancel_email(conn, uuid.UUID(request_id))
        assert await queue.claim(conn, "d", 10) == []


async def test_expired_lease_becomes_uncertain(pool: Pool, settings: Settings) -> None:
    """A claim whose lease ran out becomes uncertain with an event, and is not claimed again."""
    [request_id] = await enqueue(pool, settings, ["a@example.com"])
    async with pool.connection() as conn:
        await queue.claim(conn, "dead", 10)
        await conn.execute("UPDATE emails SET due_at = now() - interval '1 second'")
        assert await queue.expire_leases(conn) == [request_id]
        assert await queue.claim(conn, "d", 10) == []
        events = await read_stream(conn, request_id)
        cursor = await conn.execute("SELECT status FROM emails")
        row = await cursor.fetchone()
    assert row == ("uncertain",)
    uncertain_events = [e.event for e in events if isinstance(e.event, EmailSendUncertain)]
    assert len(uncertain_events) == 1
    assert uncertain_events[0].claimed_by == "dead"


async def test_resend_uncertain(pool: Pool, settings: Settings) -> None:
    """Operators list uncertain emails and queue chosen ones again, with an event."""
    request_ids = await enqueue(pool, settings, ["a@example.com", "b@example.com"])
    async with pool.connection() as conn:
        await queue.claim(conn, "dead", 10)
        await conn.execute("UPDATE emails SET due_at = now() - interval '1 second'")
        await queue.expire_leases(conn)
        listed = await uncertain.list_uncertain(conn)
        queued = await uncertain.resend(conn, [request_ids[0]])
        claimed = await queue.claim(conn, "d", 10)
        events = await read_stream(conn, request_ids[0])
    assert {e.request_id for e in listed} == set(request_ids)
    assert queued == [request_ids[0]]
    assert [e.request_id for e in claimed] == [request_ids[0]]
    assert claimed[0].attempt == 2
    assert any(isinstance(e.event, EmailRequeued) for e in events)


async def test_resend_after_grace_only(pool: Pool, settings: Settings) -> None:
    """The automatic resend takes only emails uncertain for longer than the grace period."""
    await enqueue(pool, settings, ["a@example.com"])
    async with pool.connection() as conn:
        await queue.claim(conn, "dead", 10)
        await conn.execute("UPDATE emails SET due_at = now() - interval '1 second'")
        await queue.expire_leases(conn)
        assert await uncertain.resend(conn, older_than=3600) == []
        await conn.execute("UPDATE emails SET updated_at = now() - interval '2 hours'")
        assert len(await uncertain.resend(conn, older_than=3600)) == 1
