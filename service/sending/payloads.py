"""The JSON bodies of the submission and cancellation endpoints, as msgspec Structs.

The request body is the Go aws-ses-sender recipe's (`messages[].topicId`, `emails`,
`subject`, `content`, `scheduledAt`) plus optional fields. Unknown fields are rejected, so
a misspelt `scheduled_at` is a 400 instead of an email sent now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec


class MessageIn(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """One message of a submission: the same subject and content for every address in `emails`."""

    topic_id: str
    emails: list[str]
    subject: str
    content: str
    """The HTML body."""
    scheduled_at: str | None = None
    """RFC 3339 time with an offset or Z; absent, null, empty or past means send now."""
    text: str | None = None
    """An optional plain-text body sent next to the HTML one."""
    reply_to: list[str] = []
    tags: dict[str, str] = {}
    track_clicks: bool = False
    unsubscribe: bool = False


class SubmitRequest(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[MessageIn]


EmailState = Literal["queued", "scheduled"]


class AcceptedEmail(msgspec.Struct, rename="camel"):
    """The request id assigned to one recipient."""

    email: str
    """The address as it will be sent to: domain lower-cased and in punycode."""
    request_id: str


class AcceptedMessage(msgspec.Struct, rename="camel"):
    message_id: str
    topic_id: str
    status: EmailState
    due_at: datetime
    """When its emails become due: scheduledAt, or the submission time if that is earlier."""
    requests: list[AcceptedEmail]
    duplicates_removed: int
    """Addresses given more than once in `emails` (compared after normalisation), sent once."""


class SubmitResponse(msgspec.Struct, rename="camel"):
    """The 202 body; `count` is the number of emails accepted (one per distinct recipient)."""

    count: int
    messages: list[AcceptedMessage]
    elapsed: str
    """Time spent handling the request, as the recipe reports it (for example '3.2ms')."""


class TimelineEvent(msgspec.Struct, rename="camel"):
    position: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class EmailStatus(msgspec.Struct, rename="camel"):
    """One email: its status in the due queue and every event recorded for it."""

    request_id: str
    message_id: str
    topic_id: str
    recipient: str
    status: str
    due_at: datetime | None
    attempt: int
    ses_message_id: str | None
    created_at: datetime
    updated_at: datetime
    events: list[TimelineEvent]


class EmailCancelledResponse(msgspec.Struct, rename="camel"):
    request_id: str
    status: Literal["cancelled"]


class TopicCancelledResponse(msgspec.Struct, rename="camel"):
    topic_id: str
    cancelled: int
    """How many scheduled or queued emails of the topic were cancelled."""
