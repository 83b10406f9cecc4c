"""The feedback status of an email, for events arriving in any order."""

from __future__ import annotations

import pytest

from service.feedback.status import next_status, status_of

DELIVERED = status_of("EmailDelivered")
HARD = status_of("EmailBounced", hard_bounce=True)
SOFT = status_of("EmailBounced", hard_bounce=False)
COMPLAINED = status_of("EmailComplained")
DELAYED = status_of("EmailDeliveryDelayed")
REJECTED = status_of("EmailRejected")
OPENED = status_of("EmailOpened")


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        (None, DELIVERED, "delivered"),
        (None, OPENED, None),
        ("delivered", OPENED, "delivered"),
        ("delivered", HARD, "bounced"),
        ("bounced", DELIVERED, "bounced"),
        ("complained", DELIVERED, "complained"),
        ("complained", HARD, "complained"),
        ("delivered", COMPLAINED, "complained"),
        ("bounced", COMPLAINED, "complained"),
        ("delayed", DELIVERED, "delivered"),
        ("delivered", DELAYED, "delivered"),
        (None, DELAYED, "delayed"),
        ("delayed", SOFT, "soft_bounced"),
        ("soft_bounced", DELIVERED, "delivered"),
        ("delivered", SOFT, "delivered"),
        ("soft_bounced", HARD, "bounced"),
        (None, REJECTED, "rejected"),
        ("rejected", DELIVERED, "rejected"),
    ],
)
def test_next_status(current: str | None, reported: str | None, expected: str | None) -> None:
    assert next_status(current, reported) == expected  # type: ignore[arg-type]
