"""The dispatcher against real PostgreSQL and a stub SES endpoint on 127.0.0.1."""

from __future__ import annotations

from service.config import Settings
from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailSent
from tests.support.dispatching import dispatching, wait_until_settled
from tests.support.enqueue import enqueue
from tests.support.ses_stub import StubSes


async def test_sends_queued_emails(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """Every queued email goes to SES once and ends sent with its SES message id."""
    recipients = [f"user{i}@example.com" for i in range(20)]
    request_ids = await enqueue(pool, send_settings, recipients, text="Hi")
    async with dispatching(send_settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids)
    assert {final[r] for r in request_ids} == {"sent"}
    assert sorted(ses_stub.recipients()) == sorted(recipients)
    async with pool.connection() as conn:
        events = await read_stream(conn, request_ids[0])
    sent = [e.event for e in events if isinstance(e.event, EmailSent)]
    assert len(sent) == 1
    assert sent[0].ses_message_id.startswith("stub-")
