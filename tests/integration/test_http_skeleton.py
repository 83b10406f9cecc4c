"""The HTTP skeleton: health, readiness, the OpenAPI document and the API key guard."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.auth import require_api_key
from service.api.context import AppContext
from service.config import Settings
from service.db.pool import Pool, open_pool
from tests.conftest import TEST_API_KEY, make_settings


@get("/v1/probe", guards=[require_api_key], sync_to_thread=False)
def probe() -> dict[str, str]:
    return {"ok": "yes"}


def app_with_probe(context: AppContext) -> Litestar:
    app = create_app(context)
    app.register(probe)
    return app


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app_with_probe(AppContext(settings, pool))) as test_client:
        yield test_client


async def test_health(client: AsyncTestClient[Litestar]) -> None:
    """/health responds without a key."""
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_migrated(client: AsyncTestClient[Litestar]) -> None:
    """/ready is 200 once every migration is applied."""
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_before_migrate(tmp_path: Path, empty_database_url: str) -> None:
    """/ready is 503 on a database without the schema, and names the command to run."""
    pool = await open_pool(empty_database_url, name="t", min_size=1, max_size=2)
    try:
        app = create_app(AppContext(make_settings(tmp_path, empty_database_url), pool))
        async with AsyncTestClient(app) as client:
            response = await client.get("/ready")
    finally:
        await pool.close()
    assert response.status_code == 503
    assert "ses-sender migrate" in response.json()["reason"]


async def test_ready_when_database_down(settings: Settings, pool: Pool) -> None:
    """/ready is 503 when the pool cannot give a connection."""
    await pool.close()
    app = create_app(AppContext(settings, pool))
    async with AsyncTestClient(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["database"] is False


async def test_key_accepted(client: AsyncTestClient[Litestar]) -> None:
    """The configured key opens protected endpoints."""
    response = await client.get("/v1/probe", headers={"x-api-key": TEST_API_KEY})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
async def test_key_rejected(client: AsyncTestClient[Litestar], headers: dict[str, str]) -> None:
    """A missing or wrong key is a 401 JSON error naming the header."""
    response = await client.get("/v1/probe", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert body["field"] == "x-api-key"


async def test_no_configured_key_closes_everything(settings: Settings, pool: Pool) -> None:
    """Without API_KEY the protected endpoints answer 401, never open."""
    closed = dataclasses.replace(settings, api_key=None)
    async with AsyncTestClient(app_with_probe(AppContext(closed, pool))) as client:
        response = await client.get("/v1/probe", headers={"x-api-key": "anything"})
    assert response.status_code == 401
    assert "API_KEY is not configured" in response.json()["error"]


async def test_openapi_document(client: AsyncTestClient[Litestar]) -> None:
    """The OpenAPI document is served with the API key scheme."""
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    assert "/health" in document["paths"]


async def test_unknown_route_is_json(client: AsyncTestClient[Litestar]) -> None:
    """A 404 has the error shape too."""
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["status"] == 404
