"""`/v1/suppressions` over HTTP against real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.config import Settings
from service.db.pool import Pool
from tests.conftest import TEST_API_KEY
from tests.integration.feedback_support import event_types

KEY = {"x-api-key": TEST_API_KEY}


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(AppContext(settings, pool))) as test_client:
        yield test_client


async def test_add_list_remove(client: AsyncTestClient[Any], pool: Pool) -> None:
    added = await client.post(
        "/v1/suppressions",
        json={"address": "Alice@Example.COM", "reason": "manual", "note": "asked by phone"},
        headers=KEY,
    )
    assert added.status_code == 201
    assert added.json() == {"address": "Alice@example.com", "added": True}

    listed = await client.get("/v1/suppressions", headers=KEY)
    entries = listed.json()["suppressions"]
    assert [(e["address"], e["reason"], e["note"]) for e in entries] == [
        ("Alice@example.com", "manual", "asked by phone")
    ]

    removed = await client.delete("/v1/suppressions/Alice@EXAMPLE.com", headers=KEY)
    assert removed.status_code == 204
    assert (await client.get("/v1/suppressions", headers=KEY)).json()["suppressions"] == []
    assert await event_types(pool, "recipient:Alice@example.com") == [
        "RecipientSuppressed",
        "RecipientUnsuppressed",
    ]


async def test_add_twice_reports_existing(client: AsyncTestClient[Any]) -> None:
    body = {"address": "bob@example.com"}
    assert (await client.post("/v1/suppressions", json=body, headers=KEY)).status_code == 201
    again = await client.post("/v1/suppressions", json=body, headers=KEY)
    assert again.status_code == 200
    assert again.json()["added"] is False


async def test_remove_unknown_is_404(client: AsyncTestClient[Any]) -> None:
    response = await client.delete("/v1/suppressions/nobody@example.com", headers=KEY)
    assert response.status_code == 404
    assert "nobody@example.com" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"address": "not an address"}, "address"),
        ({"address": "a@example.com", "reason": "boredom"}, "reason"),
        ({"address": "a@example.com", "note": "x" * 1001}, "note"),
    ],
)
async def test_invalid_input_is_400(
    client: AsyncTestClient[Any], body: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/suppressions", json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_filter_and_pages(client: AsyncTestClient[Any]) -> None:
    for name in ("ann", "bea", "cid", "dan", "eve"):
        await client.post("/v1/suppressions", json={"address": f"{name}@example.com"}, headers=KEY)
    await client.post("/v1/suppressions", json={"address": "zed@other.org"}, headers=KEY)

    first = (await client.get("/v1/suppressions?limit=2", headers=KEY)).json()
    assert [e["address"] for e in first["suppressions"]] == ["ann@example.com", "bea@example.com"]
    second = (
        await client.get(f"/v1/suppressions?limit=2&after={first['nextAfter']}", headers=KEY)
    ).json()
    assert [e["address"] for e in second["suppressions"]] == ["cid@example.com", "dan@example.com"]

    filtered = (await client.get("/v1/suppressions?address=OTHER.org", headers=KEY)).json()
    assert [e["address"] for e in filtered["suppressions"]] == ["zed@other.org"]
    assert filtered["nextAfter"] is None

    wildcard = (await client.get("/v1/suppressions?address=%25", headers=KEY)).json()
    assert wildcard["suppressions"] == []


async def test_api_key_required(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/v1/suppressions")).status_code == 401
    assert (await client.post("/v1/suppressions", json={"address": "a@b.com"})).status_code == 401
    assert (await client.delete("/v1/suppressions/a@b.com")).status_code == 401
