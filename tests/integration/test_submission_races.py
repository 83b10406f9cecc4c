"""Races: the same Idempotency-Key from two transactions, and cancel against a dispatcher claim."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

from service.config import Settings
from service.db.pool import Pool
from service.sending.cancel import cancel_email, cancel_topic
from service.sending.errors import Conflict
from service.sending.idempotency import IdempotencyKey, body_hash
from service.sending.payloads import MessageIn, SubmitRequest
from service.sending.submit import Submitted, submit
from service.sending.validation import ValidMessage, validate_submission
from tests.integration.api_client import row_counts

# Long enough for a blocked statement to show it is blocked, short enough to keep tests quick.
BLOCKED_FOR = 0.5


def request(subject: str = "Hello") -> SubmitRequest:
    message = MessageIn(
        topic_id="race", emails=["a@example.com", "b@example.com"], subject=subject, content="<p>"
    )
    return SubmitRequest(messages=[message])


def keyed(body: SubmitRequest, key: str = "race-key") -> IdempotencyKey:
    return IdempotencyKey(key, body_hash(body), timedelta(hours=24))


async def submit_on(pool: Pool, messages: list[ValidMessage], key: IdempotencyKey) -> Submitted:
    async with pool.connection() as conn:
        return await submit(conn, messages, idempotency_key=key)


async def test_second_key_holder_waits_then_replays(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """While the first transaction is open the second waits; after its commit it replays."""
    body = request()
    messages = validate_submission(body, settings)
    first = await psycopg.AsyncConnection.connect(database_url)
    try:
        async with first.transaction():
            original = await submit(first, messages, idempotency_key=keyed(body))
            second = asyncio.create_task(submit_on(pool, messages, keyed(body)))
            done, _ = await asyncio.wait({second}, timeout=BLOCKED_FOR)
            assert not done, "the second request must wait for the first transaction"
        replay = await second
    finally:
        await first.close()
    assert replay.replayed
    assert replay.response == original.response
    assert await row_counts(pool) == (3, 2, 1)


async def test_second_key_holder_proceeds_after_rollback(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """If the first transaction rolls back, the waiting one writes its own batch."""
    body = request()
    messages = validate_submission(body, settings)
    first = await psycopg.AsyncConnection.connect(database_url)
    try:
        async with first.transaction(force_rollback=True):
            await submit(first, messages, idempotency_key=keyed(body))
            second = asyncio.create_task(submit_on(pool, messages, keyed(body)))
            await asyncio.sleep(BLOCKED_FOR)
        result = await second
    finally:
        await first.close()
    assert not result.replayed
    assert await row_counts(pool) == (3, 2, 1)


async def test_second_key_holder_with_other_body_conflicts(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """A waiting request with the same key and another body gets Conflict after the commit."""
    body, other = request(), request(subject="Other")
    first = await psycopg.AsyncConnection.connect(database_url)
    try:
        async with first.transaction():
            await submit(first, validate_submission(body, settings), idempotency_key=keyed(body))
            second = asyncio.create_task(
                submit_on(pool, validate_submission(other, settings), keyed(other))
            )
            await asyncio.sleep(BLOCKED_FOR)
        with pytest.raises(Conflict):
            await second
    finally:
        await first.close()
    assert await row_counts(pool) == (3, 2, 1)


async def test_expired_key_is_used_afresh(settings: Settings, pool: Pool) -> None:
    """A key older than its time to live accepts a new body as a new request."""
    body, other = request(), request(subject="Next week")
    async with pool.connection() as conn:
        await submit(conn, validate_submission(body, settings), idempotency_key=keyed(body))
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        result = await submit(
            conn, validate_submission(other, settings), idempotency_key=keyed(other)
        )
    assert not result.replayed
    assert await row_counts(pool) == (6, 4, 1)


async def test_expired_keys_pruned(settings: Settings, pool: Pool) -> None:
    """Keyed submissions delete expired keys of other requests."""
    async with pool.connection() as conn:
        for index in range(3):
            body = request(subject=f"Subject {index}")
            key = keyed(body, f"old-{index}")
            await submit(conn, validate_submission(body, settings), idempotency_key=key)
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 days'")
        body = request(subject="New")
        await submit(conn, validate_submission(body, settings), idempotency_key=keyed(body, "new"))
        cursor = await conn.execute("SELECT key FROM idempotency_keys")
        assert await cursor.fetchall() == [("new",)]


async def claim_in_open_transaction(
    database_url: str, request_id: str
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """Claim one email as a dispatcher does, leaving the transaction open; return its connection."""
    claimer = await psycopg.AsyncConnection.connect(database_url)
    await claimer.execute(
        """
        UPDATE emails SET status = 'sending', due_at = NULL
        WHERE request_id IN (
            SELECT request_id FROM emails WHERE request_id = %s FOR UPDATE SKIP LOCKED
        )
        """,
        (request_id,),
    )
    return claimer


async def submitted_ids(settings: Settings, pool: Pool) -> list[str]:
    async with pool.connection() as conn:
        result = await submit(conn, validate_submission(request(), settings))
    return [r.request_id for r in result.response.messages[0].requests]


async def test_cancel_waits_for_claim_then_conflicts(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """Cancel of a row a dispatcher is claiming waits, then sees 'sending' and does nothing."""
    request_id = (await submitted_ids(settings, pool))[0]
    claimer = await claim_in_open_transaction(database_url, request_id)
    try:

        async def cancel() -> None:
            async with pool.connection() as conn:
                await cancel_email(conn, uuid.UUID(request_id))

        task = asyncio.create_task(cancel())
        done, _ = await asyncio.wait({task}, timeout=BLOCKED_FOR)
        assert not done, "cancel must wait for the claim's row lock"
        await claimer.commit()
        with pytest.raises(Conflict, match="is sending"):
            await task
    finally:
        await claimer.close()
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM events WHERE type = 'EmailCancelled'")
        assert await cursor.fetchone() == (0,)


async def test_claim_skips_row_being_cancelled(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """A row locked by a cancel in progress is skipped by a claim, so it is never sent."""
    request_id = (await submitted_ids(settings, pool))[0]
    canceller = await psycopg.AsyncConnection.connect(database_url)
    try:
        async with canceller.transaction():
            await cancel_email(canceller, uuid.UUID(request_id))
            claimer = await claim_in_open_transaction(database_url, request_id)
            status = await claimer.execute(
                "SELECT status FROM emails WHERE request_id = %s", (request_id,)
            )
            assert await status.fetchone() == ("queued",)
            await claimer.commit()
            await claimer.close()
    finally:
        await canceller.close()
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status FROM emails WHERE request_id = %s", (request_id,)
        )
        assert await cursor.fetchone() == ("cancelled",)


async def test_topic_cancel_leaves_claimed_row(
    settings: Settings, pool: Pool, database_url: str
) -> None:
    """Topic cancel waits for a claim in progress and leaves that row to the dispatcher."""
    claimed, other = await submitted_ids(settings, pool)
    claimer = await claim_in_open_transaction(database_url, claimed)
    try:

        async def cancel() -> int:
            async with pool.connection() as conn:
                return await cancel_topic(conn, "race")

        task = asyncio.create_task(cancel())
        done, _ = await asyncio.wait({task}, timeout=BLOCKED_FOR)
        assert not done, "topic cancel must wait for the claim's row lock"
        await claimer.commit()
        assert await task == 1
    finally:
        await claimer.close()
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT request_id::text, status FROM emails ORDER BY status")
        assert sorted(await cursor.fetchall()) == sorted(
            [(other, "cancelled"), (claimed, "sending")]
        )


async def test_concurrent_topic_cancels(settings: Settings, pool: Pool) -> None:
    """Two topic cancels at once neither deadlock nor cancel an email twice."""
    emails = [f"user{i}@example.com" for i in range(300)]
    body = SubmitRequest(
        messages=[MessageIn(topic_id="race", emails=emails, subject="s", content="c")]
    )
    async with pool.connection() as conn:
        await submit(conn, validate_submission(body, settings))

    async def cancel() -> int:
        async with pool.connection() as conn:
            return await cancel_topic(conn, "race")

    counts = await asyncio.gather(cancel(), cancel(), cancel())
    assert sum(counts) == 300
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM events WHERE type = 'EmailCancelled'")
        assert await cursor.fetchone() == (300,)
