"""Submission over HTTP to SES: the API, the dispatcher and moto's SES server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import moto_api
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends

from service.config import Settings
from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailSent
from tests.conftest import make_settings
from tests.integration.api_client import AUTH, api_client
from tests.support.dispatching import dispatching, wait_until_settled

SENDER = "sender@example.com"
MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def moto_url(
    tmp_path: Path, aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """moto's server on 127.0.0.1, emptied, with the sender verified, recording requests."""
    monkeypatch.setattr(moto_api.recorder, "_location", str(tmp_path / "moto-recording"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        # moto's backends live in this process and outlast one test: start from empty.
        post(f"{url}/moto-api/reset")
        boto3.client("ses", region_name="us-east-1", endpoint_url=url).verify_email_identity(
            EmailAddress=SENDER
        )
        post(f"{url}/moto-api/recorder/start-recording")
        yield url
    finally:
        server.stop()


def post(url: str) -> None:
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - a local moto server
    with urllib.request.urlopen(request):  # noqa: S310
        pass


def recorded_send_requests(url: str) -> list[dict[str, Any]]:
    """Return the SendEmail request bodies moto's recorder kept."""
    with urllib.request.urlopen(f"{url}/moto-api/recorder/download-recording") as response:  # noqa: S310
        lines = response.read().decode().splitlines()
    bodies = []
    for line in lines:
        entry = json.loads(line)
        if not entry["url"].endswith("/v2/email/outbound-emails"):
            continue
        body = entry["body"]
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode()
        bodies.append(json.loads(body))
    return bodies


async def test_api_to_ses(tmp_path: Path, database_url: str, pool: Pool, moto_url: str) -> None:
    """Three recipients submitted over HTTP reach moto's SES with every part, and are sent."""
    settings: Settings = make_settings(
        tmp_path, database_url, ses_endpoint_url=moto_url, email_sender=SENDER
    )
    recipients = ["one@example.com", "two@example.com", "three@example.com"]
    body = {
        "messages": [
            {
                "topicId": "launch-2026",
                "emails": recipients,
                "subject": "Launch día",
                "content": "<h1>Hello</h1>",
                "text": "Hello",
                "replyTo": ["help@example.com"],
            }
        ]
    }
    async with api_client(settings, pool) as client:
        response = await client.post("/v1/messages", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    requests = response.json()["messages"][0]["requests"]
    request_ids = {r["email"]: r["requestId"] for r in requests}

    async with dispatching(settings, pool, database_url):
        final = await wait_until_settled(pool, list(request_ids.values()))
    assert {final[r] for r in request_ids.values()} == {"sent"}

    sent_messages = ses_backends[MOTO_ACCOUNT]["us-east-1"].sent_messages
    by_recipient = {m.destinations["ToAddresses"][0]: m for m in sent_messages}
    assert sorted(by_recipient) == sorted(recipients)
    for recipient, message in by_recipient.items():
        assert message.source == SENDER
        assert message.subject == "Launch día"
        assert message.body == "<h1>Hello</h1>"
        async with pool.connection() as conn:
            events = await read_stream(conn, request_ids[recipient])
        [sent] = [e.event for e in events if isinstance(e.event, EmailSent)]
        assert sent.ses_message_id == message.id
        assert sent.attempt == 1

    # moto keeps only the HTML body; its request recorder shows the rest of each call.
    recorded = {r["Destination"]["ToAddresses"][0]: r for r in recorded_send_requests(moto_url)}
    assert sorted(recorded) == sorted(recipients)
    one = recorded["one@example.com"]
    assert one["Content"]["Simple"]["Body"]["Text"]["Data"] == "Hello"
    assert one["ReplyToAddresses"] == ["help@example.com"]
    assert {"Name": "request_id", "Value": request_ids["one@example.com"]} in one["EmailTags"]
    assert {"Name": "topic_id", "Value": "launch-2026"} in one["EmailTags"]
