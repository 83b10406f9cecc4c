"""The tracking endpoints over HTTP: pixel, tracked links and unsubscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from litestar import Litestar

from service.api.app import create_app
from service.api.context import AppContext
from service.api.tracking import open_buffer_lifespan
from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailClicked, EmailOpened, EmailUnsubscribed
from service.secret import Secret
from service.suppression import is_suppressed
from service.tracking import tokens
from service.tracking.pages import PIXEL_GIF
from service.tracking.personalize import click_url, personalize, unsubscribe_url
from tests.conftest import make_settings
from tests.integration.tracking.helpers import insert_sent_email

SECRET = "tracking-secret-for-tests-0123456789"
KEY = SECRET.encode()
HOST = "https://mail.example.com"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"

Client = httpx.AsyncClient


@pytest.fixture
def app(pool: Pool, tmp_path: Path, database_url: str) -> Litestar:
    settings = make_settings(
        tmp_path, database_url, tracking_secret=Secret(SECRET), server_host=HOST
    )
    return create_app(AppContext(settings, pool))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[Client]:
    # The app runs in the test's event loop, and the open buffer is started here by hand.
    # Litestar's test client would run the lifespan in a thread with its own event loop,
    # away from the pool's.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        open_buffer_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client,
    ):
        yield test_client


async def _sent_email(pool: Pool, recipient: str = "reader@example.com") -> str:
    async with pool.connection() as conn, conn.transaction():
        return await insert_sent_email(conn, recipient=recipient)


async def _events(pool: Pool, request_id: str, kind: type) -> list[object]:
    async with pool.connection() as conn:
        stored = await read_stream(conn, request_id)
    return [item.event for item in stored if isinstance(item.event, kind)]


async def _wait_for_events(pool: Pool, request_id: str, kind: type) -> list[object]:
    """Return the events once some are stored: pixel opens are written in batches."""
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        events = await _events(pool, request_id, kind)
        if events:
            return events
        await asyncio.sleep(0.02)
    return []


async def _event_count(pool: Pool) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM events")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _path(url: str) -> str:
    return url.removeprefix(HOST)


# --- pixel ---------------------------------------------------------------------------------


def _assert_pixel(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert len(response.content) == 43
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"


async def test_pixel_valid_token_records_open(client: Client, pool: Pool) -> None:
    """A valid token gets the GIF and one EmailOpened with the agent."""
    request_id = await _sent_email(pool)
    html = personalize(
        "<body></body>", request_id, track_clicks=False, unsubscribe=False, key=KEY,
        server_host=HOST,
    ).html
    assert html is not None
    pixel_url = html.split('src="')[1].split('"')[0]
    response = await client.get(_path(pixel_url), headers={"user-agent": IPHONE})
    _assert_pixel(response)
    (opened,) = await _wait_for_events(pool, request_id, EmailOpened)
    assert isinstance(opened, EmailOpened)
    assert opened.user_agent == IPHONE
    assert opened.source == "pixel"
    assert opened.topic_id == "newsletter"
    assert opened.machine is False


async def test_pixel_without_buffer_writes_directly(
    client: Client, app: Litestar, pool: Pool
) -> None:
    """An app whose open buffer is not running records each open in its own transaction."""
    request_id = await _sent_email(pool)
    app.state.pop("open_buffer")
    token = tokens.sign(KEY, "open", request_id)
    _assert_pixel(await client.get(f"/v1/events/open?requestId={token}"))
    (opened,) = await _events(pool, request_id, EmailOpened)
    assert opened.source == "pixel"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "query",
    ["", "?requestId=", "?requestId=garbage", "?requestId=" + "A" * 43, "?other=1"],
)
async def test_pixel_invalid_token_still_gif(client: Client, pool: Pool, query: str) -> None:
    """Missing and invalid tokens get the same GIF and record nothing."""
    before = await _event_count(pool)
    response = await client.get(f"/v1/events/open{query}")
    _assert_pixel(response)
    assert await _event_count(pool) == before


async def test_pixel_rejects_other_purpose_token(client: Client, pool: Pool) -> None:
    """An unsubscribe token in the pixel URL records no open, while a valid one after it does."""
    request_id = await _sent_email(pool)
    token = tokens.sign(KEY, "unsubscribe", request_id)
    _assert_pixel(await client.get(f"/v1/events/open?requestId={token}"))
    valid = tokens.sign(KEY, "open", request_id)
    _assert_pixel(await client.get(f"/v1/events/open?requestId={valid}"))
    # The valid open is written after the rejected request, so one event means none for it.
    assert len(await _wait_for_events(pool, request_id, EmailOpened)) == 1
    await asyncio.sleep(0.1)
    assert len(await _events(pool, request_id, EmailOpened)) == 1


# --- clicks --------------------------------------------------------------------------------


async def test_click_redirects_to_signed_target(client: Client, pool: Pool) -> None:
    """A valid click token records the click and redirects to its own target only."""
    request_id = await _sent_email(pool)
    target = "https://example.com/offer?a=1&b=2"
    url = click_url(KEY, HOST, request_id, target)
    response = await client.get(
        _path(url) + "&url=https://evil.example/&next=https://evil.example/",
        headers={"user-agent": IPHONE},
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"] == target
    (clicked,) = await _events(pool, request_id, EmailClicked)
    assert isinstance(clicked, EmailClicked)
    assert clicked.link == target
    assert clicked.source == "link"


@pytest.mark.parametrize(
    "token",
    ["", "bogus", "A" * 60],
)
async def test_click_invalid_token_is_404(client: Client, pool: Pool, token: str) -> None:
    """An invalid token gets a 404 page and no redirect."""
    before = await _event_count(pool)
    response = await client.get(
        f"/v1/events/click?token={token}&url={quote('https://evil.example/')}",
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "not valid" in response.text
    assert await _event_count(pool) == before


async def test_click_forged_target_is_404(client: Client, pool: Pool) -> None:
    """A token whose target was swapped for another URL is a 404."""
    request_id = await _sent_email(pool)
    genuine = tokens.sign(KEY, "click", request_id, "https://example.com/")
    forged = tokens.sign(b"attacker-key-0123456789", "click", request_id, "https://evil.example/")
    spliced = genuine[:43] + forged[43:]
    for token in (forged, spliced):
        response = await client.get(f"/v1/events/click?token={token}", follow_redirects=False)
        assert response.status_code == 404
        assert "location" not in response.headers
    assert await _events(pool, request_id, EmailClicked) == []


async def test_click_open_token_is_404(client: Client, pool: Pool) -> None:
    """An open token is not accepted as a click token."""
    request_id = await _sent_email(pool)
    token = tokens.sign(KEY, "open", request_id)
    response = await client.get(f"/v1/events/click?token={token}", follow_redirects=False)
    assert response.status_code == 404


# --- unsubscribe ---------------------------------------------------------------------------


async def test_unsubscribe_get_changes_nothing(client: Client, pool: Pool) -> None:
    """GET shows a page with a POST button and neither suppresses nor records."""
    request_id = await _sent_email(pool)
    url = unsubscribe_url(KEY, HOST, request_id)
    before = await _event_count(pool)
    response = await client.get(_path(url))
    assert response.status_code == 200
    assert '<form method="post"' in response.text
    token = url.split("token=")[1]
    assert f'action="?token={token}"' in response.text
    assert await _event_count(pool) == before
    async with pool.connection() as conn:
        assert not await is_suppressed(conn, "reader@example.com")


async def test_one_click_post_suppresses(client: Client, pool: Pool) -> None:
    """The RFC 8058 POST records EmailUnsubscribed and suppresses the address, once."""
    request_id = await _sent_email(pool, recipient="reader@example.com")
    url = _path(unsubscribe_url(KEY, HOST, request_id))
    for _ in range(2):
        response = await client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert "Unsubscribed" in response.text
    (event,) = await _events(pool, request_id, EmailUnsubscribed)
    assert isinstance(event, EmailUnsubscribed)
    assert event.source == "one_click"
    assert event.recipient == "reader@example.com"
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT address, reason FROM suppressions")
        assert await cursor.fetchall() == [("reader@example.com", "unsubscribe")]


async def test_one_click_multipart_post(client: Client, pool: Pool) -> None:
    """The multipart/form-data body that RFC 8058 recommends works too."""
    request_id = await _sent_email(pool)
    url = _path(unsubscribe_url(KEY, HOST, request_id))
    response = await client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    (event,) = await _events(pool, request_id, EmailUnsubscribed)
    assert event.source == "one_click"  # type: ignore[attr-defined]


async def test_form_button_post_suppresses(client: Client, pool: Pool) -> None:
    """The confirmation page's button unsubscribes with source link."""
    request_id = await _sent_email(pool)
    url = _path(unsubscribe_url(KEY, HOST, request_id))
    response = await client.post(url, data={"confirm": "yes"})
    assert response.status_code == 200
    (event,) = await _events(pool, request_id, EmailUnsubscribed)
    assert event.source == "link"  # type: ignore[attr-defined]
    async with pool.connection() as conn:
        assert await is_suppressed(conn, "reader@example.com")


async def test_unsubscribe_forged_token_is_404(client: Client, pool: Pool) -> None:
    """A forged or open token cannot unsubscribe anyone."""
    request_id = await _sent_email(pool)
    for token in ("bogus", tokens.sign(KEY, "open", request_id)):
        response = await client.post(
            f"/v1/unsubscribe?token={token}", content=b"List-Unsubscribe=One-Click"
        )
        assert response.status_code == 404
        page = await client.get(f"/v1/unsubscribe?token={token}")
        assert page.status_code == 404
    async with pool.connection() as conn:
        assert not await is_suppressed(conn, "reader@example.com")


async def test_tracking_routes_in_openapi_without_key(client: Client) -> None:
    """The tracking endpoints are documented and need no API key."""
    schema = (await client.get("/schema/openapi.json")).json()
    for path, method in (
        ("/v1/events/open", "get"),
        ("/v1/events/click", "get"),
        ("/v1/unsubscribe", "get"),
        ("/v1/unsubscribe", "post"),
    ):
        operation = schema["paths"][path][method]
        assert not operation.get("security")
    parameters = schema["paths"]["/v1/events/open"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["requestId"]
