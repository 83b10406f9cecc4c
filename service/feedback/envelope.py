"""The SNS message envelope: decoding a callback body and checking its required keys."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from service.feedback.rejection import Rejected

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
MESSAGE_TYPES: tuple[str, ...] = (
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
)

# Keys SES puts at the top of its own payload; a body made of these is not wrapped by SNS.
_SES_KEYS = frozenset({"notificationType", "eventType", "mail"})

_COMMON_KEYS = (
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_CONFIRMATION_KEYS = ("SubscribeURL", "Token")


class SnsEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """One SNS message as posted to the endpoint. `fields` contains every string key as received,
    which the string to sign is built from."""

    type: MessageType
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    signature: str
    signing_cert_url: str
    subject: str | None
    subscribe_url: str | None
    fields: dict[str, str]


def parse_envelope(body: bytes) -> SnsEnvelope:
    """Decode a callback body into an envelope; raise Rejected(400) saying what is wrong."""
    try:
        decoded: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise Rejected(400, "The body is not JSON; expected an SNS message.") from None
    if not isinstance(decoded, dict):
        raise Rejected(400, "The body is not a JSON object; expected an SNS message.")
    if "Type" not in decoded and _SES_KEYS & decoded.keys():
        raise Rejected(
            400,
            "The body is an SES payload without the SNS envelope, so it cannot be verified; "
            "disable raw message delivery on the SNS subscription.",
        )
    kind = decoded.get("Type")
    if kind not in MESSAGE_TYPES:
        raise Rejected(
            400,
            f"Type {kind!r} is not an SNS message type; "
            f"expected one of {', '.join(MESSAGE_TYPES)}.",
        )
    required = _COMMON_KEYS + (_CONFIRMATION_KEYS if kind != "Notification" else ())
    for key in required:
        if not isinstance(decoded.get(key), str):
            raise Rejected(400, f"The SNS message has no string {key}; it cannot be verified.")
    subject = decoded.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise Rejected(400, "The SNS message's Subject is not a string; it cannot be verified.")
    fields = {key: value for key, value in decoded.items() if isinstance(value, str)}
    return SnsEnvelope(
        type=kind,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        timestamp=fields["Timestamp"],
        signature_version=fields["SignatureVersion"],
        signature=fields["Signature"],
        signing_cert_url=fields["SigningCertURL"],
        subject=subject,
        subscribe_url=fields.get("SubscribeURL"),
        fields=fields,
    )
