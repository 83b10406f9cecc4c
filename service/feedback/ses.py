"""SES payloads to feedback drafts: one draft per recipient, still without a request id.

Both families are read. Identity notifications carry `notificationType` (Bounce, Complaint,
Delivery); configuration-set event publishing carries `eventType` (Send, Reject, Bounce,
Complaint, Delivery, Open, Click, Rendering Failure, DeliveryDelay, Subscription). Optional
fields may be missing anywhere. A payload this module cannot map becomes an Unrecognized
result holding the reason, so the caller stores it instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import msgspec

from service.events.types import FeedbackSource
from service.logging import get_logger

log = get_logger(__name__)

REQUEST_ID_TAG = "request_id"


@dataclass(frozen=True)
class FeedbackDraft:
    """One event about one recipient, missing only the request and topic it belongs to."""

    event_type: str
    """Catalog name of the event, such as EmailBounced."""
    recipient: str
    fields: dict[str, Any]
    """The event's fields other than request_id and topic_id, as JSON values."""
    occurred_at: datetime | None


@dataclass(frozen=True)
class SesFeedback:
    """The feedback one SES payload carries about one SES message."""

    kind: str
    """The SES type as sent: Bounce, Open, Rendering Failure..."""
    ses_message_id: str
    request_tag: str | None
    """The request id from the `request_id` tag, when the send carried one."""
    drafts: list[FeedbackDraft] = field(default_factory=list)


@dataclass(frozen=True)
class Unrecognized:
    kind: str
    reason: str


class _Malformed(Exception):
    """A known SES type missing something it cannot be mapped without."""


def parse_ses_payload(payload: Any, sns_message_id: str) -> SesFeedback | Unrecognized:
    """Map a decoded SES payload to drafts, or return why it cannot be mapped."""
    if not isinstance(payload, dict):
        return Unrecognized("unknown", "the SES payload is not a JSON object")
    source: FeedbackSource
    if isinstance(payload.get("eventType"), str):
        kind, source = payload["eventType"], "event_publishing"
    elif isinstance(payload.get("notificationType"), str):
        kind, source = payload["notificationType"], "notification"
    else:
        return Unrecognized("unknown", "the payload has neither eventType nor notificationType")
    parser = _PARSERS.get(kind)
    if parser is None:
        return Unrecognized(kind, f"SES type {kind!r} is not one this version maps")
    try:
        mail = _object(payload, "mail")
        ses_message_id = _text(mail, "messageId")
        common = _Common(kind, source, ses_message_id, sns_message_id, mail)
        drafts = parser(payload, common)
    except _Malformed as error:
        return Unrecognized(kind, str(error))
    return SesFeedback(kind, ses_message_id, _request_tag(mail), drafts)


@dataclass(frozen=True)
class _Common:
    kind: str
    source: FeedbackSource
    ses_message_id: str
    sns_message_id: str
    mail: dict[str, Any]

    def feedback_fields(self, recipient: str) -> dict[str, Any]:
        """Return the fields every Feedback event has, for one recipient."""
        return {
            "ses_message_id": self.ses_message_id,
            "recipient": recipient,
            "sns_message_id": self.sns_message_id,
            "source": self.source,
        }

    def destinations(self) -> list[str]:
        recipients = [_address(item) for item in _list(self.mail, "destination")]
        found = [r for r in recipients if r]
        if not found:
            raise _Malformed("mail.destination names no recipient")
        return found


# --- field access that turns a missing or mistyped field into _Malformed or None ---------


def _object(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise _Malformed(f"{key} is missing or not an object")
    return value


def _list(container: dict[str, Any], key: str) -> list[Any]:
    value = container.get(key)
    if not isinstance(value, list):
        raise _Malformed(f"{key} is missing or not a list")
    return value


def _text(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{key} is missing or not a string")
    return value


def _optional_text(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    return value if isinstance(value, str) else None


def _optional_int(container: dict[str, Any], key: str) -> int | None:
    value = container.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timestamp(*candidates: Any) -> datetime | None:
    for candidate in candidates:
        if isinstance(candidate, str):
            try:
                return msgspec.convert(candidate, datetime)
            except msgspec.ValidationError:
                continue
    return None


def _address(value: Any) -> str:
    # Recipients may come as 'Name <address>'; the address is what the suppression list keys on.
    if not isinstance(value, str):
        return ""
    if "<" not in value:
        return value.strip()
    return parseaddr(value)[1] or value.strip()


def _request_tag(mail: dict[str, Any]) -> str | None:
    tags = mail.get("tags")
    if not isinstance(tags, dict):
        return None
    values = tags.get(REQUEST_ID_TAG)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def _extra(
    details: dict[str, Any], mapped: frozenset[str], known: frozenset[str], kind: str
) -> dict[str, Any]:
    """Keep the fields not mapped to event fields; log the ones SES did not document."""
    unknown = sorted(details.keys() - known)
    if unknown:
        log.info("feedback_fields_unknown", kind=kind, fields=unknown)
    return {key: value for key, value in details.items() if key not in mapped}


def _recipients(details: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for item in _list(details, key):
        # Bounced and delayed recipients are objects; delivery recipients are plain strings.
        entry = item if isinstance(item, dict) else {"emailAddress": item}
        if _address(entry.get("emailAddress")):
            entries.append(entry)
    if not entries:
        raise _Malformed(f"{key} names no recipient")
    return entries


# --- one parser per SES type -------------------------------------------------------------

_BOUNCE_KNOWN = frozenset(
    {
        "bounceType",
        "bounceSubType",
        "bouncedRecipients",
        "timestamp",
        "feedbackId",
        "remoteMtaIp",
        "reportingMTA",
    }
)


def _bounce(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "bounce")
    extra = _extra(
        details,
        frozenset({"bounceType", "bounceSubType", "bouncedRecipients"}),
        _BOUNCE_KNOWN,
        common.kind,
    )
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    drafts = []
    for entry in _recipients(details, "bouncedRecipients"):
        recipient = _address(entry["emailAddress"])
        fields = common.feedback_fields(recipient) | {
            "bounce_type": _optional_text(details, "bounceType") or "Undetermined",
            "bounce_subtype": _optional_text(details, "bounceSubType"),
            "action": _optional_text(entry, "action"),
            "status": _optional_text(entry, "status"),
            "diagnostic_code": _optional_text(entry, "diagnosticCode"),
            "extra": extra,
        }
        drafts.append(FeedbackDraft("EmailBounced", recipient, fields, occurred))
    return drafts


_COMPLAINT_KNOWN = frozenset(
    {
        "userAgent",
        "complainedRecipients",
        "complaintFeedbackType",
        "arrivalDate",
        "timestamp",
        "feedbackId",
        "complaintSubType",
    }
)


def _complaint(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "complaint")
    extra = _extra(
        details,
        frozenset({"complainedRecipients", "complaintFeedbackType", "complaintSubType"}),
        _COMPLAINT_KNOWN,
        common.kind,
    )
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    drafts = []
    for entry in _recipients(details, "complainedRecipients"):
        recipient = _address(entry["emailAddress"])
        fields = common.feedback_fields(recipient) | {
            "feedback_type": _optional_text(details, "complaintFeedbackType"),
            "complaint_subtype": _optional_text(details, "complaintSubType"),
            "extra": extra,
        }
        drafts.append(FeedbackDraft("EmailComplained", recipient, fields, occurred))
    return drafts


_DELIVERY_KNOWN = frozenset(
    {
        "timestamp",
        "processingTimeMillis",
        "recipients",
        "smtpResponse",
        "reportingMTA",
        "remoteMtaIp",
    }
)


def _delivery(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "delivery")
    extra = _extra(
        details,
        frozenset({"recipients", "smtpResponse", "processingTimeMillis"}),
        _DELIVERY_KNOWN,
        common.kind,
    )
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    drafts = []
    for entry in _recipients(details, "recipients"):
        recipient = _address(entry["emailAddress"])
        fields = common.feedback_fields(recipient) | {
            "smtp_response": _optional_text(details, "smtpResponse"),
            "processing_time_ms": _optional_int(details, "processingTimeMillis"),
            "extra": extra,
        }
        drafts.append(FeedbackDraft("EmailDelivered", recipient, fields, occurred))
    return drafts


_DELAY_KNOWN = frozenset(
    {"timestamp", "delayType", "expirationTime", "delayedRecipients", "reportingMTA"}
)


def _delivery_delay(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "deliveryDelay")
    extra = _extra(
        details,
        frozenset({"delayType", "expirationTime", "delayedRecipients"}),
        _DELAY_KNOWN,
        common.kind,
    )
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    expiration = _timestamp(details.get("expirationTime"))
    drafts = []
    for entry in _recipients(details, "delayedRecipients"):
        recipient = _address(entry["emailAddress"])
        fields = common.feedback_fields(recipient) | {
            "delay_type": _optional_text(details, "delayType"),
            "expiration_time": expiration.isoformat() if expiration else None,
            "extra": extra | {k: v for k, v in entry.items() if k != "emailAddress"},
        }
        drafts.append(FeedbackDraft("EmailDeliveryDelayed", recipient, fields, occurred))
    return drafts


def _reject(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = payload.get("reject") if isinstance(payload.get("reject"), dict) else {}
    assert isinstance(details, dict)
    extra = _extra(details, frozenset({"reason"}), frozenset({"reason"}), common.kind)
    occurred = _timestamp(common.mail.get("timestamp"))
    return [
        FeedbackDraft(
            "EmailRejected",
            recipient,
            common.feedback_fields(recipient)
            | {"reason": _optional_text(details, "reason"), "extra": extra},
            occurred,
        )
        for recipient in common.destinations()
    ]


def _rendering_failure(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    # SES puts this type's details under `failure`, not under a key named after the type.
    details = _object(payload, "failure")
    known = frozenset({"errorMessage", "templateName"})
    extra = _extra(details, known, known, common.kind)
    occurred = _timestamp(common.mail.get("timestamp"))
    return [
        FeedbackDraft(
            "EmailRenderingFailed",
            recipient,
            common.feedback_fields(recipient)
            | {
                "error_message": _optional_text(details, "errorMessage"),
                "template_name": _optional_text(details, "templateName"),
                "extra": extra,
            },
            occurred,
        )
        for recipient in common.destinations()
    ]


def _open(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "open")
    _extra(details, frozenset(), frozenset({"ipAddress", "timestamp", "userAgent"}), common.kind)
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    # machine, proxy and duplicate are set when the event is stored, by
    # service.tracking.record.mark_reported_engagements, with the pixel's own rules.
    fields = {"user_agent": _optional_text(details, "userAgent"), "source": "ses"}
    return [FeedbackDraft("EmailOpened", r, dict(fields), occurred) for r in common.destinations()]


def _click(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "click")
    _extra(
        details,
        frozenset(),
        frozenset({"ipAddress", "timestamp", "userAgent", "link", "linkTags"}),
        common.kind,
    )
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    fields = {
        "link": _text(details, "link"),
        "user_agent": _optional_text(details, "userAgent"),
        "source": "ses",
    }
    return [FeedbackDraft("EmailClicked", r, dict(fields), occurred) for r in common.destinations()]


def _subscription(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    details = _object(payload, "subscription")
    preferences = details.get("newTopicPreferences")
    unsubscribe_all = isinstance(preferences, dict) and preferences.get("unsubscribeAll") is True
    if not unsubscribe_all:
        # A change of topic preferences that keeps the contact subscribed has no event here.
        raise _Malformed("the subscription change does not unsubscribe from all topics")
    occurred = _timestamp(details.get("timestamp"), common.mail.get("timestamp"))
    return [
        FeedbackDraft("EmailUnsubscribed", r, {"recipient": r, "source": "ses"}, occurred)
        for r in common.destinations()
    ]


def _send(payload: dict[str, Any], common: _Common) -> list[FeedbackDraft]:
    # EmailSent, written by the dispatcher, already records what a Send event reports. The
    # Send event still links through its tag, which resolves an uncertain send.
    return []


_PARSERS: dict[str, Callable[[dict[str, Any], _Common], list[FeedbackDraft]]] = {
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Delivery": _delivery,
    "DeliveryDelay": _delivery_delay,
    "Reject": _reject,
    "Rendering Failure": _rendering_failure,
    "Open": _open,
    "Click": _click,
    "Subscription": _subscription,
    "Send": _send,
}
