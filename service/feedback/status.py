"""An email's feedback status from the feedback events it has received, in any order.

SES events arrive out of order, so a later event does not simply win. Each status has a rank
and an event moves the status only to an equal or higher rank: a bounce after a delivery
makes the email bounced, and nothing overwrites a complaint. A transient bounce ranks below
a delivery because auto-replies (out of office) arrive as transient bounces after delivery.
"""

from __future__ import annotations

from typing import Literal

FeedbackStatus = Literal[
    "delayed", "soft_bounced", "delivered", "bounced", "rejected", "rendering_failed", "complained"
]

_RANK: dict[str, int] = {
    "delayed": 1,
    "soft_bounced": 2,
    "delivered": 3,
    "rejected": 4,
    "rendering_failed": 4,
    "bounced": 5,
    "complained": 6,
}


def status_of(event_type: str, *, hard_bounce: bool = False) -> FeedbackStatus | None:
    """Return the status an event of `event_type` reports, or None for engagement events."""
    if event_type == "EmailBounced":
        return "bounced" if hard_bounce else "soft_bounced"
    return _STATUS_OF_EVENT.get(event_type)


_STATUS_OF_EVENT: dict[str, FeedbackStatus] = {
    "EmailDelivered": "delivered",
    "EmailDeliveryDelayed": "delayed",
    "EmailRejected": "rejected",
    "EmailRenderingFailed": "rendering_failed",
    "EmailComplained": "complained",
}


def next_status(current: str | None, reported: FeedbackStatus | None) -> str | None:
    """Return the feedback status after `reported` arrives at an email now at `current`."""
    if reported is None:
        return current
    if current is None or _RANK[reported] >= _RANK.get(current, 0):
        return reported
    return current
