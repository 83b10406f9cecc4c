"""The suppression list: addresses that are never sent to again.

Each change appends an event (stream `recipient:<address>`) and updates the `suppressions`
table in the caller's transaction, so the table always agrees with the log.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from service.addresses import InvalidAddress, normalize_address
from service.events.store import NewEvent, append
from service.events.types import RecipientSuppressed, RecipientUnsuppressed, SuppressionReason


def suppression_key(address: str) -> str:
    """Return the form addresses are compared in: the domain is case-insensitive, the local
    part is kept as given (RFC 5321), internationalised domains in punycode."""
    try:
        return normalize_address(address)
    except InvalidAddress:
        local, _, domain = address.strip().rpartition("@")
        return f"{local}@{domain.lower()}" if local else address.strip()


def stream_of(address: str) -> str:
    return f"recipient:{suppression_key(address)}"


async def suppress(
    conn: AsyncConnection[tuple[object, ...]],
    address: str,
    reason: SuppressionReason,
    *,
    request_id: str | None = None,
    note: str | None = None,
    occurred_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Add `address` to the list; return False when it was already on it (nothing appended)."""
    key = suppression_key(address)
    cursor = await conn.execute(
        """
        INSERT INTO suppressions (address, reason, request_id, note)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (address) DO NOTHING
        """,
        (key, reason, request_id, note),
    )
    if cursor.rowcount == 0:
        return False
    event = RecipientSuppressed(address=key, reason=reason, request_id=request_id, note=note)
    await append(conn, [NewEvent(f"recipient:{key}", event, occurred_at, dedupe_key)])
    return True


async def unsuppress(
    conn: AsyncConnection[tuple[object, ...]], address: str, *, note: str | None = None
) -> bool:
    """Remove `address` from the list; return False when it was not on it."""
    key = suppression_key(address)
    cursor = await conn.execute("DELETE FROM suppressions WHERE address = %s", (key,))
    if cursor.rowcount == 0:
        return False
    event = RecipientUnsuppressed(address=key, note=note)
    await append(conn, [NewEvent(f"recipient:{key}", event)])
    return True


async def is_suppressed(conn: AsyncConnection[tuple[object, ...]], address: str) -> bool:
    cursor = await conn.execute(
        "SELECT 1 FROM suppressions WHERE address = %s", (suppression_key(address),)
    )
    return await cursor.fetchone() is not None
