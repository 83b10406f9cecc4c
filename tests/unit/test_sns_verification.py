"""SNS envelope parsing, the certificate URL rule and signature verification."""

from __future__ import annotations

import json

import pytest

from service.feedback.certificates import CertificateStore
from service.feedback.envelope import parse_envelope
from service.feedback.local_signer import LocalSnsSigner, encode
from service.feedback.rejection import Rejected
from service.feedback.signature import string_to_sign, verify_signature
from service.feedback.urls import check_signing_cert_url, is_sns_url

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


@pytest.fixture(scope="module")
def signer() -> LocalSnsSigner:
    return LocalSnsSigner.create()


def verify(signer: LocalSnsSigner, message: dict[str, str]) -> None:
    envelope = parse_envelope(encode(message))
    public_key = signer.certificate.public_key()
    verify_signature(envelope.fields, public_key)  # type: ignore[arg-type]


def test_string_to_sign_notification_without_subject() -> None:
    """Each present key is followed by its value, and the last value ends with a newline."""
    fields = {
        "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "hello",
        "Timestamp": "2026-01-01T00:00:00.000Z", "UnsubscribeURL": "u",
    }  # fmt: skip
    expected = (
        "Message\nhello\nMessageId\nm\nTimestamp\n2026-01-01T00:00:00.000Z\n"
        "TopicArn\nt\nType\nNotification\n"
    )
    assert string_to_sign(fields) == expected.encode()


def test_string_to_sign_confirmation_keys() -> None:
    """Confirmations sign SubscribeURL and Token, in alphabetical key order."""
    fields = {
        "Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": "t", "Message": "x",
        "Timestamp": "ts", "SubscribeURL": "s", "Token": "k", "Subject": "ignored",
    }  # fmt: skip
    expected = (
        "Message\nx\nMessageId\nm\nSubscribeURL\ns\nTimestamp\nts\nToken\nk\n"
        "TopicArn\nt\nType\nSubscriptionConfirmation\n"
    )
    assert string_to_sign(fields) == expected.encode()
    assert b"Subject" not in string_to_sign(fields)


@pytest.mark.parametrize("version", ["1", "2"])
def test_signature_versions_verify(signer: LocalSnsSigner, version: str) -> None:
    """SignatureVersion 1 (SHA-1) and 2 (SHA-256) both verify."""
    verify(signer, signer.notification(TOPIC, "{}", signature_version=version))


def test_signature_version_3_rejected(signer: LocalSnsSigner) -> None:
    """Any other SignatureVersion is rejected with 400."""
    with pytest.raises(Rejected) as caught:
        verify(signer, signer.notification(TOPIC, "{}", signature_version="3"))
    assert caught.value.status == 400
    assert "SignatureVersion '3'" in caught.value.reason


def test_version_swapped_after_signing_fails(signer: LocalSnsSigner) -> None:
    """A SHA-256 signature relabelled as version 1 does not verify."""
    message = signer.notification(TOPIC, "{}", signature_version="2")
    message["SignatureVersion"] = "1"
    with pytest.raises(Rejected) as caught:
        verify(signer, message)
    assert caught.value.status == 403


def test_tampered_message_rejected(signer: LocalSnsSigner) -> None:
    """Changing the Message after signing breaks the signature."""
    message = signer.notification(TOPIC, '{"notificationType":"Delivery"}')
    message["Message"] = '{"notificationType":"Bounce"}'
    with pytest.raises(Rejected) as caught:
        verify(signer, message)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "subject", [None, "Amazon SES Email Event Notification", "Zustellung: Grüße ✉"]
)
def test_subject_absent_present_non_ascii(signer: LocalSnsSigner, subject: str | None) -> None:
    """A Subject is signed when present, as UTF-8, and left out when absent."""
    verify(signer, signer.notification(TOPIC, "{}", subject=subject))


def test_subject_added_after_signing_fails(signer: LocalSnsSigner) -> None:
    """A Subject that was not signed cannot be slipped in."""
    message = signer.notification(TOPIC, "{}")
    message["Subject"] = "added"
    with pytest.raises(Rejected):
        verify(signer, message)


def test_non_ascii_escaped_in_json_verifies(signer: LocalSnsSigner) -> None:
    """Values are compared after JSON decoding, so \\u escapes verify like raw UTF-8."""
    message = signer.notification(TOPIC, '{"text":"Grüße"}', subject="Grüße")
    body = json.dumps(message, ensure_ascii=True).encode()
    envelope = parse_envelope(body)
    verify_signature(envelope.fields, signer.certificate.public_key())  # type: ignore[arg-type]


def test_bad_base64_signature_rejected(signer: LocalSnsSigner) -> None:
    message = signer.notification(TOPIC, "{}")
    message["Signature"] = "not base64!"
    with pytest.raises(Rejected) as caught:
        verify(signer, message)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://sns.us-east-1.amazonaws.com.example.com/cert.pem",
        "https://my-bucket.s3.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://sns.us-east-1.amazonaws.com/cert",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://evilsns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.amazonaws.com/cert.pem",
    ],
)
def test_forbidden_certificate_urls(url: str) -> None:
    """Only https on sns.<region>.amazonaws.com(.cn) with a .pem path is accepted."""
    with pytest.raises(Rejected) as caught:
        check_signing_cert_url(url)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    ],
)
def test_allowed_certificate_urls(url: str) -> None:
    check_signing_cert_url(url)
    assert is_sns_url(url)


def test_raw_delivery_body_rejected() -> None:
    """An SES payload without the SNS envelope is a 400 that says to disable raw delivery."""
    with pytest.raises(Rejected) as caught:
        parse_envelope(b'{"notificationType":"Delivery","mail":{}}')
    assert caught.value.status == 400
    assert "disable raw message delivery" in caught.value.reason


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"Type":"Other"}', "not an SNS message type"),
        (b'{"Type":"Notification","MessageId":"m"}', "no string TopicArn"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_envelopes(body: bytes, words: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_envelope(body)
    assert caught.value.status == 400
    assert words in caught.value.reason


async def test_certificate_from_directory_without_fetch(
    signer: LocalSnsSigner, tmp_path: object
) -> None:
    """A PEM under the documented file name is used and nothing is fetched."""
    from pathlib import Path

    directory = Path(str(tmp_path))
    signer.install(directory)

    async def no_fetch(url: str) -> object:
        raise AssertionError(f"fetched {url}")

    store = CertificateStore(directory, no_fetch)  # type: ignore[arg-type]
    key = await store.public_key(signer.signing_cert_url)
    assert key.public_numbers() == signer.certificate.public_key().public_numbers()  # type: ignore[union-attr]
