"""The statistics endpoints on the real app, over read models built from appended events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from projections.fields import hour_of
from service.api.app import create_app
from service.api.context import AppContext
from service.config import Settings
from service.db.pool import Pool
from service.events.store import NewEvent, append
from service.events.types import (
    EmailBounced,
    EmailCancelled,
    EmailComplained,
    EmailDelivered,
    EmailOpened,
    EmailRequested,
    EmailSendFailed,
    EmailSent,
    Event,
)
from tests.conftest import TEST_API_KEY
from tests.integration.test_projections import project_all

AUTH = {"x-api-key": TEST_API_KEY}
NOW = datetime.now(UTC)


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(AppContext(settings, pool))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


def requested(request_id: str, topic: str, at: datetime) -> NewEvent:
    event = EmailRequested(
        request_id=request_id, message_id="m", topic_id=topic,
        recipient=f"{request_id}@example.com", scheduled_at=at,
    )
    return NewEvent(request_id, event, occurred_at=at)


def sent(request_id: str, topic: str, at: datetime) -> NewEvent:
    event = EmailSent(request_id=request_id, topic_id=topic, ses_message_id=f"ses-{request_id}",
                      attempt=1)
    return NewEvent(request_id, event, occurred_at=at)


def feedback(request_id: str, event: Event, at: datetime) -> NewEvent:
    return NewEvent(request_id, event, occurred_at=at)


def link(request_id: str) -> dict[str, Any]:
    return {"ses_message_id": f"ses-{request_id}", "recipient": "x@example.com",
            "request_id": request_id, "topic_id": "promo"}


async def seed(pool: Pool) -> None:
    """Six emails of topic promo with known outcomes, and one of topic other."""
    hour_ago = NOW - timedelta(hours=1)
    events = [requested(f"r{i}", "promo", NOW - timedelta(hours=3)) for i in range(1, 7)]
    events += [
        sent("r1", "promo", hour_ago),
        feedback("r1", EmailDelivered(**link("r1")), NOW),
        feedback("r1", EmailOpened(request_id="r1"), NOW),
        feedback("r1", EmailOpened(request_id="r1", machine=True, proxy="gmail"), NOW),
        feedback("r1", EmailOpened(request_id="r1", duplicate=True), NOW),
        sent("r2", "promo", hour_ago),
        feedback("r2", EmailBounced(**link("r2"), bounce_type="Permanent"), NOW),
        feedback("r3", EmailCancelled(request_id="r3", topic_id="promo"), NOW),
        sent("r5", "promo", NOW),
        feedback("r5", EmailDelivered(**link("r5")), NOW),
        feedback("r5", EmailComplained(**link("r5")), NOW),
        feedback("r6", EmailSendFailed(request_id="r6", topic_id="promo", attempt=3,
                                       error_code="MessageRejected", error_message="no",
                                       permanent=True), NOW),
        requested("o1", "other", NOW - timedelta(hours=30)),
        sent("o1", "other", NOW - timedelta(hours=30)),
    ]
    async with pool.connection() as conn, conn.transaction():
        await append(conn, events)
    await project_all(pool)


async def test_topic_statistics(pool: Pool, client: AsyncTestClient[Any]) -> None:
    """The recipe parts, the counts and the rates of a topic with known outcomes."""
    await seed(pool)
    response = await client.get("/v1/topics/promo", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["topicId"] == "promo"
    assert body["request"] == {"total": 6, "created": 1, "sent": 3, "failed": 1, "stopped": 1}
    assert body["result"] == {
        "total": 5,
        "statuses": {"Delivery": 2, "Bounce": 1, "Complaint": 1, "Reject": 0,
                     "DeliveryDelay": 0, "Rendering Failure": 0, "Open": 1, "Click": 0},
    }
    counts = body["counts"]
    assert counts["openedTotal"] == 2
    assert counts["openedMachine"] == 1
    assert counts["openedUnique"] == 1
    assert counts["bouncedHard"] == 1
    assert counts["pending"] == 1
    assert body["rates"] == {"delivery": 0.666667, "bounce": 0.333333, "complaint": 0.333333,
                             "uniqueOpen": 0.5}
    assert body["firstActivityAt"] < body["lastActivityAt"]


async def test_topic_shape_without_feedback(pool: Pool, client: AsyncTestClient[Any]) -> None:
    """A topic with no feedback yet has the same keys, zero counts and null rates."""
    async with pool.connection() as conn, conn.transaction():
        await append(conn, [requested("n1", "new", NOW)])
    await project_all(pool)
    body = (await client.get("/v1/topics/new", headers=AUTH)).json()
    assert body["request"] == {"total": 1, "created": 1, "sent": 0, "failed": 0, "stopped": 0}
    assert body["result"]["total"] == 0
    assert set(body["result"]["statuses"]) == {"Delivery", "Bounce", "Complaint", "Reject",
                                               "DeliveryDelay", "Rendering Failure", "Open",
                                               "Click"}
    assert body["rates"] == {"delivery": None, "bounce": None, "complaint": None,
                             "uniqueOpen": None}


async def test_unknown_topic_is_404(client: AsyncTestClient[Any]) -> None:
    """A topic never seen is not found, with the field named."""
    response = await client.get("/v1/topics/nothing-here", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["field"] == "topicId"


async def test_statistics_need_api_key(client: AsyncTestClient[Any]) -> None:
    """Every statistics endpoint rejects a request without the key."""
    for path in ("/v1/topics/promo", "/v1/topics", "/v1/events/counts/sent"):
        response = await client.get(path)
        assert response.status_code == 401, path


async def test_topics_listed_newest_first(pool: Pool, client: AsyncTestClient[Any]) -> None:
    """Pages follow each other without overlap, newest topic first."""
    events = [requested(f"t{i}", f"topic-{i}", NOW - timedelta(minutes=i)) for i in range(5)]
    async with pool.connection() as conn, conn.transaction():
        await append(conn, events)
    await project_all(pool)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/v1/topics", headers=AUTH, params=params)).json()
        seen.extend(topic["topicId"] for topic in body["topics"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"topic-{i}" for i in range(5)]


@pytest.mark.parametrize("value", ["0", "201", "ten", "-1"])
async def test_topics_limit_bounds(client: AsyncTestClient[Any], value: str) -> None:
    """A page size outside 1 to 200 is rejected, naming the value."""
    response = await client.get("/v1/topics", headers=AUTH, params={"limit": value})
    assert response.status_code == 400
    assert response.json()["field"] == "limit"
    assert repr(value) in response.json()["error"]


async def test_topics_bad_cursor(client: AsyncTestClient[Any]) -> None:
    """A cursor that was not returned by the API is rejected."""
    response = await client.get("/v1/topics", headers=AUTH, params={"cursor": "%%%"})
    assert response.status_code == 400
    assert response.json()["field"] == "cursor"


async def test_sent_counts(pool: Pool, client: AsyncTestClient[Any]) -> None:
    """Sends per hour over the default 24 hours, counted in the hour they happened."""
    await seed(pool)
    response = await client.get("/v1/events/counts/sent", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["hours"] == 24
    assert body["count"] == 3
    assert len(body["series"]) == 24
    by_hour = {datetime.fromisoformat(p["hour"]): p["count"] for p in body["series"]}
    assert by_hour[hour_of(NOW)] == 1
    assert by_hour[hour_of(NOW - timedelta(hours=1))] == 2
    assert body["since"] == body["series"][0]["hour"]
    assert sum(point["count"] for point in body["series"]) == body["count"]


async def test_sent_counts_longer_window(pool: Pool, client: AsyncTestClient[Any]) -> None:
    """A 48-hour window includes the send of 30 hours ago."""
    await seed(pool)
    body = (await client.get("/v1/events/counts/sent", headers=AUTH,
                             params={"hours": "48"})).json()
    assert body["count"] == 4
    assert len(body["series"]) == 48


@pytest.mark.parametrize("value", ["0", "169", "abc", "1.5"])
async def test_sent_counts_hours_bounds(client: AsyncTestClient[Any], value: str) -> None:
    """hours outside 1 to 168 is a 400 that names the value."""
    response = await client.get("/v1/events/counts/sent", headers=AUTH, params={"hours": value})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "hours"
    assert repr(value) in body["error"]


@pytest.mark.parametrize("value", ["1", "168"])
async def test_sent_counts_hours_limits_accepted(client: AsyncTestClient[Any], value: str) -> None:
    """The bounds themselves are accepted."""
    response = await client.get("/v1/events/counts/sent", headers=AUTH, params={"hours": value})
    assert response.status_code == 200
    assert len(response.json()["series"]) == int(value)
