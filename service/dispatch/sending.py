"""Sending one claimed email at its rate slot and turning the outcome into a Result."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.dispatch.outcomes import FailureKind, SendFailure, classify, retry_delay
from service.dispatch.queue import ClaimedEmail
from service.dispatch.results import Failed, Result, Sent
from service.dispatch.sender import MAX_CALL_SECONDS, SesSender
from service.dispatch.ses import OutgoingEmail, failure_of, send_request
from service.dispatch.slots import LeaseEnding, SlotPool, SlotsHeld
from service.metrics import SES_LATENCY


@dataclass(frozen=True)
class Accepted:
    """SES accepted the email."""

    ses_message_id: str
    started_at: float | None
    """When the request left (time.time())."""


@dataclass(frozen=True)
class Unsent:
    """An attempt that made no SES call. The email goes back to the queue, due at `due_at`
    (None: now)."""

    due_at: datetime | None
    reason: str


@dataclass
class Lease:
    """The end (time.monotonic()) of this dispatcher's claim on an email; renewals move it."""

    until: float
    seconds: float
    """The lease's length (DISPATCH_LEASE_SECONDS)."""

    def latest_start(self) -> float:
        """Return the last moment a send may start and still end within the claim."""
        # NOTE: with a lease shorter than twice MAX_CALL_SECONDS, a send may start as late as
        # half the lease before its end, and a call that runs into its timeouts outlasts it.
        return self.until - min(MAX_CALL_SECONDS, self.seconds / 2)


@dataclass(frozen=True)
class Attempt:
    """One send: the claimed email, what to send, and the claim it is sent under."""

    claimed: ClaimedEmail
    email: OutgoingEmail
    lease: Lease


def send_at_slot(
    sender: SesSender, slots: SlotPool, attempt: Attempt, configuration_set: str | None
) -> Accepted | SendFailure | Unsent:
    """Sign the request, wait for a rate slot and call SES once (blocking, for a worker thread).

    The request is signed before the wait, so that it leaves as soon as its slot comes.
    A send that could not finish within the email's claim is not started, so that a live
    dispatcher never sends an email whose lease may already have passed to `uncertain`.
    """
    slots.expect()
    try:
        request = sender.sign(send_request(attempt.email, configuration_set))
    except Exception as error:
        # Credentials that could not be loaded or refreshed, for example.
        slots.unexpect()
        return failure_of(error)
    try:
        started_at = slots.take(attempt.lease.latest_start)
    except SlotsHeld as held:
        return Unsent(held.until, held.reason)
    except LeaseEnding:
        return Unsent(None, "lease_ending")
    started = time.perf_counter()
    try:
        return Accepted(sender.send(request), started_at)
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
