"""The tracking secret: TRACKING_SECRET when set, else one generated once
and kept in the database.
"""

from __future__ import annotations

import secrets

from psycopg import AsyncConnection

from service.config import Settings

# ON CONFLICT DO NOTHING waits for a concurrent insert to commit or roll back, so when two
# processes start at once, one row wins and the SELECT that follows reads it in both.
_INSERT = "INSERT INTO tracking_secret (secret) VALUES (%s) ON CONFLICT (id) DO NOTHING"
_SELECT = "SELECT secret FROM tracking_secret WHERE id"


async def stored_secret(conn: AsyncConnection[tuple[object, ...]]) -> str:
    """Return the secret kept in the database, generating and storing it on first use."""
    async with conn.transaction():
        await conn.execute(_INSERT, (secrets.token_urlsafe(32),))
        cursor = await conn.execute(_SELECT)
        row = await cursor.fetchone()
    assert row is not None, "tracking_secret row missing right after insert"
    return str(row[0])


async def tracking_key(conn: AsyncConnection[tuple[object, ...]], settings: Settings) -> bytes:
    """Return the HMAC key for tracking tokens as bytes."""
    if settings.tracking_secret is not None:
        return settings.tracking_secret.reveal().encode()
    return (await stored_secret(conn)).encode()
