"""Local mode's feedback simulator, through the real callback of `ses-sender run --local`.

Sends are recorded straight into the service's database, as a dispatcher records them, so
this checks the simulator and the callback: signed notifications accepted, feedback events
stored, and bounced and complaining addresses suppressed.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from service.events.store import NewEvent, append
from service.events.types import EmailSent
from tests.acceptance.service import LocalService

pytestmark = pytest.mark.acceptance

EXPECTED = {
    "success@simulator.amazonses.com": ("EmailDelivered", None),
    "ooto@simulator.amazonses.com": ("EmailDelivered", None),
    "someone@example.com": ("EmailDelivered", None),
    "bounce@simulator.amazonses.com": ("EmailBounced", "General"),
    "suppressionlist@simulator.amazonses.com": ("EmailBounced", "Suppressed"),
    "complaint@simulator.amazonses.com": ("EmailComplained", None),
}


async def record_sends(url: str, topic_id: str) -> dict[str, str]:
    """Record an emails row and an EmailSent event per address; return request ids."""
    request_ids = {}
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        for recipient in EXPECTED:
            request_id = str(uuid.uuid4())
            ses_message_id = f"local-{uuid.uuid4().hex}"
            await conn.execute(
                "INSERT INTO emails (request_id, message_id, message_position, topic_id,"
                " recipient, status, ses_message_id) VALUES (%s, %s, 0, %s, %s, 'sent', %s)",
                (request_id, str(uuid.uuid4()), topic_id, recipient, ses_message_id),
            )
            sent = EmailSent(
                request_id=request_id, topic_id=topic_id, ses_message_id=ses_message_id, attempt=1
            )
            await append(conn, [NewEvent(request_id, sent)])
            request_ids[recipient] = request_id
    return request_ids


def feedback_events(url: str, request_ids: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT stream, type, data->>'bounce_subtype' FROM events"
            " WHERE stream = ANY(%s) AND type LIKE 'Email%%' AND type <> 'EmailSent'",
            (list(request_ids.values()),),
        ).fetchall()
    by_request = {request_id: recipient for recipient, request_id in request_ids.items()}
    return {by_request[stream]: (kind, subtype) for stream, kind, subtype in rows}


async def test_simulated_feedback_stored(local_service: LocalService) -> None:
    """Each simulator address gets its outcome through the signed SNS callback."""
    url = local_service.database_url
    request_ids = await record_sends(url, f"simulation-{uuid.uuid4().hex[:8]}")
    deadline = time.monotonic() + 30
    found: dict[str, tuple[str, str | None]] = {}
    while time.monotonic() < deadline and len(found) < len(EXPECTED):
        await asyncio.sleep(0.2)
        found = feedback_events(url, request_ids)
    assert found == EXPECTED, local_service.output()[-3000:]

    with psycopg.connect(url) as conn:
        suppressed = dict(
            conn.execute(
                "SELECT address, reason FROM suppressions WHERE address = ANY(%s)",
                (list(EXPECTED),),
            ).fetchall()
        )
    assert suppressed["bounce@simulator.amazonses.com"] == "bounce"
    assert suppressed["complaint@simulator.amazonses.com"] == "complaint"
    assert "success@simulator.amazonses.com" not in suppressed
    assert "feedback_simulation_rejected" not in local_service.output()
