"""The SNS callback over HTTP against real PostgreSQL, with a local SNS signer."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.config import Settings
from service.db.pool import Pool
from service.feedback.linking import link_held_feedback
from service.feedback.local_signer import LocalSnsSigner, encode
from service.secret import Secret
from service.tracking.personalize import personalize
from service.tracking.record import record_open
from service.tracking.secret import tracking_key
from tests import ses_payloads as ses
from tests.conftest import make_settings
from tests.integration.feedback_support import (
    FOREIGN_TOPIC,
    TOPIC,
    ConfirmationServer,
    callback_client,
    email_row,
    event_types,
    insert_email,
    notify,
    post_signed,
    suppressed,
)

ALICE = "alice@example.com"
BOB = "bob@example.com"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425"
)


@pytest.fixture(scope="module")
def signer() -> LocalSnsSigner:
    return LocalSnsSigner.create()


@pytest.fixture
def sns_settings(tmp_path: Path, database_url: str, signer: LocalSnsSigner) -> Settings:
    settings = make_settings(tmp_path, database_url, sns_topic_arns=(TOPIC,))
    signer.install(settings.sns_certs_dir)
    return settings


@pytest.fixture
def confirmations() -> Iterator[ConfirmationServer]:
    with ConfirmationServer().running() as server:
        yield server


def ses_id() -> str:
    return f"0100018c-{uuid.uuid4()}-000000"


@pytest.mark.parametrize("content_type", ["text/plain; charset=UTF-8", "application/json"])
async def test_body_read_whatever_content_type(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner, content_type: str
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(
            client, notify(signer, ses.delivery(message_id, [ALICE])), content_type
        )
    assert response.status_code == 200
    assert response.json()["outcome"] == "stored"
    assert await event_types(pool, request_id) == ["EmailDelivered"]
    assert (await email_row(pool, request_id))[2] == "delivered"


async def test_foreign_topic_rejected_before_anything(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner, confirmations: ConfirmationServer
) -> None:
    """A foreign topic gets 403: no confirmation GET, nothing stored."""
    confirm = signer.subscription_confirmation(FOREIGN_TOPIC, SUBSCRIBE_URL)
    notification = signer.notification(FOREIGN_TOPIC, ses.bounce(ses_id(), [ALICE]))
    async with callback_client(sns_settings, pool, confirmations.http_get()) as client:
        first = await post_signed(client, confirm)
        second = await post_signed(client, notification)
    assert first.status_code == 403
    assert second.status_code == 403
    assert FOREIGN_TOPIC in first.json()["error"]
    assert confirmations.paths == []
    assert await event_types(pool) == []
    assert await suppressed(pool) == []


async def test_no_topics_configured_rejects_all(
    tmp_path: Path, database_url: str, pool: Pool, signer: LocalSnsSigner
) -> None:
    settings = make_settings(tmp_path, database_url)
    signer.install(settings.sns_certs_dir)
    async with callback_client(settings, pool) as client:
        with capture_logs() as logs:
            response = await post_signed(client, notify(signer, ses.delivery(ses_id(), [ALICE])))
    assert response.status_code == 403
    assert "SNS_TOPIC_ARNS" in response.json()["error"]
    rejected = [entry for entry in logs if entry["event"] == "sns_topic_rejected"]
    assert "SNS_TOPIC_ARNS" in rejected[0]["reason"]


async def test_subscription_confirmed_by_get(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner, confirmations: ConfirmationServer
) -> None:
    async with callback_client(sns_settings, pool, confirmations.http_get()) as client:
        response = await post_signed(client, signer.subscription_confirmation(TOPIC, SUBSCRIBE_URL))
    assert response.status_code == 200
    assert response.json()["outcome"] == "confirming"
    assert len(confirmations.paths) == 1
    assert "Action=ConfirmSubscription" in confirmations.paths[0]
    assert "Token=2336412f37fb687f5d51e6e2425" in confirmations.paths[0]


async def test_subscription_logged_when_auto_confirm_off(
    tmp_path: Path,
    database_url: str,
    pool: Pool,
    signer: LocalSnsSigner,
    confirmations: ConfirmationServer,
) -> None:
    settings = make_settings(
        tmp_path, database_url, sns_topic_arns=(TOPIC,), sns_auto_confirm=False
    )
    signer.install(settings.sns_certs_dir)
    async with callback_client(settings, pool, confirmations.http_get()) as client:
        with capture_logs() as logs:
            response = await post_signed(
                client, signer.subscription_confirmation(TOPIC, SUBSCRIBE_URL)
            )
    assert response.status_code == 200
    assert confirmations.paths == []
    pending = [e for e in logs if e["event"] == "sns_subscription_confirmation_pending"]
    assert pending[0]["subscribe_url"] == SUBSCRIBE_URL


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://s3.amazonaws.com/bucket/confirm",
    ],
)
async def test_subscribe_url_on_foreign_host_not_fetched(
    sns_settings: Settings,
    pool: Pool,
    signer: LocalSnsSigner,
    confirmations: ConfirmationServer,
    url: str,
) -> None:
    async with callback_client(sns_settings, pool, confirmations.http_get()) as client:
        response = await post_signed(client, signer.subscription_confirmation(TOPIC, url))
    assert response.status_code == 403
    assert confirmations.paths == []


async def test_unsubscribe_confirmation_logged(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    async with callback_client(sns_settings, pool) as client:
        with capture_logs() as logs:
            response = await post_signed(
                client, signer.unsubscribe_confirmation(TOPIC, SUBSCRIBE_URL)
            )
    assert response.status_code == 200
    warning = [e for e in logs if e["event"] == "sns_unsubscribed"]
    assert warning[0]["log_level"] == "warning"


async def test_forged_signature_rejected_and_not_stored(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message = notify(signer, ses.delivery(ses_id(), [ALICE]))
    message["Message"] = message["Message"].replace("Delivery", "Bounce")
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, message)
    assert response.status_code == 403
    assert "signature" in response.json()["error"]
    assert await event_types(pool) == []


async def test_signature_version_3_rejected(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message = notify(signer, ses.delivery(ses_id(), [ALICE]), signature_version="3")
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, message)
    assert response.status_code == 400
    assert "SignatureVersion" in response.json()["error"]


async def test_certificate_url_on_s3_rejected(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message = notify(signer, ses.delivery(ses_id(), [ALICE]))
    message["SigningCertURL"] = "https://s3.amazonaws.com/attacker/cert.pem"
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, message)
    assert response.status_code == 403
    assert "SigningCertURL" in response.json()["error"]


async def test_raw_delivery_body_rejected(sns_settings: Settings, pool: Pool) -> None:
    async with callback_client(sns_settings, pool) as client:
        response = await client.post(
            "/v1/events/results",
            json=ses.delivery(ses_id(), [ALICE]),
        )
    assert response.status_code == 400
    assert "raw message delivery" in response.json()["error"]


async def test_text_message_answered_200(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """SES's topic validation message is not JSON; it is logged and acknowledged."""
    text = "Successfully validated SNS topic for Amazon SES event publishing."
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, signer.notification(TOPIC, text))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert await event_types(pool) == []


async def test_unknown_type_stored_once(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message = notify(signer, {"eventType": "Teleport", "mail": {"messageId": "x"}})
    async with callback_client(sns_settings, pool) as client:
        first = await post_signed(client, message)
        second = await post_signed(client, message)
    assert first.json()["outcome"] == "unrecognized"
    assert second.json()["outcome"] == "duplicate"
    assert await event_types(pool) == ["FeedbackUnrecognized"]


async def test_every_type_of_both_families_stored(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """Each SES type becomes its event on the email's stream."""
    payloads: list[tuple[Any, str]] = [
        (lambda m: ses.bounce(m, [ALICE], family="notification"), "EmailBounced"),
        (lambda m: ses.complaint(m, [ALICE], family="notification"), "EmailComplained"),
        (lambda m: ses.delivery(m, [ALICE], family="notification"), "EmailDelivered"),
        (lambda m: ses.bounce(m, [ALICE], family="event"), "EmailBounced"),
        (lambda m: ses.complaint(m, [ALICE], family="event"), "EmailComplained"),
        (lambda m: ses.delivery(m, [ALICE], family="event"), "EmailDelivered"),
        (lambda m: ses.reject(m, [ALICE]), "EmailRejected"),
        (lambda m: ses.open_(m, [ALICE]), "EmailOpened"),
        (lambda m: ses.click(m, [ALICE]), "EmailClicked"),
        (lambda m: ses.rendering_failure(m, [ALICE]), "EmailRenderingFailed"),
        (lambda m: ses.delivery_delay(m, [ALICE]), "EmailDeliveryDelayed"),
        (lambda m: ses.subscription(m, [ALICE]), "EmailUnsubscribed"),
    ]
    async with callback_client(sns_settings, pool) as client:
        for build, expected in payloads:
            message_id = ses_id()
            request_id = await insert_email(pool, ses_message_id=message_id)
            response = await post_signed(client, notify(signer, build(message_id)))
            assert response.status_code == 200, response.text
            assert await event_types(pool, request_id) == [expected]


async def test_send_event_stores_nothing(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, notify(signer, ses.send(message_id, [ALICE])))
    assert response.json()["outcome"] == "ignored"
    assert await event_types(pool, request_id) == []


async def test_duplicates_stored_once(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    message = notify(signer, ses.delivery(message_id, [ALICE]))
    async with callback_client(sns_settings, pool) as client:
        outcomes = [(await post_signed(client, message)).json()["outcome"] for _ in range(3)]
    assert outcomes == ["stored", "duplicate", "duplicate"]
    assert await event_types(pool, request_id) == ["EmailDelivered"]


async def test_open_then_click_both_stored(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, ses.open_(message_id, [ALICE])))
        await post_signed(client, notify(signer, ses.click(message_id, [ALICE])))
    assert await event_types(pool, request_id) == ["EmailOpened", "EmailClicked"]


async def test_delivery_then_bounce_is_bounced(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, ses.delivery(message_id, [ALICE])))
        await post_signed(client, notify(signer, ses.bounce(message_id, [ALICE])))
    assert (await email_row(pool, request_id))[2] == "bounced"


async def test_complaint_then_delivery_stays_complained(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, ses.complaint(message_id, [ALICE])))
        await post_signed(client, notify(signer, ses.delivery(message_id, [ALICE])))
    assert await event_types(pool, request_id) == ["EmailComplained", "EmailDelivered"]
    assert (await email_row(pool, request_id))[2] == "complained"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda m: ses.bounce(m, [ALICE], bounce_type="Permanent"), [(ALICE, "bounce")]),
        (lambda m: ses.complaint(m, [ALICE]), [(ALICE, "complaint")]),
        (lambda m: ses.bounce(m, [ALICE], bounce_type="Transient"), []),
        (lambda m: ses.subscription(m, [ALICE]), [(ALICE, "unsubscribe")]),
    ],
)
async def test_suppression_on_hard_bounce_and_complaint(
    sns_settings: Settings,
    pool: Pool,
    signer: LocalSnsSigner,
    build: Any,
    expected: list[tuple[str, str]],
) -> None:
    message_id = ses_id()
    await insert_email(pool, ses_message_id=message_id)
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, build(message_id)))
    assert await suppressed(pool) == expected


async def test_unlinked_feedback_suppresses_every_recipient(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """Suppression does not wait for linking, and each recipient gets its own event."""
    message_id = ses_id()
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, notify(signer, ses.bounce(message_id, [ALICE, BOB])))
    assert response.json() == {"outcome": "held", "stored": 2, "duplicates": 0}
    assert await suppressed(pool) == [(ALICE, "bounce"), (BOB, "bounce")]
    assert await event_types(pool, f"ses:{message_id}") == ["FeedbackHeld", "FeedbackHeld"]


async def test_feedback_before_send_linked_later(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """Feedback for an unknown message id is held, then linked when EmailSent is recorded."""
    message_id = ses_id()
    request_id = await insert_email(pool, status="sending")
    delivered = notify(signer, ses.delivery(message_id, [ALICE]))
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, delivered)
        await post_signed(client, notify(signer, ses.bounce(message_id, [ALICE])))
    assert await held_count(pool) == 2

    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE emails SET status = 'sent', ses_message_id = %s WHERE request_id = %s",
            (message_id, request_id),
        )
        linked = await link_held_feedback(conn, request_id, "newsletter", message_id)
    assert linked == 2
    assert await event_types(pool, request_id) == ["EmailDelivered", "EmailBounced"]
    assert (await email_row(pool, request_id))[2] == "bounced"
    assert await held_count(pool) == 0

    # SNS redelivering a notification that was held and then linked stores nothing new.
    async with callback_client(sns_settings, pool) as client:
        assert (await post_signed(client, delivered)).json()["outcome"] == "duplicate"
    assert await event_types(pool, request_id) == ["EmailDelivered", "EmailBounced"]


async def test_linking_without_held_feedback(pool: Pool) -> None:
    request_id = await insert_email(pool, ses_message_id="m-1")
    async with pool.connection() as conn, conn.transaction():
        assert await link_held_feedback(conn, request_id, "newsletter", "m-1") == 0
    assert await event_types(pool) == []


async def held_count(pool: Pool) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM held_feedback")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_redelivery_of_held_feedback_is_duplicate(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message = notify(signer, ses.delivery(ses_id(), [ALICE]))
    async with callback_client(sns_settings, pool) as client:
        first = await post_signed(client, message)
        second = await post_signed(client, message)
    assert first.json()["outcome"] == "held"
    assert second.json()["outcome"] == "duplicate"


async def test_uncertain_send_resolved_by_tag(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """Feedback naming an uncertain email's request id proves it was sent."""
    message_id = ses_id()
    request_id = await insert_email(pool, status="uncertain")
    payload = ses.delivery(message_id, [ALICE], family="event", request_id=request_id)
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, notify(signer, payload))
    assert response.json()["outcome"] == "stored"
    assert await event_types(pool, request_id) == ["EmailSent", "EmailDelivered"]
    assert await email_row(pool, request_id) == ("sent", message_id, "delivered")


async def test_send_event_resolves_uncertain(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    message_id = ses_id()
    request_id = await insert_email(pool, status="uncertain")
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, ses.send(message_id, [ALICE], request_id)))
    assert await email_row(pool, request_id) == ("sent", message_id, None)


async def test_database_unavailable_is_503(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """A fault a retry can fix gets 503, so SNS retries."""
    from psycopg_pool import AsyncConnectionPool

    dead: Pool = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, open=False
    )
    await dead.open(wait=False)
    try:
        async with callback_client(sns_settings, dead, database_timeout=0.2) as client:
            response = await post_signed(client, notify(signer, ses.delivery(ses_id(), [ALICE])))
    finally:
        await dead.close()
    assert response.status_code == 503
    assert "retry" in response.json()["error"]


def basic(credentials: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


async def test_basic_auth_challenge_flow(
    tmp_path: Path, database_url: str, pool: Pool, signer: LocalSnsSigner
) -> None:
    settings = make_settings(
        tmp_path, database_url, sns_topic_arns=(TOPIC,), sns_basic_auth=Secret("sns:s3cret-pass")
    )
    signer.install(settings.sns_certs_dir)
    body = notify(signer, ses.delivery(ses_id(), [ALICE]))
    async with callback_client(settings, pool) as client:
        anonymous = await post_signed(client, body)
        wrong = await client.post(
            "/v1/events/results", content=encode(body), headers=basic("sns:wrong")
        )
        right = await client.post(
            "/v1/events/results", content=encode(body), headers=basic("sns:s3cret-pass")
        )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic ")
    assert right.status_code == 200
    assert right.json()["outcome"] == "held"


async def test_ses_open_after_pixel_open_is_duplicate(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """An SES Open right after the pixel reported the same open is flagged, not counted twice."""
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    # The SES sample's open is at 11:00:00; the pixel saw it 20 seconds later.
    async with pool.connection() as conn, conn.transaction():
        await record_open(
            conn,
            request_id=request_id,
            source="pixel",
            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            occurred_at=datetime.fromisoformat("2026-12-04T11:00:20+00:00"),
        )
    async with callback_client(sns_settings, pool) as client:
        response = await post_signed(client, notify(signer, ses.open_(message_id, [ALICE])))
    assert response.json()["outcome"] == "stored"
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT data->>'source', data->>'duplicate', data->>'machine' FROM events"
            " WHERE stream = %s AND type = 'EmailOpened' ORDER BY position",
            (request_id,),
        )
        rows = await cursor.fetchall()
    assert rows[0] == ("pixel", "false", "false")
    assert rows[1][0] == "ses"
    assert rows[1][1] == "true"


async def test_ses_click_on_tracked_link_names_target(
    sns_settings: Settings, pool: Pool, signer: LocalSnsSigner
) -> None:
    """SES reports our tracked redirect; the stored click names the original target."""
    message_id = ses_id()
    request_id = await insert_email(pool, ses_message_id=message_id)
    async with pool.connection() as conn:
        key = await tracking_key(conn, sns_settings)
    html = personalize(
        '<a href="https://example.com/offer?a=1&amp;b=2">x</a>',
        request_id,
        track_clicks=True,
        unsubscribe=False,
        key=key,
        server_host=sns_settings.server_host,
    ).html
    assert html is not None
    tracked = html.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    payload = ses.click(message_id, [ALICE], link=tracked)
    async with callback_client(sns_settings, pool) as client:
        await post_signed(client, notify(signer, payload))
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT data->>'link' FROM events WHERE stream = %s AND type = 'EmailClicked'",
            (request_id,),
        )
        row = await cursor.fetchone()
    assert row == ("https://example.com/offer?a=1&b=2",)
