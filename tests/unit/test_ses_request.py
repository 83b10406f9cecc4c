"""Building SESv2 SendEmail parameters, tag encoding and the outgoing email."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from service.dispatch.personalize import build_email
from service.dispatch.ses import OutgoingEmail, decode_tag, encode_tag, send_request
from service.events.types import MessageSubmitted

TAG_CHARACTERS = re.compile(r"[A-Za-z0-9_-]*")


@given(st.text())
def test_tag_encoding_round_trips(value: str) -> None:
    """Any text encodes to SES's tag characters and decodes back unchanged."""
    encoded = encode_tag(value)
    assert TAG_CHARACTERS.fullmatch(encoded)
    assert decode_tag(encoded) == value


def test_tag_encoding_examples() -> None:
    """Safe characters pass through; '_' doubles; others become hex bytes."""
    assert encode_tag("news-2024") == "news-2024"
    assert encode_tag("a_b") == "a__b"
    assert encode_tag("news.2024:q1") == "news_2E2024_3Aq1"
    assert encode_tag("é") == "_C3_A9"


def test_request_has_every_part() -> None:
    """Sender, recipient, UTF-8 subject and bodies, reply-to, headers, tags, configuration set."""
    email = OutgoingEmail(
        sender="sender@example.com",
        recipient="to@example.com",
        subject="Grüße",
        html="<p>Hallo</p>",
        text="Hallo",
        reply_to=("reply@example.com",),
        headers=(("List-Unsubscribe", "<https://example.com/u>"),),
        tags=(("request_id", "8d6c"), ("topic_id", "news.1")),
    )
    request = send_request(email, "feedback-set")
    assert request["FromEmailAddress"] == "sender@example.com"
    assert request["Destination"] == {"ToAddresses": ["to@example.com"]}
    simple = request["Content"]["Simple"]
    assert simple["Subject"] == {"Data": "Grüße", "Charset": "UTF-8"}
    assert simple["Body"]["Html"] == {"Data": "<p>Hallo</p>", "Charset": "UTF-8"}
    assert simple["Body"]["Text"] == {"Data": "Hallo", "Charset": "UTF-8"}
    assert simple["Headers"] == [{"Name": "List-Unsubscribe", "Value": "<https://example.com/u>"}]
    assert request["ReplyToAddresses"] == ["reply@example.com"]
    assert request["EmailTags"] == [
        {"Name": "request_id", "Value": "8d6c"},
        {"Name": "topic_id", "Value": "news_2E1"},
    ]
    assert request["ConfigurationSetName"] == "feedback-set"


def test_request_leaves_out_what_is_absent() -> None:
    """No text body, reply-to, headers, tags or configuration set unless given."""
    request = send_request(OutgoingEmail("s@example.com", "t@example.com", "S", "<p/>"), None)
    assert "Text" not in request["Content"]["Simple"]["Body"]
    assert "Headers" not in request["Content"]["Simple"]
    assert "ReplyToAddresses" not in request
    assert "EmailTags" not in request
    assert "ConfigurationSetName" not in request


def test_tag_names_encoded_only_when_needed() -> None:
    """Names SES accepts pass unchanged; others are encoded like values."""
    email = OutgoingEmail("s@example.com", "t@example.com", "S", "<p/>", tags=(("a.b", "v"),))
    assert send_request(email, None)["EmailTags"] == [{"Name": "a_2Eb", "Value": "v"}]


def test_overlong_tag_value_is_left_out() -> None:
    """A value longer than 256 characters once encoded is dropped, never cut."""
    email = OutgoingEmail("s@example.com", "t@example.com", "S", "<p/>", tags=(("k", "." * 100),))
    assert "EmailTags" not in send_request(email, None)


def message(**fields: object) -> MessageSubmitted:
    values: dict[str, object] = {
        "message_id": "m1", "topic_id": "news", "subject": "S", "html": "<p>H</p>",
    }
    values.update(fields)
    return MessageSubmitted(**values)  # type: ignore[arg-type]


def test_build_email_runs_personalizers_in_order() -> None:
    """Each personalizer sees the previous one's result, with the request id and message."""
    seen: list[str] = []

    def pixel(email: OutgoingEmail, request_id: str, msg: MessageSubmitted) -> OutgoingEmail:
        seen.append(request_id)
        return OutgoingEmail(**{**email.__dict__, "html": email.html + "<img>"})

    def header(email: OutgoingEmail, request_id: str, msg: MessageSubmitted) -> OutgoingEmail:
        assert email.html.endswith("<img>")
        return OutgoingEmail(**{**email.__dict__, "headers": (("X-Request", request_id),)})

    email = build_email("s@example.com", "t@example.com", "r1", message(), [pixel, header])
    assert seen == ["r1"]
    assert email.html == "<p>H</p><img>"
    assert email.headers == (("X-Request", "r1"),)


def test_build_email_tags() -> None:
    """Request id and topic tags come first; a client tag of the same name is dropped."""
    email = build_email(
        "s@example.com", "t@example.com", "r1",
        message(tags={"campaign": "spring", "topic_id": "other"}),
    )
    assert email.tags == (("request_id", "r1"), ("topic_id", "news"), ("campaign", "spring"))
