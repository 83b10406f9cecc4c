"""The event catalog: every type survives an encode/decode round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from service.events.types import (
    CATALOG,
    EmailBounced,
    EmailRequested,
    Event,
    MessageSubmitted,
    UnknownEvent,
    decode,
    encode,
)

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def sample(cls: type[Event]) -> Event:
    """Build an instance with every required field filled with a plausible value."""
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(cls):
        if field.required:
            values[field.name] = _value_for(field.type)
    return cls(**values)


def _value_for(annotation: object) -> object:
    if annotation is str:
        return "x"
    if annotation is int:
        return 1
    if annotation is bool:
        return True
    if annotation is datetime:
        return AT
    args = getattr(annotation, "__args__", ())
    if args:
        return args[0]  # a Literal's first value
    raise AssertionError(f"no sample for {annotation!r}")


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_round_trip(name: str) -> None:
    """Decoding what was encoded gives an equal event of the same type."""
    event = sample(CATALOG[name])
    assert decode(name, encode(event)) == event


def test_type_name_is_class_name() -> None:
    """The stored type name is the class name."""
    assert EmailRequested.type_name == "EmailRequested"


def test_unknown_type_comes_back_raw() -> None:
    """A type this version does not know is kept as raw JSON, not an error."""
    decoded = decode("EmailTeleported", b'{"a": 1}')
    assert isinstance(decoded, UnknownEvent)
    assert bytes(decoded.data) == b'{"a": 1}'


def test_new_fields_are_ignored_and_missing_defaults_apply() -> None:
    """Rows written by a newer or older version still decode."""
    data = b'{"ses_message_id":"m","recipient":"a@b.c","bounce_type":"Permanent","later":1}'
    bounced = decode("EmailBounced", data)
    assert isinstance(bounced, EmailBounced)
    assert bounced.hard
    assert bounced.request_id is None


def test_message_body_fields() -> None:
    """MessageSubmitted keeps the optional parts of a message."""
    message = MessageSubmitted(
        message_id="m", topic_id="t", subject="Hi", html="<p>x</p>", tags={"a": "b"}
    )
    decoded = decode("MessageSubmitted", encode(message))
    assert decoded == message
