"""An HTTP client on the real app and a real database, for the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.config import Settings
from service.db.pool import Pool
from tests.conftest import TEST_API_KEY

AUTH = {"x-api-key": TEST_API_KEY}


@asynccontextmanager
async def api_client(settings: Settings, pool: Pool) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(AppContext(settings, pool))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


async def row_counts(pool: Pool) -> tuple[int, int, int]:
    """Return how many rows events, emails and idempotency_keys hold."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM emails),"
            " (SELECT count(*) FROM idempotency_keys)"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def message(**fields: Any) -> dict[str, Any]:
    """Return one message of a request body in the recipe's shape, with `fields` changed."""
    body: dict[str, Any] = {
        "topicId": "promotion-2026",
        "emails": ["one@example.com", "two@example.com"],
        "subject": "Special promotion",
        "content": "<h1>Hello</h1>",
    }
    body.update(fields)
    return body
