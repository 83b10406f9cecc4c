"""Uncertain emails: sends whose dispatcher died mid-call, so SES may or may not have them.

They are never resent on their own unless RESEND_UNCERTAIN_AFTER is set; operators list
them and resend chosen ones (or all) with `ses-sender uncertain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection

from service.events.store import NewEvent, append
from service.events.types import EmailRequeued

Connection = AsyncConnection[tuple[object, ...]]


@dataclass(frozen=True)
class UncertainEmail:
    request_id: str
    topic_id: str
    recipient: str
    attempt: int
    since: datetime


async def list_uncertain(conn: Connection, limit: int = 1000) -> list[UncertainEmail]:
    """Return uncertain emails, oldest first."""
    cursor = await conn.execute(
        """
        SELECT request_id::text, topic_id, recipient, attempt, updated_at
        FROM emails
        WHERE status = 'uncertain'
        ORDER BY updated_at
        LIMIT %s
        """,
        (limit,),
    )
    return [UncertainEmail(*row) for row in await cursor.fetchall()]  # type: ignore[arg-type]


async def resend(
    conn: Connection,
    request_ids: Sequence[str] | None = None,
    *,
    older_than: float | None = None,
) -> list[str]:
    """Queue uncertain emails to be sent again; return the request ids queued.

    `request_ids` None means every uncertain email; `older_than` (seconds) keeps those
    uncertain for at least that long. Emails that are not uncertain are left alone.
    """
    async with conn.transaction():
        cursor = await conn.execute(
            """
            UPDATE emails
            SET status = 'queued', due_at = now(), claimed_by = NULL, updated_at = now()
            WHERE status = 'uncertain'
              AND (%(ids)s::uuid[] IS NULL OR request_id = ANY(%(ids)s::uuid[]))
              AND (%(age)s::float8 IS NULL
                   OR updated_at <= now() - make_interval(secs => %(age)s::float8))
            RETURNING request_id::text, topic_id
            """,
            {"ids": list(request_ids) if request_ids is not None else None, "age": older_than},
        )
        rows = await cursor.fetchall()
        reason: Literal["operator", "grace_period"] = (
            "grace_period" if older_than is not None else "operator"
        )
        await append(
            conn,
            [
                NewEvent(str(request_id), EmailRequeued(
                    request_id=str(request_id), topic_id=str(topic_id), reason=reason))
                for request_id, topic_id in rows
            ],
        )
        if rows:
            await conn.execute("SELECT pg_notify('email_due', '')")
    return [str(row[0]) for row in rows]
