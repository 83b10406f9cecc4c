"""Parsing scheduledAt and checking topic ids, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.sending.errors import InvalidRequest
from service.sending.validation import check_topic_id, parse_scheduled_at

FIELD = "messages[0].scheduledAt"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02t03:04:05z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02 03:04:05+00:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T12:04:05+09:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-01T22:34:05-04:30", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T03:04:05.5Z", datetime(2030, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
    ],
)
def test_offsets_convert_to_utc(value: str, expected: datetime) -> None:
    """Each RFC 3339 form with an offset parses to the same instant in UTC."""
    parsed = parse_scheduled_at(value, FIELD)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("value", [None, ""])
def test_absent_means_now(value: str | None) -> None:
    """None and the empty string both mean send now."""
    assert parse_scheduled_at(value, FIELD) is None


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-02T03:04:05",
        "2030-01-02 03:04:05",
        "2030-01-02T03:04:05.123",
    ],
)
def test_naive_rejected(value: str) -> None:
    """A time without an offset is rejected, naming the field and the value."""
    with pytest.raises(InvalidRequest, match="no UTC offset") as raised:
        parse_scheduled_at(value, FIELD)
    assert raised.value.field == FIELD
    assert repr(value) in raised.value.message


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-02",
        "03:04:05Z",
        "20300102T030405Z",
        "2030-01-02T03:04Z",
        "next monday",
        "1893456000",
    ],
)
def test_other_forms_rejected(value: str) -> None:
    """Dates alone, times alone, basic ISO 8601 and epoch seconds are not RFC 3339."""
    with pytest.raises(InvalidRequest, match="not an RFC 3339 time"):
        parse_scheduled_at(value, FIELD)


def test_impossible_date_rejected() -> None:
    """A well-formed but impossible date is rejected with the parser's reason."""
    with pytest.raises(InvalidRequest, match="not a valid time"):
        parse_scheduled_at("2030-13-01T00:00:00Z", FIELD)


@pytest.mark.parametrize("topic", ["a", "news-2026", "shop:orders.v2_eu", "x" * 128])
def test_topic_ids_accepted(topic: str) -> None:
    """Letters, digits, _ - . : and lengths 1 to 128 are accepted."""
    assert check_topic_id(topic, "topicId") == topic


@pytest.mark.parametrize("topic", ["", "x" * 129, "a b", "naïve", "a/b", "a\nb"])
def test_topic_ids_rejected(topic: str) -> None:
    """Other characters and lengths are rejected, naming the field."""
    with pytest.raises(InvalidRequest) as raised:
        check_topic_id(topic, "topicId")
    assert raised.value.field == "topicId"
