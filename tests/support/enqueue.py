"""Putting emails in the due queue the way the API does, through `submit`."""

from __future__ import annotations

from datetime import datetime

from service.config import Settings
from service.db.pool import Pool
from service.sending.payloads import MessageIn, SubmitRequest
from service.sending.submit import Submitted, submit
from service.sending.validation import validate_submission


async def enqueue(
    pool: Pool,
    settings: Settings,
    recipients: list[str],
    *,
    topic_id: str = "news",
    subject: str = "Hello",
    html: str = "<p>Hi</p>",
    text: str | None = None,
    scheduled_at: datetime | None = None,
    **extra: object,
) -> list[str]:
    """Submit one message to `recipients` and return their request ids in order."""
    message = MessageIn(
        topic_id=topic_id,
        emails=recipients,
        subject=subject,
        content=html,
        text=text,
        scheduled_at=scheduled_at.isoformat() if scheduled_at else None,
        **extra,  # type: ignore[arg-type]
    )
    messages = validate_submission(SubmitRequest(messages=[message]), settings)
    async with pool.connection() as conn:
        submitted: Submitted = await submit(conn, messages)
    return [email.request_id for email in submitted.response.messages[0].requests]
