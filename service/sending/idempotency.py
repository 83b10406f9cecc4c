"""Idempotency keys: a retried submission with the same key and body gets the first response.

The key row is inserted first, inside the submission's transaction. Its primary key makes a
second transaction with the same key wait until the first commits or rolls back, so two
concurrent requests never both write their emails. After the wait, the later request
replays the stored response, or gets a conflict when its body differs. If the first
transaction rolled back, the later one proceeds as if it were first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import msgspec
from psycopg import AsyncConnection

from service.sending.errors import InvalidRequest
from service.sending.payloads import SubmitRequest
from service.sending.validation import shown

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Expired keys removed per keyed request; enough to keep up with any request rate.
_PRUNE_BATCH = 100

_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    body_hash: bytes
    ttl: timedelta = timedelta(hours=24)
    """How long the key is remembered; a key older than this is used afresh."""


@dataclass(frozen=True)
class StoredResponse:
    body_hash: bytes
    status: int
    body: bytes


def check_key(value: str) -> str:
    """Validate an Idempotency-Key header: 1 to 255 printable ASCII characters."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in value):
        raise InvalidRequest(
            f"{HEADER} {shown(value)} is invalid: use 1 to {MAX_KEY_LENGTH} printable ASCII "
            f"characters without spaces, such as a UUID.",
            HEADER,
        )
    return value


def body_hash(request: SubmitRequest) -> bytes:
    """Return the SHA-256 of the request in canonical JSON, so field order does not matter."""
    return hashlib.sha256(_encoder.encode(request)).digest()


# A key older than its time to live is taken over as if new. A fresh one is left alone, and
# RETURNING then yields no row. Either way the row ends up locked by this transaction, and
# if another transaction holds it, this statement waits for that one to end first.
_CLAIM = """
INSERT INTO idempotency_keys AS k (key, body_hash)
VALUES (%(key)s, %(hash)s)
ON CONFLICT (key) DO UPDATE
    SET body_hash = EXCLUDED.body_hash, response_status = NULL, response_body = NULL,
        created_at = now()
    WHERE k.created_at < now() - %(ttl)s
RETURNING true
"""

_STORED = "SELECT body_hash, response_status, response_body FROM idempotency_keys WHERE key = %s"

_STORE = """
UPDATE idempotency_keys SET response_status = %s, response_body = %s WHERE key = %s
"""

# SKIP LOCKED: a key another transaction is using or pruning is left for later.
_PRUNE = """
DELETE FROM idempotency_keys
WHERE key IN (
    SELECT key FROM idempotency_keys
    WHERE created_at < now() - %s
    ORDER BY created_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""


async def claim(
    conn: AsyncConnection[tuple[object, ...]], key: IdempotencyKey
) -> StoredResponse | None:
    """Claim `key` for this transaction; return the stored response if it was used already."""
    cursor = await conn.execute(
        _CLAIM, {"key": key.key, "hash": key.body_hash, "ttl": key.ttl}
    )
    if await cursor.fetchone() is not None:
        return None
    cursor = await conn.execute(_STORED, (key.key,))
    row = await cursor.fetchone()
    # The conflicting row was committed (the claim waited for it) and is locked by the claim.
    assert row is not None
    stored_hash, status, body = row
    assert isinstance(stored_hash, bytes)
    assert isinstance(status, int)
    assert isinstance(body, bytes)
    return StoredResponse(stored_hash, status, body)


async def store(
    conn: AsyncConnection[tuple[object, ...]], key: IdempotencyKey, status: int, body: bytes
) -> None:
    """Record the response of a claimed key, and prune a few expired keys."""
    await conn.execute(_STORE, (status, body, key.key))
    await conn.execute(_PRUNE, (key.ttl, _PRUNE_BATCH))
