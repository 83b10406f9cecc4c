"""One `email_status` row and how each event changes it (no database here)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from projections.fields import is_duplicate, topic_id_of
from projections.status_rules import next_status, status_of
from service.events.store import StoredEvent
from service.events.types import (
    EmailBounced,
    EmailClicked,
    EmailOpened,
    EmailRequested,
    EmailScheduled,
    EmailSendFailed,
    EmailSendUncertain,
    EmailSent,
    EmailSuppressed,
    EmailUnsubscribed,
    Feedback,
)

# The milestone column each status-setting event fills with its earliest occurred_at.
_MILESTONE_OF_STATUS = {
    "requested": "requested_at",
    "cancelled": "cancelled_at",
    "suppressed": "suppressed_at",
    "sent": "sent_at",
    "failed": "failed_at",
    "uncertain": "uncertain_at",
    "delivered": "delivered_at",
    "delayed": "delayed_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
    "rejected": "rejected_at",
    "rendering_failed": "rendering_failed_at",
}


@dataclass(slots=True)
class EmailRow:
    """The columns of `email_status`, in table order."""

    request_id: str
    message_id: str | None
    topic_id: str | None
    recipient: str | None
    status: str
    ses_message_id: str | None
    attempts: int
    last_error_code: str | None
    bounce_type: str | None
    opens: int
    machine_opens: int
    clicks: int
    requested_at: datetime | None
    send_at: datetime | None
    cancelled_at: datetime | None
    suppressed_at: datetime | None
    sent_at: datetime | None
    failed_at: datetime | None
    uncertain_at: datetime | None
    delivered_at: datetime | None
    delayed_at: datetime | None
    bounced_at: datetime | None
    complained_at: datetime | None
    rejected_at: datetime | None
    rendering_failed_at: datetime | None
    first_opened_at: datetime | None
    last_opened_at: datetime | None
    first_clicked_at: datetime | None
    unsubscribed_at: datetime | None
    last_event_at: datetime
    last_position: int

    @classmethod
    def new(cls, request_id: str, status: str, stored: StoredEvent) -> EmailRow:
        empty = dict.fromkeys(COLUMNS)
        empty.update(
            request_id=request_id,
            status=status,
            attempts=0,
            opens=0,
            machine_opens=0,
            clicks=0,
            last_event_at=stored.occurred_at,
            last_position=stored.position,
        )
        return cls(**empty)  # type: ignore[arg-type]

    def earliest(self, column: str, moment: datetime) -> None:
        current = getattr(self, column)
        if current is None or moment < current:
            setattr(self, column, moment)


COLUMNS = tuple(f.name for f in fields(EmailRow))


def fold(row: EmailRow | None, request_id: str, stored: StoredEvent) -> EmailRow | None:
    """Return the row after `stored`; None when there is no row and the event makes none.

    Only events that set a status create a row, so opens or clicks naming an unknown
    request id do not.
    """
    event = stored.event
    status = status_of(event)
    if row is None:
        if status is None:
            return None
        row = EmailRow.new(request_id, status, stored)
    elif status is not None:
        row.status = next_status(row.status, status)
    if status is not None and status in _MILESTONE_OF_STATUS:
        row.earliest(_MILESTONE_OF_STATUS[status], stored.occurred_at)
    row.topic_id = row.topic_id or topic_id_of(event)
    _apply_fields(row, stored)
    row.last_event_at = max(row.last_event_at, stored.occurred_at)
    row.last_position = stored.position
    return row


def _apply_fields(row: EmailRow, stored: StoredEvent) -> None:
    event = stored.event
    moment = stored.occurred_at
    if isinstance(event, EmailRequested):
        row.message_id = event.message_id
        row.recipient = event.recipient
        row.send_at = event.scheduled_at
    elif isinstance(event, EmailScheduled):
        row.send_at = event.scheduled_at
    elif isinstance(event, EmailSuppressed):
        row.recipient = row.recipient or event.recipient
    elif isinstance(event, EmailSent):
        row.ses_message_id = event.ses_message_id
        row.attempts = max(row.attempts, event.attempt)
    elif isinstance(event, EmailSendFailed):
        row.attempts = max(row.attempts, event.attempt)
        row.last_error_code = event.error_code
    elif isinstance(event, EmailSendUncertain):
        row.attempts = max(row.attempts, event.attempt)
    elif isinstance(event, Feedback):
        row.ses_message_id = row.ses_message_id or event.ses_message_id
        row.recipient = row.recipient or event.recipient
        if isinstance(event, EmailBounced) and row.bounce_type != "Permanent":
            # A hard bounce is final for the address; a later soft one does not undo it.
            row.bounce_type = event.bounce_type
    elif isinstance(event, EmailOpened | EmailClicked) and not is_duplicate(event):
        _engagement(row, event, moment)
    elif isinstance(event, EmailUnsubscribed):
        row.earliest("unsubscribed_at", moment)


def _engagement(row: EmailRow, event: EmailOpened | EmailClicked, moment: datetime) -> None:
    if isinstance(event, EmailOpened):
        row.opens += 1
        if event.machine:
            row.machine_opens += 1
            return
        row.earliest("first_opened_at", moment)
        if row.last_opened_at is None or moment > row.last_opened_at:
            row.last_opened_at = moment
        return
    row.clicks += 1
    if not event.machine:
        row.earliest("first_clicked_at", moment)
