"""The status precedence of email_status, as a table of transitions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from projections.status_rules import STATUS_RANK, next_status, status_of
from service.events.types import EmailOpened, EmailSendFailed

TRANSITIONS = [
    # (current, incoming, expected)
    (None, "requested", "requested"),
    ("requested", "scheduled", "scheduled"),
    ("scheduled", "cancelled", "cancelled"),
    ("requested", "suppressed", "suppressed"),
    ("requested", "retrying", "retrying"),
    ("retrying", "sent", "sent"),
    ("retrying", "failed", "failed"),
    ("uncertain", "sent", "sent"),
    ("uncertain", "delivered", "delivered"),
    ("sent", "delayed", "delayed"),
    ("delayed", "delivered", "delivered"),
    ("delivered", "delayed", "delivered"),
    ("sent", "delivered", "delivered"),
    ("delivered", "bounced", "bounced"),
    ("bounced", "delivered", "bounced"),
    ("delivered", "complained", "complained"),
    ("complained", "delivered", "complained"),
    ("complained", "bounced", "complained"),
    ("bounced", "complained", "complained"),
    ("delivered", "sent", "delivered"),
    ("sent", "cancelled", "sent"),
    ("sent", "retrying", "sent"),
    ("cancelled", "scheduled", "cancelled"),
    ("failed", "retrying", "failed"),
    ("bounced", "bounced", "bounced"),
    ("rejected", "bounced", "bounced"),
    ("sent", "rendering_failed", "rendering_failed"),
    ("requested", "uncertain", "uncertain"),
    ("sent", "rejected", "rejected"),
]


@pytest.mark.parametrize(("current", "incoming", "expected"), TRANSITIONS)
def test_next_status(current: str | None, incoming: str, expected: str) -> None:
    """A status gives way only to one of the same or a higher rank."""
    assert next_status(current, incoming) == expected


def test_every_status_has_a_rank() -> None:
    """The transition table exercises every status."""
    assert {incoming for _, incoming, _ in TRANSITIONS} == set(STATUS_RANK)


def test_send_failure_with_retry_is_retrying() -> None:
    """An attempt that will be retried does not fail the email."""
    retry = EmailSendFailed(
        request_id="r", topic_id="t", attempt=1, error_code="Throttling", error_message="x",
        permanent=False, retry_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert status_of(retry) == "retrying"


def test_send_failure_without_retry_is_failed() -> None:
    """The last attempt, or a permanent error, fails the email."""
    last = EmailSendFailed(
        request_id="r", topic_id="t", attempt=5, error_code="Timeout", error_message="x",
        permanent=False,
    )
    assert status_of(last) == "failed"


def test_open_does_not_change_status() -> None:
    """Engagement is recorded beside the status, not in it."""
    assert status_of(EmailOpened(request_id="r")) is None
