"""The unsubscribe headers as SES receives them: checked at the boto3 call, since moto drops
custom headers."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from service.tracking.personalize import personalize, ses_headers

KEY = b"secret-key-for-tests-0123456789"


class _Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Any:
        yield self._content


def test_headers_reach_sendemail_request() -> None:
    """SendEmail serialises List-Unsubscribe and List-Unsubscribe-Post into Simple.Headers."""
    request_id = str(uuid.uuid4())
    copy = personalize(
        "<body>Hi</body>", request_id, track_clicks=False, unsubscribe=True, key=KEY,
        server_host="https://mail.example.com",
    )
    client = boto3.client(
        "sesv2",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sent: list[dict[str, Any]] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        # Return a response in place of the network, so the request never leaves the process.
        sent.append(json.loads(request.body))
        return AWSResponse(request.url, 200, {}, _Body(b'{"MessageId": "m-1"}'))

    client.meta.events.register("before-send.sesv2.SendEmail", capture)
    response = client.send_email(
        FromEmailAddress="sender@example.com",
        Destination={"ToAddresses": ["reader@example.com"]},
        Content={
            "Simple": {
                "Subject": {"Data": "Hello", "Charset": "UTF-8"},
                "Body": {"Html": {"Data": copy.html or "", "Charset": "UTF-8"}},
                "Headers": ses_headers(copy.headers),
            }
        },
    )
    assert response["MessageId"] == "m-1"
    (body,) = sent
    headers = {h["Name"]: h["Value"] for h in body["Content"]["Simple"]["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mail.example.com/v1/unsubscribe?token=")
    assert list(headers) == ["List-Unsubscribe", "List-Unsubscribe-Post"]
