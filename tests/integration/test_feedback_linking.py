"""Feedback racing the transaction that records its send is linked, never lost."""

from __future__ import annotations

import asyncio
import uuid

from service.db.pool import Pool
from service.feedback.ingest import store_feedback
from service.feedback.linking import link_held_feedback
from service.feedback.ses import SesFeedback, parse_ses_payload
from tests import ses_payloads as ses
from tests.integration.feedback_support import email_row, event_types, insert_email

ALICE = "alice@example.com"


def delivery(message_id: str) -> SesFeedback:
    parsed = parse_ses_payload(ses.delivery(message_id, [ALICE]), str(uuid.uuid4()))
    assert isinstance(parsed, SesFeedback)
    return parsed


async def store(pool: Pool, feedback: SesFeedback) -> None:
    async with pool.connection() as conn, conn.transaction():
        await store_feedback(conn, feedback, str(uuid.uuid4()))


async def held_count(pool: Pool) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM held_feedback")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_feedback_during_send_recording_waits_and_links(pool: Pool) -> None:
    """Feedback arriving while EmailSent is being recorded waits for it, then links directly."""
    message_id = f"ses-{uuid.uuid4()}"
    request_id = await insert_email(pool, status="sending")
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE emails SET status = 'sent', ses_message_id = %s WHERE request_id = %s",
            (message_id, request_id),
        )
        await link_held_feedback(conn, request_id, "newsletter", message_id)
        arriving = asyncio.create_task(store(pool, delivery(message_id)))
        await asyncio.sleep(0.3)
        assert not arriving.done(), "feedback did not wait for the linking transaction"
    await asyncio.wait_for(arriving, 10)
    assert await event_types(pool, request_id) == ["EmailDelivered"]
    assert await held_count(pool) == 0
    assert (await email_row(pool, request_id))[2] == "delivered"


async def test_concurrent_feedback_and_send_never_lose_feedback(pool: Pool) -> None:
    """Many sends recorded while their feedback arrives: every delivery ends up linked."""
    emails = [
        (await insert_email(pool, status="sending"), f"ses-{uuid.uuid4()}") for _ in range(20)
    ]

    async def record_send(request_id: str, message_id: str) -> None:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE emails SET status = 'sent', ses_message_id = %s WHERE request_id = %s",
                (message_id, request_id),
            )
            await link_held_feedback(conn, request_id, "newsletter", message_id)

    tasks = []
    for request_id, message_id in emails:
        tasks.append(record_send(request_id, message_id))
        tasks.append(store(pool, delivery(message_id)))
    await asyncio.gather(*tasks)
    for request_id, _ in emails:
        assert await event_types(pool, request_id) == ["EmailDelivered"]
    assert await held_count(pool) == 0
