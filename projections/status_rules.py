"""An email's current status: which event sets which status, and which status wins.

Events arrive in any order, so a status is replaced only by one of the same or a higher
rank: a bounce after a delivery makes the email bounced, and a complaint is never replaced
by a later delivery. Among statuses of the same rank the later event wins.
"""

from __future__ import annotations

from service.events.types import (
    EmailBounced,
    EmailCancelled,
    EmailComplained,
    EmailDelivered,
    EmailDeliveryDelayed,
    EmailRejected,
    EmailRenderingFailed,
    EmailRequested,
    EmailScheduled,
    EmailSendFailed,
    EmailSendUncertain,
    EmailSent,
    EmailSuppressed,
    Event,
    UnknownEvent,
)

STATUS_RANK: dict[str, int] = {
    # Not sent yet, and may still be.
    "requested": 0,
    "scheduled": 0,
    "retrying": 0,
    "uncertain": 0,
    # Stopped before SES accepted it.
    "cancelled": 1,
    "suppressed": 1,
    "failed": 1,
    # Accepted by SES, then what SES reported, weakest evidence first.
    "sent": 2,
    "delayed": 3,
    "delivered": 4,
    "bounced": 5,
    "rejected": 5,
    "rendering_failed": 5,
    "complained": 6,
}

_STATUS_OF: dict[type[Event], str] = {
    EmailRequested: "requested",
    EmailScheduled: "scheduled",
    EmailCancelled: "cancelled",
    EmailSuppressed: "suppressed",
    EmailSent: "sent",
    EmailSendUncertain: "uncertain",
    EmailDelivered: "delivered",
    EmailDeliveryDelayed: "delayed",
    EmailBounced: "bounced",
    EmailComplained: "complained",
    EmailRejected: "rejected",
    EmailRenderingFailed: "rendering_failed",
}


def status_of(event: Event | UnknownEvent) -> str | None:
    """Return the status `event` reports, or None for events that do not change a status."""
    if isinstance(event, EmailSendFailed):
        final = event.permanent or event.retry_at is None
        return "failed" if final else "retrying"
    return _STATUS_OF.get(type(event))  # type: ignore[arg-type]


def next_status(current: str | None, incoming: str) -> str:
    """Return the status after an event reporting `incoming` arrives at one in `current`."""
    if current is None or STATUS_RANK[incoming] >= STATUS_RANK[current]:
        return incoming
    return current
