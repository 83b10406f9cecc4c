"""POST /v1/messages validation: each rule's error body, and nothing written on any 4xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.db.pool import Pool
from tests.conftest import make_settings
from tests.integration.api_client import AUTH, api_client, message, row_counts

LONG_TOPIC = "t" * 129

# (case id, request body, settings overrides, extra headers, status, field, words in the error)
CASES: list[tuple[str, Any, dict[str, Any], dict[str, str], int, str | None, list[str]]] = [
    ("no messages", {"messages": []}, {}, {}, 400, "messages", ["empty"]),
    (
        "no emails",
        {"messages": [message(emails=[])]},
        {}, {}, 400, "messages[0].emails", ["empty"],
    ),
    (
        "bad address",
        {"messages": [message(emails=["ok@example.com", "not-an-address"])]},
        {}, {}, 400, "messages[0].emails[1]", ["'not-an-address'", "not a valid email"],
    ),
    (
        "non-ascii local part",
        {"messages": [message(emails=["josé@example.com"])]},
        {}, {}, 400, "messages[0].emails[0]", ["'josé@example.com'", "SES does not accept"],
    ),
    (
        "empty subject",
        {"messages": [message(subject="  ")]},
        {}, {}, 400, "messages[0].subject", ["empty"],
    ),
    (
        "subject line break",
        {"messages": [message(subject="Hi\r\nBcc: x@example.com")]},
        {}, {}, 400, "messages[0].subject", ["line break"],
    ),
    (
        "subject too long",
        {"messages": [message(subject="123456")]},
        {"max_subject_length": 5}, {}, 400, "messages[0].subject", ["6 characters", "5"],
    ),
    (
        "missing content",
        {"messages": [{k: v for k, v in message().items() if k != "content"}]},
        {}, {}, 400, "messages[0].content", ["missing required field"],
    ),
    (
        "empty content",
        {"messages": [message(content="")]},
        {}, {}, 400, "messages[0].content", ["empty"],
    ),
    (
        "content too large",
        {"messages": [message(content="é" * 6)]},
        {"max_content_bytes": 10}, {}, 413, "messages[0].content", ["12 bytes", "10"],
    ),
    (
        "text too large",
        {"messages": [message(content="<p>", text="x" * 11)]},
        {"max_content_bytes": 10}, {}, 413, "messages[0].text", ["11 bytes"],
    ),
    (
        "too many recipients",
        {"messages": [message(emails=["a@example.com", "b@example.com"]),
                      message(emails=["c@example.com", "d@example.com"])]},
        {"max_recipients_per_request": 3}, {}, 413, "messages", ["4 recipients", "3"],
    ),
    (
        "empty topic id",
        {"messages": [message(topicId="")]},
        {}, {}, 400, "messages[0].topicId", ["0 characters"],
    ),
    (
        "topic id too long",
        {"messages": [message(topicId=LONG_TOPIC)]},
        {}, {}, 400, "messages[0].topicId", ["129 characters"],
    ),
    (
        "topic id characters",
        {"messages": [message(topicId="summer sale/2026")]},
        {}, {}, 400, "messages[0].topicId", ["'summer sale/2026'", "characters"],
    ),
    (
        "naive scheduledAt",
        {"messages": [message(scheduledAt="2030-12-25 10:00:00")]},
        {}, {}, 400, "messages[0].scheduledAt", ["'2030-12-25 10:00:00'", "no UTC offset"],
    ),
    (
        "naive scheduledAt with T",
        {"messages": [message(scheduledAt="2030-12-25T10:00:00")]},
        {}, {}, 400, "messages[0].scheduledAt", ["no UTC offset"],
    ),
    (
        "malformed scheduledAt",
        {"messages": [message(scheduledAt="tomorrow")]},
        {}, {}, 400, "messages[0].scheduledAt", ["'tomorrow'", "RFC 3339"],
    ),
    (
        "impossible scheduledAt",
        {"messages": [message(scheduledAt="2030-02-30T10:00:00Z")]},
        {}, {}, 400, "messages[0].scheduledAt", ["'2030-02-30T10:00:00Z'", "not a valid time"],
    ),
    (
        "bad reply-to",
        {"messages": [message(replyTo=["support@"])]},
        {}, {}, 400, "messages[0].replyTo[0]", ["'support@'"],
    ),
    (
        "bad tag name",
        {"messages": [message(tags={"campaign name": "x"})]},
        {}, {}, 400, "messages[0].tags.campaign name", ["'campaign name'", "SES tag names"],
    ),
    (
        "too many tags",
        {"messages": [message(tags={f"tag{i}": "v" for i in range(51)})]},
        {}, {}, 400, "messages[0].tags", ["51 tags", "50"],
    ),
    (
        "tag value too long",
        {"messages": [message(tags={"campaign": "v" * 257})]},
        {}, {}, 400, "messages[0].tags.campaign", ["257 characters"],
    ),
    (
        "unknown field",
        {"messages": [message(scheduled_at="2030-12-25T10:00:00Z")]},
        {}, {}, 400, "messages[0]", ["scheduled_at"],
    ),
    (
        "wrong type",
        {"messages": [message(emails="one@example.com")]},
        {}, {}, 400, "messages[0].emails", ["array"],
    ),
    (
        "missing subject",
        {"messages": [{"topicId": "t", "emails": ["a@example.com"], "content": "c"}]},
        {}, {}, 400, "messages[0].subject", ["subject"],
    ),
    (
        "second message invalid",
        {"messages": [message(), message(emails=["bad"])]},
        {}, {}, 400, "messages[1].emails[0]", ["'bad'"],
    ),
    (
        "bad idempotency key",
        {"messages": [message()]},
        {}, {"Idempotency-Key": "has space"}, 400, "Idempotency-Key", ["'has space'"],
    ),
]


@pytest.mark.parametrize(
    ("body", "overrides", "headers", "status", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_rejected_and_nothing_written(
    tmp_path: Path,
    database_url: str,
    pool: Pool,
    body: Any,
    overrides: dict[str, Any],
    headers: dict[str, str],
    status: int,
    field: str | None,
    words: list[str],
) -> None:
    """An invalid request gets its status and an error naming field and value; no row is written."""
    settings = make_settings(tmp_path, database_url, **overrides)
    async with api_client(settings, pool) as client:
        response = await client.post("/v1/messages", json=body, headers=AUTH | headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status"] == status
    assert error["field"] == field
    for word in words:
        assert word in error["error"]
    assert await row_counts(pool) == (0, 0, 0)


async def test_not_json(tmp_path: Path, database_url: str, pool: Pool) -> None:
    """A body that is not JSON is a 400 and writes nothing."""
    async with api_client(make_settings(tmp_path, database_url), pool) as client:
        headers = AUTH | {"content-type": "application/json"}
        response = await client.post("/v1/messages", content=b"{not json", headers=headers)
        truncated = await client.post("/v1/messages", content=b'{"messages":[{', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("The request body is not valid JSON: JSON is")
    assert truncated.status_code == 400
    assert "not valid JSON: Input data was truncated" in truncated.json()["error"]
    assert await row_counts(pool) == (0, 0, 0)


async def test_idn_domain_to_punycode(tmp_path: Path, database_url: str, pool: Pool) -> None:
    """An internationalised domain is accepted and stored in punycode, lower-cased."""
    body = {"messages": [message(emails=["Anna@Bücher.Example"])]}
    async with api_client(make_settings(tmp_path, database_url), pool) as client:
        response = await client.post("/v1/messages", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    accepted = response.json()["messages"][0]["requests"]
    assert [r["email"] for r in accepted] == ["Anna@xn--bcher-kva.example"]


async def test_offsets_accepted(tmp_path: Path, database_url: str, pool: Pool) -> None:
    """Z, lower-case z and numeric offsets are accepted and converted to UTC."""
    body = {
        "messages": [
            message(scheduledAt="2030-12-25T10:00:00+09:00"),
            message(scheduledAt="2030-12-25t01:00:00.250z"),
        ]
    }
    async with api_client(make_settings(tmp_path, database_url), pool) as client:
        response = await client.post("/v1/messages", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    due = [m["dueAt"] for m in response.json()["messages"]]
    assert due == ["2030-12-25T01:00:00Z", "2030-12-25T01:00:00.250000Z"]
