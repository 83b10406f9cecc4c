"""Sending one claimed email at its rate slot and turning the outcome into a Result."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.dispatch.outcomes import FailureKind, SendFailure, classify, retry_delay
from service.dispatch.queue import ClaimedEmail
from service.dispatch.results import Failed, Result, Sent
from service.dispatch.ses import (
    OutgoingEmail,
    SESV2Client,
    SlotMissed,
    failure_of,
    request_started_at,
    send_email,
)
from service.metrics import SES_LATENCY


@dataclass(frozen=True)
class Accepted:
    """SES accepted the email."""

    ses_message_id: str
    started_at: float | None
    """When the request left (time.time())."""


@dataclass(frozen=True)
class MissedSlot:
    """The send was not made: its thread woke too late after its slot."""

    late_by: float


@dataclass(frozen=True)
class Attempt:
    """One send: the claimed email, what to send, and when it may start (time.monotonic())."""

    claimed: ClaimedEmail
    email: OutgoingEmail
    slot: float
    tolerance: float
    """How late after `slot` the send may still start (the reservation's tolerance)."""


def send_at_slot(
    client: SESV2Client, attempt: Attempt, configuration_set: str | None
) -> Accepted | SendFailure | MissedSlot:
    """Call SES once, starting the request at the slot (a blocking call, for a worker thread).

    The request is built and signed first; the wait for the slot happens after that, right
    before it is sent, so that the moment it leaves is close to the slot.
    """
    started = time.perf_counter()
    try:
        message_id = send_email(client, attempt.email, configuration_set, slot=attempt.slot,
                                tolerance=attempt.tolerance)
        return Accepted(message_id, request_started_at())
    except SlotMissed as missed:
        return MissedSlot(missed.late_by)
    except Exception as error:
        return failure_of(error)
    finally:
        SES_LATENCY.observe(time.perf_counter() - started)


def result_of(
    claimed: ClaimedEmail,
    outcome: Accepted | SendFailure,
    *,
    max_attempts: int,
    hold_until: datetime | None = None,
) -> Result:
    """Return the Result to record for a SendEmail outcome (a message id or a failure)."""
    if isinstance(outcome, Accepted):
        return Sent(claimed.request_id, claimed.topic_id, claimed.attempt,
                    outcome.ses_message_id, outcome.started_at)
    kind = classify(outcome)
    return Failed(
        request_id=claimed.request_id,
        topic_id=claimed.topic_id,
        attempt=claimed.attempt,
        kind=kind,
        code=outcome.code,
        message=outcome.message,
        retry_at=_retry_at(kind, claimed, max_attempts, hold_until),
    )


def _retry_at(
    kind: FailureKind, claimed: ClaimedEmail, max_attempts: int, hold_until: datetime | None
) -> datetime | None:
    if kind == "permanent":
        return None
    if kind in ("quota_exceeded", "account_paused") and hold_until is not None:
        return hold_until
    failures = claimed.transient_failures + (1 if kind == "transient" else 0)
    if kind == "transient" and failures >= max_attempts:
        return None
    # NOTE: this host's clock sets due_at, which dispatchers compare with the database's
    # now(); hosts need synchronised clocks (NTP) for retries to start on time.
    delay = retry_delay(kind, failures, random.random())  # noqa: S311 - jitter, not a secret
    return datetime.now(UTC) + timedelta(seconds=delay)
