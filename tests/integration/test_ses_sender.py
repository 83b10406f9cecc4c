"""SesSender against botocore's own client: the same request on the wire, the same errors."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from service.config import Settings
from service.dispatch.outcomes import SendFailure, classify
from service.dispatch.sender import SesError
from service.dispatch.ses import (
    OutgoingEmail,
    create_client,
    create_sender,
    failure_of,
    send_email,
    send_request,
)
from tests.support.ses_stub import Call, StubError, StubSes

EMAILS = [
    OutgoingEmail("sender@example.com", "a@example.com", "Hello", "<p>Hi</p>"),
    OutgoingEmail(
        "Shop <sender@example.com>", "b@xn--bcher-kva.example", "Grüße ✉", "<p>Grüße</p>",
        text="Grüße", reply_to=("help@example.com", "desk@example.com"),
        headers=(("List-Unsubscribe", "<https://example.com/u/1>"),),
        tags=(("request_id", "9f1c"), ("topic_id", "news.2024/spring"), ("campagne é", "été")),
    ),
]


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign every request at the same moment, so that signatures can be compared."""
    moment = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)


@pytest.mark.parametrize("configuration_set", [None, "tracking"])
@pytest.mark.parametrize("email", EMAILS, ids=["plain", "every-field"])
def test_request_matches_botocore(
    send_settings: Settings, ses_stub: StubSes, fixed_clock: None,
    email: OutgoingEmail, configuration_set: str | None,
) -> None:
    client = create_client(send_settings)
    sender = create_sender(send_settings)
    send_email(client, email, configuration_set)
    sender.send(sender.sign(send_request(email, configuration_set)))
    by_boto3, by_sender = ses_stub.calls
    assert by_sender.path == by_boto3.path == "/v2/email/outbound-emails"
    # The same parameters; members may come in another order and non-ASCII text unescaped.
    assert by_sender.body == by_boto3.body
    for header in ("Content-Type", "X-Amz-Date"):
        assert by_sender.headers[header] == by_boto3.headers[header]
    assert by_sender.headers["User-Agent"].startswith("ses-sender/")
    # Both signatures are what SigV4 gives for the bytes that arrived.
    for call in (by_boto3, by_sender):
        assert call.headers["Authorization"] == expected_signature(ses_stub, call)


def expected_signature(stub: StubSes, call: Call) -> str:
    request = AWSRequest(method="POST", url=stub.url + call.path, data=call.raw,
                         headers={"Content-Type": call.headers["Content-Type"]})
    credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(credentials, "ses", "us-east-1").add_auth(request)
    return str(request.headers["Authorization"])


ERRORS = [
    StubError(400, "MessageRejected", "Email address is not verified: a@example.com"),
    StubError(429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    StubError(400, "LimitExceededException", "Daily message quota exceeded."),
    StubError(400, "SendingPausedException", "Sending is paused for this account."),
    StubError(500, "InternalFailure", "x" * 5000),
]


@pytest.mark.parametrize("error", ERRORS, ids=[e.code for e in ERRORS])
def test_errors_read_as_botocore_reads_them(
    send_settings: Settings, ses_stub: StubSes, error: StubError
) -> None:
    ses_stub.respond = lambda _number, _body: error
    client = create_client(send_settings)
    sender = create_sender(send_settings)
    email = EMAILS[0]
    with pytest.raises(ClientError) as by_boto3:
        send_email(client, email, None)
    with pytest.raises(SesError) as by_sender:
        sender.send(sender.sign(send_request(email, None)))
    expected = SendFailure(error.code, error.message, error.status)
    assert failure_of(by_sender.value) == failure_of(by_boto3.value) == expected


def test_unreachable_endpoint_is_a_transient_failure(send_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    sender = create_sender(replace(send_settings, ses_endpoint_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(EndpointConnectionError) as raised:
        sender.send(sender.sign(send_request(EMAILS[0], None)))
    failure = failure_of(raised.value)
    assert failure.code == "EndpointConnectionError"
    assert failure.http_status is None
    assert classify(failure) == "transient"
