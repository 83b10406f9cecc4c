"""The event catalog: one frozen msgspec Struct per thing that happened.

An event's type name is its class name and is stored in `events.type`; its fields are stored
as JSON in `events.data`. New fields get defaults, so older rows still decode. Names are in
the past tense.

Streams: an email's events use its request id; a message's body uses its message id; the
suppression list uses `recipient:<address>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Base of every event payload."""

    type_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = cls.__name__


# --- Submission -------------------------------------------------------------------------


class MessageSubmitted(Event, frozen=True, kw_only=True):
    """A message body accepted by the API, stored once however many recipients it has."""

    message_id: str
    topic_id: str
    subject: str
    html: str
    text: str | None = None
    reply_to: tuple[str, ...] = ()
    tags: dict[str, str] = {}
    track_clicks: bool = False
    unsubscribe: bool = False
    recipient_count: int = 0


class EmailRequested(Event, frozen=True, kw_only=True):
    """One recipient of one message, accepted by the API."""

    request_id: str
    message_id: str
    topic_id: str
    recipient: str
    scheduled_at: datetime
    """When it may be sent: the requested time, or the submission time for 'now' or a past time."""
    requested_scheduled_at: datetime | None = None
    """The client's scheduledAt as given (it may lie in the past); None when it asked for now."""


class EmailScheduled(Event, frozen=True, kw_only=True):
    """The email's send time lies in the future."""

    request_id: str
    topic_id: str
    scheduled_at: datetime


class EmailCancelled(Event, frozen=True, kw_only=True):
    """The email was cancelled before it was sent."""

    request_id: str
    topic_id: str
    scope: Literal["request", "topic"] = "request"


class EmailSuppressed(Event, frozen=True, kw_only=True):
    """The email was not sent because its recipient is on the suppression list."""

    request_id: str
    topic_id: str
    recipient: str
    reason: str


# --- Sending ----------------------------------------------------------------------------


class EmailSent(Event, frozen=True, kw_only=True):
    """SES accepted the email."""

    request_id: str
    topic_id: str
    ses_message_id: str
    attempt: int


class EmailSendFailed(Event, frozen=True, kw_only=True):
    """A send attempt failed. `retry_at` is set when another attempt will follow."""

    request_id: str
    topic_id: str
    attempt: int
    error_code: str
    error_message: str
    permanent: bool
    retry_at: datetime | None = None
    kind: str | None = None
    """throttled, quota_exceeded, account_paused, permanent or transient."""


class EmailSendUncertain(Event, frozen=True, kw_only=True):
    """A send was in flight when its dispatcher died; SES may or may not have accepted it."""

    request_id: str
    topic_id: str
    attempt: int
    claimed_at: datetime
    claimed_by: str | None = None
    """The dispatcher that held the claim."""


class EmailRequeued(Event, frozen=True, kw_only=True):
    """An uncertain email was put back in the queue to be sent again."""

    request_id: str
    topic_id: str
    reason: Literal["operator", "grace_period"] = "operator"


# --- Feedback from SES ------------------------------------------------------------------


FeedbackSource = Literal["notification", "event_publishing"]


class Feedback(Event, frozen=True, kw_only=True):
    """Fields shared by every SES feedback event about one recipient."""

    ses_message_id: str
    recipient: str
    request_id: str | None = None
    """None while the SES message id is not linked to a request."""
    topic_id: str | None = None
    sns_message_id: str | None = None
    source: FeedbackSource = "notification"
    extra: dict[str, Any] = {}
    """Fields of the SES payload that this version does not map, kept as SES sent them."""


class EmailDelivered(Feedback, frozen=True, kw_only=True):
    smtp_response: str | None = None
    processing_time_ms: int | None = None


class EmailBounced(Feedback, frozen=True, kw_only=True):
    bounce_type: str
    """Permanent, Transient or Undetermined, as SES reports it."""
    bounce_subtype: str | None = None
    action: str | None = None
    status: str | None = None
    diagnostic_code: str | None = None

    @property
    def hard(self) -> bool:
        return self.bounce_type == "Permanent"


class EmailComplained(Feedback, frozen=True, kw_only=True):
    feedback_type: str | None = None
    complaint_subtype: str | None = None


class EmailRejected(Feedback, frozen=True, kw_only=True):
    reason: str | None = None


class EmailDeliveryDelayed(Feedback, frozen=True, kw_only=True):
    delay_type: str | None = None
    expiration_time: datetime | None = None


class EmailRenderingFailed(Feedback, frozen=True, kw_only=True):
    error_message: str | None = None
    template_name: str | None = None


class FeedbackHeld(Event, frozen=True, kw_only=True):
    """Feedback about an SES message id that no recorded send carries yet (stream
    `ses:<ses_message_id>`). It is appended again as `event_type` on the email's stream when
    the send is recorded, and stays here, counted in `held_feedback`, when it never is."""

    ses_message_id: str
    recipient: str
    event_type: str
    """The catalog name of the event it becomes once linked, such as EmailDelivered."""
    fields: dict[str, Any]
    """That event's fields except request_id and topic_id."""
    sns_message_id: str | None = None
    ses_type: str = ""
    """The SES type as sent (Delivery, Bounce, Open...)."""


class FeedbackUnrecognized(Event, frozen=True, kw_only=True):
    """A verified SNS notification whose SES payload this version cannot map to an event
    (stream `sns:<sns_message_id>`). The payload is kept as received."""

    sns_message_id: str
    topic_arn: str
    reason: str
    message: str
    """The SNS Message as received: usually SES's JSON, as text."""


# --- Engagement -------------------------------------------------------------------------

EngagementSource = Literal["pixel", "link", "ses"]


class EmailOpened(Event, frozen=True, kw_only=True):
    """The tracking pixel was loaded, or SES reported an open."""

    request_id: str
    topic_id: str | None = None
    user_agent: str | None = None
    machine: bool = False
    """True for image proxies, privacy prefetchers and scanners: not a person reading."""
    proxy: str | None = None
    """The proxy or prefetcher that fetched it, when known (for example 'gmail', 'apple_mpp')."""
    source: EngagementSource = "pixel"
    duplicate: bool = False
    """True when another source already reported this same open (SES and the pixel both)."""


class EmailClicked(Event, frozen=True, kw_only=True):
    """A tracked link was followed, or SES reported a click."""

    request_id: str
    topic_id: str | None = None
    link: str
    user_agent: str | None = None
    machine: bool = False
    source: EngagementSource = "link"
    duplicate: bool = False
    """True when another source already reported this same click."""


class EmailUnsubscribed(Event, frozen=True, kw_only=True):
    """The recipient used the unsubscribe link or the one-click header."""

    request_id: str
    topic_id: str | None = None
    recipient: str
    source: Literal["link", "one_click", "ses"] = "link"


# --- Suppression list (stream: recipient:<address>) -------------------------------------

SuppressionReason = Literal["bounce", "complaint", "unsubscribe", "manual"]


class RecipientSuppressed(Event, frozen=True, kw_only=True):
    address: str
    reason: SuppressionReason
    request_id: str | None = None
    note: str | None = None


class RecipientUnsuppressed(Event, frozen=True, kw_only=True):
    address: str
    note: str | None = None


CATALOG: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        MessageSubmitted,
        EmailRequested,
        EmailScheduled,
        EmailCancelled,
        EmailSuppressed,
        EmailSent,
        EmailSendFailed,
        EmailSendUncertain,
        EmailRequeued,
        EmailDelivered,
        EmailBounced,
        EmailComplained,
        EmailRejected,
        EmailDeliveryDelayed,
        EmailRenderingFailed,
        FeedbackHeld,
        FeedbackUnrecognized,
        EmailOpened,
        EmailClicked,
        EmailUnsubscribed,
        RecipientSuppressed,
        RecipientUnsuppressed,
    )
}


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event whose type this version does not know, kept as raw JSON."""

    type_name: str
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()
_decoders = {name: msgspec.json.Decoder(cls) for name, cls in CATALOG.items()}


def encode(event: Event) -> bytes:
    """Serialise an event's fields to JSON for `events.data`."""
    return _encoder.encode(event)


def decode(type_name: str, data: bytes | str) -> Event | UnknownEvent:
    """Rebuild an event from its stored type name and JSON; unknown types come back raw."""
    decoder = _decoders.get(type_name)
    if decoder is None:
        raw = data.encode() if isinstance(data, str) else data
        return UnknownEvent(type_name, msgspec.Raw(raw))
    event: Event = decoder.decode(data)
    return event
