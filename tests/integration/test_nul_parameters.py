"""A NUL character in a query or path parameter is a 400 naming it, never a database 500."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.db.pool import Pool
from tests.integration.api_client import AUTH, api_client

# Every endpoint that takes a query or path parameter, with that parameter set to "%00x".
CASES = [
    ("GET", "/v1/suppressions?address=%00x", "address"),
    ("GET", "/v1/suppressions?after=%00x", "after"),
    ("DELETE", "/v1/suppressions/%00x", "email"),
    ("GET", "/v1/messages/%00x", "requestId"),
    ("DELETE", "/v1/messages/%00x", "requestId"),
    ("GET", "/v1/topics/%00x", "topicId"),
    ("POST", "/v1/topics/%00x/cancel", "topicId"),
    ("GET", "/v1/topics?cursor=%00x", "cursor"),
    ("GET", "/v1/topics?limit=%00x", "limit"),
    ("GET", "/v1/events/counts/sent?hours=%00x", "hours"),
]


@pytest.mark.parametrize(("method", "path", "parameter"), CASES)
async def test_nul_parameter_is_rejected(
    settings: Settings, pool: Pool, method: str, path: str, parameter: str
) -> None:
    async with api_client(settings, pool) as client:
        response = await client.request(method, path, headers=AUTH)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == parameter
    assert "NUL" in body["error"]


async def test_open_pixel_still_answers_a_gif(settings: Settings, pool: Pool) -> None:
    async with api_client(settings, pool) as client:
        response = await client.get("/v1/events/open?requestId=%00x")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
