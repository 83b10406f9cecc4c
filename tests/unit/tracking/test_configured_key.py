"""With TRACKING_SECRET set, tokens are checked without touching the database."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.api.app import create_app
from service.api.context import AppContext
from service.config import Settings
from service.secret import Secret
from service.tracking import tokens

SECRET = "configured-secret-0123456789"


async def test_configured_key_needs_no_database(tmp_path: Path) -> None:
    """Token checks work in an app that has no database pool at all."""
    settings = Settings(database_url=None, data_dir=tmp_path, tracking_secret=Secret(SECRET))
    app = create_app(AppContext(settings, None))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    request_id = "7b4e2c1a-3c43-4f5e-9a9f-2d3e4f5a6b7c"
    forged = tokens.sign(b"another-secret-0123456789", "unsubscribe", request_id)
    genuine = tokens.sign(SECRET.encode(), "unsubscribe", request_id)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        rejected = await client.get(f"/v1/unsubscribe?token={forged}")
        accepted = await client.get(f"/v1/unsubscribe?token={genuine}")
    assert rejected.status_code == 404
    assert accepted.status_code == 200
    assert '<form method="post"' in accepted.text
