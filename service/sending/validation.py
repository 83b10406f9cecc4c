"""Validation of a submission before anything is written: every rule names the field and value.

`validate_submission` returns the messages in the form `submit` writes them, with
recipients normalised (domain lower-cased and in punycode) and duplicates removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.addresses import InvalidAddress, normalize_address
from service.config import Settings
from service.sending.errors import InvalidRequest, RequestTooLarge
from service.sending.payloads import MessageIn, SubmitRequest

TOPIC_ID_MAX_LENGTH = 128
_TOPIC_ID = re.compile(r"[A-Za-z0-9_.:-]+")

# RFC 3339 section 5.6: a full date, T (or a space, which section 5.6 allows), a full time,
# and a mandatory offset. Python's fromisoformat alone would accept a time without one.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)

# SES message tags allow only these characters in names, at most 256 of them. Values are
# encoded for SES by the dispatcher, so any text is accepted there, up to the same length.
_TAG_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
TAG_VALUE_MAX_LENGTH = 256
# NOTE: a limit of this service, chosen so a message cannot carry an unbounded map.
MAX_TAGS = 50


@dataclass(frozen=True)
class ValidMessage:
    """A message that passed validation, ready for `submit`."""

    topic_id: str
    recipients: tuple[str, ...]
    """Normalised and distinct, in the order first given."""
    subject: str
    html: str
    text: str | None = None
    reply_to: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    track_clicks: bool = False
    unsubscribe: bool = False
    scheduled_at: datetime | None = None
    """Aware; None means now."""
    duplicates_removed: int = 0


def shown(value: object, limit: int = 80) -> str:
    """Return `value` quoted for an error message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_submission(request: SubmitRequest, settings: Settings) -> list[ValidMessage]:
    """Check the whole request; raise InvalidRequest or RequestTooLarge on the first problem."""
    if not request.messages:
        raise InvalidRequest("messages is empty: send at least one message.", "messages")
    total = sum(len(message.emails) for message in request.messages)
    if total > settings.max_recipients_per_request:
        raise RequestTooLarge(
            f"The request has {total} recipients, more than the limit of "
            f"{settings.max_recipients_per_request} (MAX_RECIPIENTS_PER_REQUEST); "
            f"split it into several requests.",
            "messages",
        )
    return [
        validate_message(message, f"messages[{index}]", settings)
        for index, message in enumerate(request.messages)
    ]


def validate_message(message: MessageIn, path: str, settings: Settings) -> ValidMessage:
    recipients = _recipients(message.emails, f"{path}.emails")
    distinct = tuple(dict.fromkeys(recipients))
    return ValidMessage(
        topic_id=check_topic_id(message.topic_id, f"{path}.topicId"),
        recipients=distinct,
        subject=_subject(message.subject, f"{path}.subject", settings.max_subject_length),
        html=_body(message.content, f"{path}.content", settings.max_content_bytes),
        text=_text(message.text, f"{path}.text", settings.max_content_bytes),
        reply_to=tuple(_addresses(message.reply_to, f"{path}.replyTo")),
        tags=_tags(message.tags, f"{path}.tags"),
        track_clicks=message.track_clicks,
        unsubscribe=message.unsubscribe,
        scheduled_at=parse_scheduled_at(message.scheduled_at, f"{path}.scheduledAt"),
        duplicates_removed=len(recipients) - len(distinct),
    )


def check_topic_id(value: str, path: str) -> str:
    if not 1 <= len(value) <= TOPIC_ID_MAX_LENGTH:
        raise InvalidRequest(
            f"{path} {shown(value)} has {len(value)} characters; a topic id has 1 to "
            f"{TOPIC_ID_MAX_LENGTH}.",
            path,
        )
    if not _TOPIC_ID.fullmatch(value):
        raise InvalidRequest(
            f"{path} {shown(value)} contains characters other than ASCII letters, digits, "
            f"'_', '-', '.' and ':'.",
            path,
        )
    return value


def _recipients(emails: list[str], path: str) -> list[str]:
    if not emails:
        raise InvalidRequest(f"{path} is empty: give at least one address.", path)
    return _addresses(emails, path)


def _addresses(addresses: list[str], path: str) -> list[str]:
    normalised = []
    for index, address in enumerate(addresses):
        try:
            normalised.append(normalize_address(address))
        except InvalidAddress as error:
            raise InvalidRequest(
                f"{path}[{index}] {shown(address)} is not a valid email address: {error.reason}",
                f"{path}[{index}]",
            ) from None
    return normalised


def _subject(value: str, path: str, max_length: int) -> str:
    if not value.strip():
        raise InvalidRequest(f"{path} is empty: give the email a subject.", path)
    if len(value) > max_length:
        raise InvalidRequest(
            f"{path} has {len(value)} characters, more than the limit of {max_length} "
            f"(MAX_SUBJECT_LENGTH).",
            path,
        )
    if "\r" in value or "\n" in value:
        raise InvalidRequest(
            f"{path} {shown(value)} contains a line break; a subject is one line.", path
        )
    return value


def _body(value: str, path: str, max_bytes: int) -> str:
    if not value.strip():
        raise InvalidRequest(f"{path} is empty: give the email a body.", path)
    return _within_size(value, path, max_bytes)


def _text(value: str | None, path: str, max_bytes: int) -> str | None:
    # The recipe's clients send "" for an absent field, so an empty text means none.
    if value is None or not value.strip():
        return None
    return _within_size(value, path, max_bytes)


def _within_size(value: str, path: str, max_bytes: int) -> str:
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise RequestTooLarge(
            f"{path} is {size} bytes in UTF-8, more than the limit of {max_bytes} "
            f"(MAX_CONTENT_BYTES).",
            path,
        )
    return value


def _tags(tags: dict[str, str], path: str) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"{path} has {len(tags)} tags, more than {MAX_TAGS}.", path)
    for name, value in tags.items():
        if not _TAG_NAME.fullmatch(name):
            raise InvalidRequest(
                f"{path} name {shown(name)} is invalid: SES tag names have 1 to 256 ASCII "
                f"letters, digits, '_' or '-'.",
                f"{path}.{name}",
            )
        if len(value) > TAG_VALUE_MAX_LENGTH:
            raise InvalidRequest(
                f"{path}.{name} has {len(value)} characters, more than "
                f"{TAG_VALUE_MAX_LENGTH}.",
                f"{path}.{name}",
            )
    return dict(tags)


def parse_scheduled_at(value: str | None, path: str) -> datetime | None:
    """Parse an RFC 3339 time that carries an offset or Z; return it in UTC, None for now."""
    # The recipe treats an empty scheduledAt as "send now"; its clients send "".
    if value is None or value == "":
        return None
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise InvalidRequest(
            f"{path} {shown(value)} is not an RFC 3339 time; use a form such as "
            f"2025-12-25T10:00:00+09:00 or 2025-12-25T01:00:00Z.",
            path,
        )
    if match.group("offset") is None:
        raise InvalidRequest(
            f"{path} {shown(value)} has no UTC offset, so its moment is ambiguous; add Z or "
            f"an offset such as +09:00.",
            path,
        )
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError as error:
        raise InvalidRequest(f"{path} {shown(value)} is not a valid time: {error}.", path) from None
    return parsed.astimezone(UTC)
