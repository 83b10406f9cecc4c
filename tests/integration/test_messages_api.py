"""POST, GET and DELETE /v1/messages and topic cancel over HTTP, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from service.config import Settings
from service.db.pool import Pool
from service.sending.submit import DUE_CHANNEL
from tests.integration.api_client import AUTH, api_client, message, row_counts


async def post_messages(
    settings: Settings, pool: Pool, body: Any, headers: dict[str, str] | None = None
) -> Any:
    async with api_client(settings, pool) as client:
        response = await client.post("/v1/messages", json=body, headers=AUTH | (headers or {}))
    assert response.status_code == 202, response.text
    return response.json()


async def set_status(pool: Pool, request_id: str, status: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE emails SET status = %s, due_at = NULL WHERE request_id = %s",
            (status, request_id),
        )


async def test_accepted_response_shape(settings: Settings, pool: Pool) -> None:
    """The 202 body has count, elapsed and one requestId per recipient, naming the recipient."""
    body = await post_messages(
        settings, pool, {"messages": [message(), message(emails=["x@example.com"])]}
    )
    assert body["count"] == 3
    assert body["elapsed"].endswith("ms")
    first, second = body["messages"]
    assert [r["email"] for r in first["requests"]] == ["one@example.com", "two@example.com"]
    assert [r["email"] for r in second["requests"]] == ["x@example.com"]
    request_ids = [r["requestId"] for m in body["messages"] for r in m["requests"]]
    assert len({uuid.UUID(r) for r in request_ids}) == 3
    assert first["topicId"] == "promotion-2026"
    assert first["status"] == "queued"
    assert first["duplicatesRemoved"] == 0
    assert await row_counts(pool) == (2 + 3, 3, 0)


async def test_duplicates_sent_once(settings: Settings, pool: Pool) -> None:
    """Addresses equal after normalisation (domain case) get one request id and one row."""
    emails = ["ann@Example.COM", "ann@example.com", "bob@example.com", "ann@EXAMPLE.com"]
    body = await post_messages(settings, pool, {"messages": [message(emails=emails)]})
    accepted = body["messages"][0]
    assert body["count"] == 2
    assert [r["email"] for r in accepted["requests"]] == ["ann@example.com", "bob@example.com"]
    assert accepted["duplicatesRemoved"] == 2
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT recipient FROM emails ORDER BY recipient")
        assert [row[0] for row in await cursor.fetchall()] == ["ann@example.com", "bob@example.com"]
        cursor = await conn.execute("SELECT count(*) FROM events WHERE type = 'EmailRequested'")
        assert await cursor.fetchone() == (2,)


async def test_local_part_case_is_kept(settings: Settings, pool: Pool) -> None:
    """Local parts differing in case are different addresses (RFC 5321) and both are sent."""
    body = await post_messages(
        settings, pool, {"messages": [message(emails=["Ann@example.com", "ann@example.com"])]}
    )
    assert body["count"] == 2


async def test_body_stored_once(settings: Settings, pool: Pool) -> None:
    """A message to 200 recipients stores its HTML in one event; the rows point at it."""
    marker = f"body-{uuid.uuid4().hex}"
    emails = [f"user{i}@example.com" for i in range(200)]
    html = f"<p>{marker}</p>" + "x" * 5000
    body = await post_messages(settings, pool, {"messages": [message(emails=emails, content=html)]})
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM events WHERE strpos(data::text, %s) > 0", (marker,)
        )
        assert await cursor.fetchone() == (1,)
        cursor = await conn.execute(
            "SELECT DISTINCT e.message_position, v.stream, v.type FROM emails e"
            " JOIN events v ON v.position = e.message_position"
        )
        rows = await cursor.fetchall()
    assert rows == [(rows[0][0], body["messages"][0]["messageId"], "MessageSubmitted")]


async def test_optional_fields_stored(settings: Settings, pool: Pool) -> None:
    """text, replyTo, tags, trackClicks and unsubscribe reach the MessageSubmitted event."""
    extra = {
        "text": "Hello",
        "replyTo": ["Help@Example.com"],
        "tags": {"campaign": "summer"},
        "trackClicks": True,
        "unsubscribe": True,
    }
    body = await post_messages(settings, pool, {"messages": [message(**extra)]})
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT data FROM events WHERE stream = %s", (body["messages"][0]["messageId"],)
        )
        row = await cursor.fetchone()
    assert row is not None
    data = row[0]
    assert data["text"] == "Hello"
    assert data["reply_to"] == ["Help@example.com"]
    assert data["tags"] == {"campaign": "summer"}
    assert data["track_clicks"] is True
    assert data["unsubscribe"] is True
    assert data["recipient_count"] == 2


async def test_past_scheduled_at_queued_now(settings: Settings, pool: Pool) -> None:
    """A scheduledAt in the past is queued and due at the submission time."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    body = await post_messages(
        settings, pool, {"messages": [message(scheduledAt="2021-03-04T05:06:07+09:00")]}
    )
    accepted = body["messages"][0]
    assert accepted["status"] == "queued"
    assert datetime.fromisoformat(accepted["dueAt"]) > before
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT DISTINCT status, due_at <= now() FROM emails")
        assert await cursor.fetchall() == [("queued", True)]


async def test_empty_scheduled_at_means_now(settings: Settings, pool: Pool) -> None:
    """An empty scheduledAt, as the recipe's clients send, is queued now."""
    body = await post_messages(settings, pool, {"messages": [message(scheduledAt="")]})
    assert body["messages"][0]["status"] == "queued"


async def test_future_scheduled_at_scheduled(settings: Settings, pool: Pool) -> None:
    """A future scheduledAt is scheduled with due_at at that time."""
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = await post_messages(
        settings, pool, {"messages": [message(scheduledAt=when.isoformat())]}
    )
    accepted = body["messages"][0]
    assert accepted["status"] == "scheduled"
    assert datetime.fromisoformat(accepted["dueAt"]) == when
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT DISTINCT status, due_at FROM emails")
        assert await cursor.fetchall() == [("scheduled", when)]
        cursor = await conn.execute("SELECT count(*) FROM events WHERE type = 'EmailScheduled'")
        assert await cursor.fetchone() == (2,)


async def test_due_notification_once(settings: Settings, pool: Pool, database_url: str) -> None:
    """One submission sends one NOTIFY on email_due carrying the earliest due time."""
    listener = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await listener.execute(f"LISTEN {DUE_CHANNEL}")
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = await post_messages(
            settings, pool, {"messages": [message(scheduledAt=later), message()]}
        )
        received = [n async for n in listener.notifies(timeout=0.5)]
    finally:
        await listener.close()
    assert len(received) == 1
    now_due = body["messages"][1]["dueAt"]
    assert datetime.fromisoformat(received[0].payload) == datetime.fromisoformat(now_due)


# --- Idempotency-Key ---------------------------------------------------------------------


async def test_idempotency_replay(settings: Settings, pool: Pool) -> None:
    """The same key and body returns the first response and writes nothing more."""
    key = {"Idempotency-Key": str(uuid.uuid4())}
    request = {"messages": [message()]}
    async with api_client(settings, pool) as client:
        first = await client.post("/v1/messages", json=request, headers=AUTH | key)
        counts = await row_counts(pool)
        second = await client.post("/v1/messages", json=request, headers=AUTH | key)
    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await row_counts(pool) == counts
    assert counts[2] == 1


async def test_idempotency_field_order_ignored(settings: Settings, pool: Pool) -> None:
    """The same body with its fields in another order still replays."""
    key = {"Idempotency-Key": "order-test"}
    forward = {"messages": [message()]}
    backward = {"messages": [dict(reversed(list(message().items())))]}
    async with api_client(settings, pool) as client:
        first = await client.post("/v1/messages", json=forward, headers=AUTH | key)
        second = await client.post("/v1/messages", json=backward, headers=AUTH | key)
    assert second.status_code == 202
    assert second.json() == first.json()


async def test_idempotency_different_body(settings: Settings, pool: Pool) -> None:
    """The same key with another body is a 409 naming the header; nothing more is written."""
    key = {"Idempotency-Key": "reused-key"}
    async with api_client(settings, pool) as client:
        await client.post("/v1/messages", json={"messages": [message()]}, headers=AUTH | key)
        counts = await row_counts(pool)
        other = {"messages": [message(subject="Another subject")]}
        response = await client.post("/v1/messages", json=other, headers=AUTH | key)
    assert response.status_code == 409
    error = response.json()
    assert error["field"] == "Idempotency-Key"
    assert "'reused-key'" in error["error"]
    assert "different request body" in error["error"]
    assert await row_counts(pool) == counts


async def test_idempotency_concurrent_requests(settings: Settings, pool: Pool) -> None:
    """Ten concurrent requests with one key write one batch and all get its response."""
    key = {"Idempotency-Key": "concurrent"}
    request = {"messages": [message(emails=[f"u{i}@example.com" for i in range(50)])]}
    async with api_client(settings, pool) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/messages", json=request, headers=AUTH | key) for _ in range(10))
        )
    assert [r.status_code for r in responses] == [202] * 10
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert await row_counts(pool) == (1 + 50, 50, 1)


# --- GET /v1/messages/{requestId} --------------------------------------------------------


async def test_get_status_and_timeline(settings: Settings, pool: Pool) -> None:
    """GET returns the row's status and the email's events in order."""
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()
    body = await post_messages(settings, pool, {"messages": [message(scheduledAt=when)]})
    request_id = body["messages"][0]["requests"][0]["requestId"]
    async with api_client(settings, pool) as client:
        response = await client.get(f"/v1/messages/{request_id}", headers=AUTH)
    assert response.status_code == 200
    email = response.json()
    assert email["requestId"] == request_id
    assert email["status"] == "scheduled"
    assert email["recipient"] == "one@example.com"
    assert email["messageId"] == body["messages"][0]["messageId"]
    assert [e["type"] for e in email["events"]] == ["EmailRequested", "EmailScheduled"]
    assert email["events"][0]["data"]["recipient"] == "one@example.com"
    assert email["events"][0]["position"] < email["events"][1]["position"]


async def test_get_unknown_and_malformed(settings: Settings, pool: Pool) -> None:
    """An unknown id is a 404; a malformed one is a 400 naming requestId and the value."""
    async with api_client(settings, pool) as client:
        missing = await client.get(f"/v1/messages/{uuid.uuid4()}", headers=AUTH)
        malformed = await client.get("/v1/messages/12345", headers=AUTH)
    assert missing.status_code == 404
    assert malformed.status_code == 400
    assert malformed.json()["field"] == "requestId"
    assert "'12345'" in malformed.json()["error"]


# --- DELETE /v1/messages/{requestId} -----------------------------------------------------


async def test_delete_cancels(settings: Settings, pool: Pool) -> None:
    """DELETE cancels a queued email: status cancelled, due_at cleared, EmailCancelled added."""
    body = await post_messages(settings, pool, {"messages": [message()]})
    request_id = body["messages"][0]["requests"][0]["requestId"]
    async with api_client(settings, pool) as client:
        deleted = await client.delete(f"/v1/messages/{request_id}", headers=AUTH)
        email = (await client.get(f"/v1/messages/{request_id}", headers=AUTH)).json()
        again = await client.delete(f"/v1/messages/{request_id}", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json() == {"requestId": request_id, "status": "cancelled"}
    assert email["status"] == "cancelled"
    assert email["dueAt"] is None
    assert email["events"][-1]["type"] == "EmailCancelled"
    assert email["events"][-1]["data"]["scope"] == "request"
    assert again.status_code == 409
    assert "cancelled" in again.json()["error"]


async def test_delete_scheduled(settings: Settings, pool: Pool) -> None:
    """A scheduled email can be cancelled too."""
    when = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = await post_messages(settings, pool, {"messages": [message(scheduledAt=when)]})
    request_id = body["messages"][0]["requests"][0]["requestId"]
    async with api_client(settings, pool) as client:
        response = await client.delete(f"/v1/messages/{request_id}", headers=AUTH)
    assert response.status_code == 200


@pytest.mark.parametrize("status", ["sending", "sent", "failed", "suppressed", "uncertain"])
async def test_delete_after_sending_conflicts(settings: Settings, pool: Pool, status: str) -> None:
    """An email no longer scheduled or queued is a 409 naming its status; nothing changes."""
    body = await post_messages(settings, pool, {"messages": [message()]})
    request_id = body["messages"][0]["requests"][0]["requestId"]
    await set_status(pool, request_id, status)
    counts = await row_counts(pool)
    async with api_client(settings, pool) as client:
        response = await client.delete(f"/v1/messages/{request_id}", headers=AUTH)
    assert response.status_code == 409
    assert f"is {status}" in response.json()["error"]
    assert await row_counts(pool) == counts


async def test_delete_unknown_and_malformed(settings: Settings, pool: Pool) -> None:
    """DELETE of an unknown id is a 404, of a malformed one a 400."""
    async with api_client(settings, pool) as client:
        missing = await client.delete(f"/v1/messages/{uuid.uuid4()}", headers=AUTH)
        malformed = await client.delete("/v1/messages/not-a-uuid", headers=AUTH)
    assert missing.status_code == 404
    assert malformed.status_code == 400
    assert malformed.json()["field"] == "requestId"


# --- POST /v1/topics/{topicId}/cancel ----------------------------------------------------


async def test_topic_cancel_counts_unsent(settings: Settings, pool: Pool) -> None:
    """Topic cancel cancels the topic's scheduled and queued emails only, and counts them."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = await post_messages(
        settings,
        pool,
        {
            "messages": [
                message(topicId="spring", emails=["a@example.com", "b@example.com"]),
                message(topicId="spring", emails=["c@example.com"], scheduledAt=later),
                message(topicId="autumn", emails=["d@example.com"]),
            ]
        },
    )
    sent_id = body["messages"][0]["requests"][0]["requestId"]
    await set_status(pool, sent_id, "sent")
    async with api_client(settings, pool) as client:
        response = await client.post("/v1/topics/spring/cancel", headers=AUTH)
        again = await client.post("/v1/topics/spring/cancel", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"topicId": "spring", "cancelled": 2}
    assert again.json() == {"topicId": "spring", "cancelled": 0}
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT topic_id, status, count(*) FROM emails GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert await cursor.fetchall() == [
            ("autumn", "queued", 1),
            ("spring", "cancelled", 2),
            ("spring", "sent", 1),
        ]
        cursor = await conn.execute(
            "SELECT count(*) FROM events WHERE type = 'EmailCancelled' AND data->>'scope' = 'topic'"
        )
        assert await cursor.fetchone() == (2,)


async def test_topic_cancel_invalid_topic(settings: Settings, pool: Pool) -> None:
    """An invalid topic id is a 400 naming topicId."""
    async with api_client(settings, pool) as client:
        response = await client.post(f"/v1/topics/{'x' * 129}/cancel", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["field"] == "topicId"


# --- Authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/messages"),
        ("GET", "/v1/messages/0b6e1c9e-4a5f-4d3b-9a57-2f6d1e8c4b21"),
        ("DELETE", "/v1/messages/0b6e1c9e-4a5f-4d3b-9a57-2f6d1e8c4b21"),
        ("POST", "/v1/topics/news/cancel"),
    ],
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_requires_api_key(
    settings: Settings, pool: Pool, method: str, path: str, key: str | None
) -> None:
    """Every endpoint is a 401 without the right x-api-key, and writes nothing."""
    headers = {} if key is None else {"x-api-key": key}
    body = {"messages": [message()]} if method == "POST" else None
    async with api_client(settings, pool) as client:
        response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["field"] == "x-api-key"
    assert await row_counts(pool) == (0, 0, 0)
