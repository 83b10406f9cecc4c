"""SesSender against botocore's own client: the same request on the wire, the same errors."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from service.config import Settings
from service.dispatch.direct_http import DirectHttp, DirectHttpError
from service.dispatch.outcomes import SendFailure, classify
from service.dispatch.sender import SesError, SesSender
from service.dispatch.ses import (
    OutgoingEmail,
    create_client,
    create_sender,
    failure_of,
    send_email,
    send_request,
)
from tests.support.ses_stub import Call, StubError, StubSes, accept_all
from tests.support.tls import server_context

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
def senders() -> Iterator[Callable[..., SesSender]]:
    """Make SesSenders that are closed after the test."""
    created: list[SesSender] = []

    def make(settings: Settings, **options: Any) -> SesSender:
        created.append(create_sender(settings, **options))
        return created[-1]

    yield make
    for sender in created:
        sender.close()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign every request at the same moment, so that signatures can be compared."""
    moment = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)


TRANSPORTS = pytest.mark.parametrize("direct", [None, False], ids=["own-connection", "botocore"])


@TRANSPORTS
@pytest.mark.parametrize("configuration_set", [None, "tracking"])
@pytest.mark.parametrize("email", EMAILS, ids=["plain", "every-field"])
def test_request_matches_botocore(
    senders: Callable[..., SesSender], send_settings: Settings, ses_stub: StubSes,
    fixed_clock: None,
    email: OutgoingEmail, configuration_set: str | None, direct: bool | None,
) -> None:
    client = create_client(send_settings)
    sender = senders(send_settings, direct=direct)
    assert sender.through_proxy is (direct is False)
    send_email(client, email, configuration_set)
    sender.send(sender.sign(send_request(email, configuration_set)))
    by_boto3, by_sender = ses_stub.calls
    assert by_sender.path == by_boto3.path == "/v2/email/outbound-emails"
    # The same parameters; members may come in another order and non-ASCII text unescaped.
    assert by_sender.body == by_boto3.body
    for header in ("Content-Type", "X-Amz-Date", "Host"):
        assert by_sender.headers[header] == by_boto3.headers[header]
    assert by_sender.headers["Host"] == urlsplit(ses_stub.url).netloc
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


@TRANSPORTS
@pytest.mark.parametrize("error", ERRORS, ids=[e.code for e in ERRORS])
def test_errors_read_as_botocore_reads_them(
    senders: Callable[..., SesSender], send_settings: Settings, ses_stub: StubSes,
    error: StubError, direct: bool | None,
) -> None:
    ses_stub.respond = lambda _number, _body: error
    client = create_client(send_settings)
    sender = senders(send_settings, direct=direct)
    email = EMAILS[0]
    with pytest.raises(ClientError) as by_boto3:
        send_email(client, email, None)
    with pytest.raises(SesError) as by_sender:
        sender.send(sender.sign(send_request(email, None)))
    expected = SendFailure(error.code, error.message, error.status)
    assert failure_of(by_sender.value) == failure_of(by_boto3.value) == expected


@TRANSPORTS
def test_unreachable_endpoint_is_a_transient_failure(
    senders: Callable[..., SesSender], send_settings: Settings, direct: bool | None
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    settings = replace(send_settings, ses_endpoint_url=f"http://127.0.0.1:{port}")
    sender = senders(settings, direct=direct)
    with pytest.raises((EndpointConnectionError, DirectHttpError)) as raised:
        sender.send(sender.sign(send_request(EMAILS[0], None)))
    failure = failure_of(raised.value)
    assert failure.code == "EndpointConnectionError"
    assert failure.http_status is None
    assert classify(failure) == "transient"


def test_one_connection_per_thread(
    senders: Callable[..., SesSender], send_settings: Settings, ses_stub: StubSes
) -> None:
    """A thread keeps its connection between sends, error responses included."""
    sender = senders(send_settings)
    for _ in range(3):
        sender.send(sender.sign(send_request(EMAILS[0], None)))
    ses_stub.respond = lambda _number, _body: StubError(500, "InternalFailure", "boom")
    with pytest.raises(SesError):
        sender.send(sender.sign(send_request(EMAILS[0], None)))
    ses_stub.respond = accept_all
    sender.send(sender.sign(send_request(EMAILS[0], None)))
    assert len(ses_stub.calls) == 5
    assert len(ses_stub.connections) == 1


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://email.eu-west-1.amazonaws.com", "email.eu-west-1.amazonaws.com"),
        ("https://email.eu-west-1.amazonaws.com:443", "email.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        ("http://127.0.0.1:4566", "127.0.0.1:4566"),
        ("https://127.0.0.1:80", "127.0.0.1:80"),
    ],
)
def test_host_header_as_signed(url: str, host: str) -> None:
    http = DirectHttp(url, verify=True, connect_timeout=1, read_timeout=1)
    assert http.host_header == host


@TRANSPORTS
def test_https_trusts_only_the_configured_ca(
    senders: Callable[..., SesSender], send_settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, direct: bool | None,
) -> None:
    """Over HTTPS the endpoint's certificate is checked against AWS_CA_BUNDLE."""
    context, ca_path = server_context(tmp_path)
    stub = StubSes(tls=context).start()
    try:
        settings = replace(send_settings, ses_endpoint_url=stub.url)
        monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_path))
        trusted = senders(settings, direct=direct)
        trusted.send(trusted.sign(send_request(EMAILS[0], None)))
        assert stub.recipients() == ["a@example.com"]

        monkeypatch.delenv("AWS_CA_BUNDLE")
        untrusted = senders(settings, direct=direct)
        with pytest.raises(Exception) as raised:  # noqa: PT011 - each transport has its own
            untrusted.send(untrusted.sign(send_request(EMAILS[0], None)))
        failure = failure_of(raised.value)
        assert "CERTIFICATE_VERIFY_FAILED" in failure.message
        assert classify(failure) == "transient"
        assert len(stub.calls) == 1
    finally:
        stub.stop()
