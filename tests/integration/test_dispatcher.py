"""The dispatcher against real PostgreSQL and a stub SES endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.config import Settings
from service.db.pool import Pool
from service.dispatch.ses import OutgoingEmail
from service.events.store import read_stream
from service.events.types import (
    EmailSendFailed,
    EmailSendUncertain,
    EmailSent,
    EmailSuppressed,
    MessageSubmitted,
)
from service.sending.cancel import cancel_email
from service.suppression import suppress
from tests.support.dispatching import dispatching, statuses, wait_until_settled
from tests.support.enqueue import enqueue
from tests.support.ses_stub import StubError, StubSes

THROTTLED = StubError(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
QUOTA = StubError(429, "TooManyRequestsException", "Daily message quota exceeded.")


async def events_of(pool: Pool, request_id: str, kind: type[Any]) -> list[Any]:
    async with pool.connection() as conn:
        return [e.event for e in await read_stream(conn, request_id) if isinstance(e.event, kind)]


async def test_sends_every_part(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """SES receives sender, recipient, subject, both bodies, reply-to, tags and the set."""
    settings = dataclasses.replace(send_settings, ses_configuration_set="feedback")
    recipients = [f"user{i}@example.com" for i in range(20)]
    request_ids = await enqueue(
        pool, settings, recipients, topic_id="news.2026", subject="Grüße", html="<p>Hallo</p>",
        text="Hallo", reply_to=["help@example.com"], tags={"campaign": "spring"},
    )
    async with dispatching(settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids)
    assert {final[r] for r in request_ids} == {"sent"}
    assert sorted(ses_stub.recipients()) == sorted(recipients)
    by_recipient = {c.body["Destination"]["ToAddresses"][0]: c for c in ses_stub.accepted()}
    body = by_recipient["user0@example.com"].body
    assert body["FromEmailAddress"] == "sender@example.com"
    assert body["Content"]["Simple"]["Subject"] == {"Data": "Grüße", "Charset": "UTF-8"}
    assert body["Content"]["Simple"]["Body"]["Html"]["Data"] == "<p>Hallo</p>"
    assert body["Content"]["Simple"]["Body"]["Text"]["Data"] == "Hallo"
    assert body["ReplyToAddresses"] == ["help@example.com"]
    assert body["ConfigurationSetName"] == "feedback"
    assert {"Name": "request_id", "Value": request_ids[0]} in body["EmailTags"]
    assert {"Name": "topic_id", "Value": "news_2E2026"} in body["EmailTags"]
    assert {"Name": "campaign", "Value": "spring"} in body["EmailTags"]
    sent = await events_of(pool, request_ids[0], EmailSent)
    assert len(sent) == 1
    assert sent[0].ses_message_id == by_recipient["user0@example.com"].message_id
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT ses_message_id FROM emails WHERE request_id = %s", (request_ids[0],)
        )
        assert await cursor.fetchone() == (sent[0].ses_message_id,)


async def test_personalizer_headers_reach_ses(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """Headers and HTML a personalizer adds are sent through Simple content."""

    def unsubscribe(email: OutgoingEmail, request_id: str, _m: MessageSubmitted) -> OutgoingEmail:
        header = ("List-Unsubscribe", f"<https://example.com/u/{request_id}>")
        return dataclasses.replace(email, headers=(header,), html=email.html + "<img>")

    [request_id] = await enqueue(pool, send_settings, ["a@example.com"])
    async with dispatching(send_settings, pool, database_url, personalizers=[unsubscribe]):
        await wait_until_settled(pool, [request_id])
    [call] = ses_stub.accepted()
    simple = call.body["Content"]["Simple"]
    assert simple["Headers"] == [
        {"Name": "List-Unsubscribe", "Value": f"<https://example.com/u/{request_id}>"}
    ]
    assert simple["Body"]["Html"]["Data"].endswith("<img>")


async def test_throttling_retried_never_failed(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """Throttled calls are retried: every email sent exactly once, none failed."""
    ses_stub.respond = lambda number, _body: THROTTLED if number % 3 == 1 and number < 30 else None
    recipients = [f"user{i}@example.com" for i in range(30)]
    request_ids = await enqueue(pool, send_settings, recipients)
    async with dispatching(send_settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids)
    assert {final[r] for r in request_ids} == {"sent"}
    assert Counter(ses_stub.recipients()) == Counter(recipients)
    failures = [f for r in request_ids for f in await events_of(pool, r, EmailSendFailed)]
    assert failures
    assert {f.kind for f in failures} == {"throttled"}
    assert all(f.retry_at is not None and not f.permanent for f in failures)
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT slowdown < 1 FROM send_limiter")
        assert await cursor.fetchone() == (True,)


async def test_permanent_rejection_fails_with_message(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """A rejected email fails at once with SES's code and whole message, however long."""
    long_message = "Email address is not verified. " * 300
    ses_stub.respond = lambda _n, _b: StubError(400, "MessageRejected", long_message)
    [request_id] = await enqueue(pool, send_settings, ["a@example.com"])
    async with dispatching(send_settings, pool, database_url):
        final = await wait_until_settled(pool, [request_id])
    assert final[request_id] == "failed"
    [failure] = await events_of(pool, request_id, EmailSendFailed)
    assert failure.permanent
    assert failure.retry_at is None
    assert failure.error_code == "MessageRejected"
    assert failure.error_message == long_message
    assert len(ses_stub.calls) == 1


async def test_transient_errors_retried_then_failed(
    pool: Pool, tmp_path: Any, send_settings: Settings, database_url: str, ses_stub: StubSes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5xx answers are retried with backoff up to SEND_MAX_ATTEMPTS, then the email fails."""
    monkeypatch.setattr("service.dispatch.outcomes.TRANSIENT_BASE_SECONDS", 0.05)
    settings = dataclasses.replace(send_settings, send_max_attempts=3)
    ses_stub.respond = lambda _n, _b: StubError(500, "InternalFailure", "Internal error")
    [request_id] = await enqueue(pool, settings, ["a@example.com"])
    async with dispatching(settings, pool, database_url):
        final = await wait_until_settled(pool, [request_id])
    assert final[request_id] == "failed"
    failures = await events_of(pool, request_id, EmailSendFailed)
    assert [f.attempt for f in failures] == [1, 2, 3]
    assert [f.retry_at is not None for f in failures] == [True, True, False]
    assert len(ses_stub.calls) == 3


async def test_quota_exceeded_holds_then_resumes(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SES's daily quota error holds every send; after the hold all emails go out once."""
    monkeypatch.setattr("service.dispatch.dispatcher.HOLD_SECONDS", 1.5)
    refused_until = time.monotonic() + 1.0
    ses_stub.respond = lambda _n, _b: QUOTA if time.monotonic() < refused_until else None
    recipients = [f"user{i}@example.com" for i in range(10)]
    request_ids = await enqueue(pool, send_settings, recipients)
    async with dispatching(send_settings, pool, database_url):
        await asyncio.sleep(0.5)
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT hold_reason, hold_until > now() FROM send_limiter")
            hold = await cursor.fetchone()
        refused = len(ses_stub.calls)
        final = await wait_until_settled(pool, request_ids)
    assert hold == ("daily_quota", True)
    assert {final[r] for r in request_ids} == {"sent"}
    assert Counter(ses_stub.recipients()) == Counter(recipients)
    # Only the sends already started when the first error came back hit the quota.
    assert refused <= 10


async def test_sending_disabled_holds(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While GetAccount reports sending disabled nothing is sent; afterwards everything is."""
    monkeypatch.setattr("service.dispatch.account.REFRESH_SECONDS", 0.2)
    monkeypatch.setattr("service.dispatch.dispatcher.POLL_SECONDS", 0.2)
    quota = {"Max24HourSend": 1000.0, "MaxSendRate": 50.0, "SentLast24Hours": 0.0}
    ses_stub.account = {"SendQuota": quota, "SendingEnabled": False,
                        "ProductionAccessEnabled": True}
    request_ids = await enqueue(pool, send_settings, ["a@example.com", "b@example.com"])
    async with dispatching(send_settings, pool, database_url):
        await asyncio.sleep(1.0)
        assert ses_stub.calls == []
        assert set((await statuses(pool)).values()) == {"queued"}
        ses_stub.account = {**ses_stub.account, "SendingEnabled": True}
        final = await wait_until_settled(pool, request_ids)
    assert {final[r] for r in request_ids} == {"sent"}


async def test_suppressed_recipient_not_sent(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """A suppressed address gets EmailSuppressed and status suppressed, and no SES call."""
    async with pool.connection() as conn:
        await suppress(conn, "Blocked@EXAMPLE.com", "complaint")
    request_ids = await enqueue(pool, send_settings, ["Blocked@example.com", "ok@example.com"])
    async with dispatching(send_settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids)
    assert final[request_ids[0]] == "suppressed"
    assert final[request_ids[1]] == "sent"
    assert ses_stub.recipients() == ["ok@example.com"]
    [event] = await events_of(pool, request_ids[0], EmailSuppressed)
    assert event.reason == "complaint"


async def test_scheduled_sent_on_time(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """A scheduled email is not sent before its time and is sent within a second after it."""
    started = time.monotonic()
    due = datetime.now(UTC) + timedelta(seconds=2)
    [request_id] = await enqueue(pool, send_settings, ["a@example.com"], scheduled_at=due)
    due_monotonic = started + (due - datetime.now(UTC)).total_seconds() + (
        time.monotonic() - started
    )
    async with dispatching(send_settings, pool, database_url):
        await wait_until_settled(pool, [request_id])
    [call] = ses_stub.accepted()
    assert call.at >= due_monotonic - 0.01
    assert call.at - due_monotonic < 1.0


async def test_cancelled_never_sent(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """A cancelled email stays cancelled and never reaches SES."""
    due = datetime.now(UTC) + timedelta(seconds=1)
    request_ids = await enqueue(pool, send_settings, ["a@example.com", "b@example.com"],
                                scheduled_at=due)
    async with pool.connection() as conn:
        await cancel_email(conn, uuid.UUID(request_ids[0]))
    async with dispatching(send_settings, pool, database_url):
        final = await wait_until_settled(pool, [request_ids[1]])
        await asyncio.sleep(0.5)
    assert final[request_ids[0]] == "cancelled"
    assert ses_stub.recipients() == ["b@example.com"]


async def test_stop_finishes_in_flight(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """Stopping mid-batch records every claimed email; the rest stays queued, none is lost."""
    settings = dataclasses.replace(send_settings, email_rate=10.0)
    request_ids = await enqueue(pool, settings, [f"u{i}@example.com" for i in range(40)])
    async with dispatching(settings, pool, database_url):
        await asyncio.sleep(0.8)
    final = await statuses(pool)
    counts = Counter(final[r] for r in request_ids)
    assert set(counts) <= {"sent", "queued"}
    assert counts["sent"] == len(ses_stub.accepted())
    assert 0 < counts["sent"] < 40


async def test_idle_dispatcher_does_not_spin(
    pool: Pool, send_settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing due, the dispatcher looks at the queue a few times, not continuously."""
    from service.dispatch import queue

    calls = 0
    original = queue.claim

    async def counting_claim(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args)

    monkeypatch.setattr(queue, "claim", counting_claim)
    async with dispatching(send_settings, pool, database_url):
        await asyncio.sleep(3.0)
    assert 1 <= calls <= 5


async def test_slow_sends_keep_their_claim(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """A send slower than the lease is not marked uncertain: its live dispatcher renews it."""
    ses_stub.delay = 2.5
    settings = dataclasses.replace(send_settings, dispatch_lease_seconds=2.0)
    request_ids = await enqueue(pool, settings, ["slow1@example.com", "slow2@example.com"])
    async with dispatching(settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids, seconds=30)
    assert {final[r] for r in request_ids} == {"sent"}
    for request_id in request_ids:
        assert await events_of(pool, request_id, EmailSendUncertain) == []
    assert sorted(ses_stub.recipients()) == ["slow1@example.com", "slow2@example.com"]


async def test_quota_counts_only_sends_made(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """Slots reserved but not used are given back, so the quota counts only sends started.

    At an unlimited rate many reserved slots pass unused while the threads are busy."""
    settings = dataclasses.replace(send_settings, email_rate=1_000_000.0)
    request_ids = await enqueue(pool, settings, [f"q{i}@example.com" for i in range(120)])
    async with dispatching(settings, pool, database_url):
        final = await wait_until_settled(pool, request_ids)
    assert {final[r] for r in request_ids} == {"sent"}
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT (SELECT sum(sends) FROM send_quota_usage), (SELECT sum(attempt) FROM emails)"
        )
        quota, attempts = await cursor.fetchone() or (None, None)
    # Every attempt started one SES call (a connection error also counts against the quota).
    assert quota == attempts >= len(ses_stub.accepted()) == 120


async def test_sent_event_dated_at_request_start(
    pool: Pool, send_settings: Settings, database_url: str, ses_stub: StubSes
) -> None:
    """EmailSent happened when its request left: before SES received it and before storing."""
    recipients = [f"d{i}@example.com" for i in range(5)]
    request_ids = await enqueue(pool, send_settings, recipients)
    async with dispatching(send_settings, pool, database_url):
        await wait_until_settled(pool, request_ids)
    arrivals = {c.body["Destination"]["ToAddresses"][0]: c.wall for c in ses_stub.accepted()}
    for recipient, request_id in zip(recipients, request_ids, strict=True):
        async with pool.connection() as conn:
            [sent] = [e for e in await read_stream(conn, request_id)
                      if isinstance(e.event, EmailSent)]
        assert sent.occurred_at.timestamp() <= arrivals[recipient]
        assert sent.occurred_at <= sent.recorded_at
