"""What the dispatcher hands to tracking and feedback: tracked emails and held feedback."""

from __future__ import annotations

import uuid

from service.config import Settings
from service.db.pool import Pool
from service.dispatch.results import Sent, record
from service.feedback.ingest import store_feedback
from service.feedback.ses import SesFeedback, parse_ses_payload
from service.tracking.sending import sending_personalizers
from tests import ses_payloads as ses
from tests.integration.feedback_support import email_row, event_types
from tests.support.dispatching import dispatching, wait_until_settled
from tests.support.enqueue import enqueue
from tests.support.ses_stub import StubSes


async def test_sent_email_carries_tracking(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """The pixel, tracked links and one-click unsubscribe headers reach SES."""
    [request_id] = await enqueue(
        pool,
        send_settings,
        ["reader@example.com"],
        html='<html><body><a href="https://example.com/a?x=1&amp;y=2">go</a></body></html>',
        track_clicks=True,
        unsubscribe=True,
    )
    personalizers = await sending_personalizers(pool, send_settings)
    async with dispatching(send_settings, pool, database_url, personalizers=personalizers):
        await wait_until_settled(pool, [request_id])
    [call] = ses_stub.accepted()
    simple = call.body["Content"]["Simple"]
    html = simple["Body"]["Html"]["Data"]
    host = send_settings.server_host
    assert f'{host}/v1/events/open?requestId=' in html
    assert html.index("/v1/events/open") < html.index("</body>")
    assert f"{host}/v1/events/click?token=" in html
    assert "https://example.com/a" not in html
    headers = {header["Name"]: header["Value"] for header in simple["Headers"]}
    assert headers["List-Unsubscribe"].startswith(f"<{host}/v1/unsubscribe?token=")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_recording_a_send_links_held_feedback(pool: Pool, send_settings: Settings) -> None:
    """A delivery that arrived before its EmailSent joins the email when the send is recorded."""
    [request_id] = await enqueue(pool, send_settings, ["alice@example.com"])
    ses_message_id = f"0100018c-{uuid.uuid4()}-000000"
    parsed = parse_ses_payload(ses.delivery(ses_message_id, ["alice@example.com"]), "sns-1")
    assert isinstance(parsed, SesFeedback)
    async with pool.connection() as conn, conn.transaction():
        held = await store_feedback(conn, parsed, "sns-1")
    assert held.outcomes == ["held"]
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE emails SET status = 'sending', attempt = 1, claimed_by = 'd1'"
            " WHERE request_id = %s",
            (request_id,),
        )
        await record(conn, "d1", [Sent(request_id, "news", 1, ses_message_id)])
    assert await event_types(pool, request_id) == [
        "EmailRequested",
        "EmailSent",
        "EmailDelivered",
    ]
    status, stored_id, feedback_status = await email_row(pool, request_id)
    assert status == "sent"
    assert stored_id == ses_message_id
    assert feedback_status == "delivered"
