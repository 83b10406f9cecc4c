"""The SES call: one SESv2 SendEmail per recipient, from an OutgoingEmail.

The dispatcher sends through a SesSender (service.dispatch.sender); the boto3 client serves
GetAccount and local mode. botocore's own retries are switched off (one attempt per call) so
that the dispatcher alone decides when to try again, and timeouts are short so that a stuck
connection cannot hold an email's lease for long.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from service.config import Settings
from service.dispatch.direct_http import DirectHttpError
from service.dispatch.outcomes import SendFailure
from service.dispatch.sender import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    SesError,
    SesSender,
)

if TYPE_CHECKING:
    from mypy_boto3_sesv2.client import SESV2Client as SESV2Client
else:
    SESV2Client = Any


REQUEST_ID_TAG = "request_id"
TOPIC_ID_TAG = "topic_id"
TAG_VALUE_MAX_LENGTH = 256
_TAG_SAFE = re.compile(r"[A-Za-z0-9-]")
_TAG_PLAIN = re.compile(r"[A-Za-z0-9-]*")
_TAG_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class OutgoingEmail:
    """One email as it is handed to SES: one recipient, UTF-8 subject and bodies."""

    sender: str
    recipient: str
    subject: str
    html: str
    text: str | None = None
    reply_to: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    """Extra MIME headers (List-Unsubscribe, for example) as (name, value) pairs."""
    tags: tuple[tuple[str, str], ...] = field(default=())
    """SES message tags as (name, value); encoded with `encode_tag` when sent."""


def create_client(settings: Settings, *, max_connections: int = 32) -> SESV2Client:
    """Build the one SESv2 client a process shares between its sending threads."""
    config = Config(
        # total_max_attempts counts the first request: 1 means botocore never retries.
        # ("max_attempts" would count retries only, so 1 there means two requests.)
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=max_connections,
    )
    client: SESV2Client = boto3.session.Session().client(
        "sesv2",
        region_name=settings.aws_region,
        endpoint_url=settings.ses_endpoint_url,
        config=config,
    )
    return client


def create_sender(
    settings: Settings, *, max_connections: int = 32, direct: bool | None = None
) -> SesSender:
    """Build the SesSender a dispatcher shares between its sending threads.

    The endpoint and signing name come from a boto3 client, so SES_ENDPOINT_URL, the region
    and botocore's endpoint settings (FIPS, for example) apply as they would to boto3.
    """
    core = botocore.session.get_session()
    client: SESV2Client = boto3.session.Session(botocore_session=core).client(
        "sesv2", region_name=settings.aws_region, endpoint_url=settings.ses_endpoint_url
    )
    return SesSender(
        core,
        client.meta.region_name,
        client.meta.endpoint_url,
        client.meta.service_model.signing_name,
        max_connections=max_connections,
        direct=direct,
    )


def encode_tag(value: str) -> str:
    """Encode `value` into the characters SES allows in tag names and values.

    ASCII letters, digits and '-' stay as they are; '_' becomes '__'; every other character
    becomes '_' followed by the two upper-case hex digits of each of its UTF-8 bytes. So
    'news.2024' is sent as 'news_2E2024', and `decode_tag` restores the original.
    """
    if _TAG_PLAIN.fullmatch(value):
        return value
    parts: list[str] = []
    for char in value:
        if _TAG_SAFE.fullmatch(char):
            parts.append(char)
        elif char == "_":
            parts.append("__")
        else:
            parts.extend(f"_{byte:02X}" for byte in char.encode())
    return "".join(parts)


def decode_tag(encoded: str) -> str:
    """Reverse `encode_tag`; raise ValueError for text it cannot have produced."""
    raw = bytearray()
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char != "_":
            raw.extend(char.encode("ascii"))
            index += 1
        elif encoded[index + 1 : index + 2] == "_":
            raw.extend(b"_")
            index += 2
        else:
            raw.append(int(encoded[index + 1 : index + 3], 16))
            index += 3
    return raw.decode()


def _tag_name(name: str) -> str:
    # Names are only written, never read back, so a name SES accepts stays as it is
    # ('request_id', which feedback looks for) and only other names are encoded.
    return name if _TAG_NAME.fullmatch(name) else encode_tag(name)


def _tags(email: OutgoingEmail) -> list[dict[str, str]]:
    tags = []
    for name, value in email.tags:
        encoded = encode_tag(value)
        # NOTE: a value longer than SES allows once encoded is left out rather than cut,
        # because a cut value would no longer decode to the original.
        if encoded and len(encoded) <= TAG_VALUE_MAX_LENGTH:
            tags.append({"Name": _tag_name(name), "Value": encoded})
    return tags


def send_request(email: OutgoingEmail, configuration_set: str | None) -> dict[str, Any]:
    """Build the SendEmail parameters for `email`."""
    body: dict[str, Any] = {"Html": {"Data": email.html, "Charset": "UTF-8"}}
    if email.text is not None:
        body["Text"] = {"Data": email.text, "Charset": "UTF-8"}
    simple: dict[str, Any] = {
        "Subject": {"Data": email.subject, "Charset": "UTF-8"},
        "Body": body,
    }
    if email.headers:
        simple["Headers"] = [{"Name": name, "Value": value} for name, value in email.headers]
    request: dict[str, Any] = {
        "FromEmailAddress": email.sender,
        "Destination": {"ToAddresses": [email.recipient]},
        "Content": {"Simple": simple},
    }
    if email.reply_to:
        request["ReplyToAddresses"] = list(email.reply_to)
    tags = _tags(email)
    if tags:
        request["EmailTags"] = tags
    if configuration_set is not None:
        request["ConfigurationSetName"] = configuration_set
    return request


def send_email(client: SESV2Client, email: OutgoingEmail, configuration_set: str | None) -> str:
    """Send `email` once through a boto3 client and return the SES message id."""
    response: Mapping[str, Any] = client.send_email(**send_request(email, configuration_set))
    return str(response["MessageId"])


def failure_of(error: Exception) -> SendFailure:
    """Reduce an exception raised by a SendEmail call to a SendFailure."""
    if isinstance(error, DirectHttpError):
        return SendFailure(code=error.code, message=error.message)
    if isinstance(error, SesError):
        return SendFailure(code=error.code, message=error.message, http_status=error.http_status)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return SendFailure(
            code=str(details.get("Code") or "Unknown"),
            message=str(details.get("Message") or error),
            http_status=int(status) if status is not None else None,
        )
    # Connection errors and timeouts (BotoCoreError subclasses) and anything unexpected.
    return SendFailure(code=type(error).__name__, message=str(error))
