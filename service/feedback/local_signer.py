"""A local stand-in for SNS's signing: a test certificate authority, a signing certificate,
and SNS messages signed exactly as SNS signs them.

Local mode uses it to post simulated SES feedback to the real callback endpoint, and tests
use it to exercise verification. Nothing here touches the network.

API:

- `LocalSnsSigner.create(region="us-east-1")` generates a CA and a signing certificate
  issued by it (RSA 2048). The certificate's URL, `signer.signing_cert_url`, is
  `https://sns.<region>.amazonaws.com/SimpleNotificationService-local-<id>.pem`, so it passes
  the host rule; it is never fetched, because `install` puts the PEM where it is looked up.
- `signer.install(certs_dir)` writes the certificate PEM to
  `certs_dir / certificate_file_name(signing_cert_url)` and returns that path. Point
  SNS_CERTS_DIR at `certs_dir`.
- `signer.notification(topic_arn, message, subject=None, message_id=None, timestamp=None,
  signature_version="2")` returns the signed Notification as a dict; `message` is a str (the
  SES payload as JSON text) or a dict, which is encoded to JSON.
- `signer.subscription_confirmation(topic_arn, subscribe_url, ...)` and
  `signer.unsubscribe_confirmation(topic_arn, subscribe_url, ...)` return the signed
  confirmation messages.
- `signer.sign(fields, signature_version="2")` signs any field dict in place of the above and
  returns a copy with SignatureVersion, SigningCertURL and Signature set.
- `encode(message)` serializes a message dict to the bytes SNS would post.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from service.feedback.certificates import certificate_file_name
from service.feedback.signature import hash_for, string_to_sign

_VALIDITY = timedelta(days=365)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    issuer: str,
    public_key: rsa.RSAPublicKey,
    signing_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class LocalSnsSigner:
    """A signing key and its certificate (issued by a local CA) under an SNS-shaped URL."""

    signing_cert_url: str
    ca_certificate: x509.Certificate
    certificate: x509.Certificate
    _key: rsa.RSAPrivateKey

    @classmethod
    def create(cls, region: str = "us-east-1") -> LocalSnsSigner:
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_cert = _certificate(
            "ses-sender local SNS CA",
            "ses-sender local SNS CA",
            ca_key.public_key(),
            ca_key,
            ca=True,
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        host = f"sns.{region}.amazonaws.com"
        cert = _certificate(host, "ses-sender local SNS CA", key.public_key(), ca_key, ca=False)
        url = f"https://{host}/SimpleNotificationService-local-{uuid.uuid4().hex}.pem"
        return cls(url, ca_cert, cert, key)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def install(self, certs_dir: Path) -> Path:
        """Write the certificate where the callback looks it up; return the file's path."""
        certs_dir.mkdir(parents=True, exist_ok=True)
        path = certs_dir / certificate_file_name(self.signing_cert_url)
        path.write_bytes(self.certificate_pem)
        return path

    def sign(self, fields: dict[str, str], signature_version: str = "2") -> dict[str, str]:
        signed = dict(fields)
        signed["SignatureVersion"] = signature_version
        signed["SigningCertURL"] = self.signing_cert_url
        # An unsupported version is signed with SHA-256, so tests can post it and see it rejected.
        algorithm = hash_for(signature_version if signature_version in ("1", "2") else "2")
        signature = self._key.sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(
        self,
        topic_arn: str,
        message: str | dict[str, Any],
        *,
        subject: str | None = None,
        message_id: str | None = None,
        timestamp: str | None = None,
        signature_version: str = "2",
    ) -> dict[str, str]:
        fields = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message
            if isinstance(message, str)
            else msgspec.json.encode(message).decode(),
            "Timestamp": timestamp or _now(),
            "UnsubscribeURL": f"https://{self._host}/?Action=Unsubscribe&SubscriptionArn={topic_arn}:local",
        }
        if subject is not None:
            fields["Subject"] = subject
        return self.sign(fields, signature_version)

    def subscription_confirmation(
        self, topic_arn: str, subscribe_url: str, *, signature_version: str = "2"
    ) -> dict[str, str]:
        return self._confirmation(
            "SubscriptionConfirmation", topic_arn, subscribe_url, signature_version
        )

    def unsubscribe_confirmation(
        self, topic_arn: str, subscribe_url: str, *, signature_version: str = "2"
    ) -> dict[str, str]:
        return self._confirmation(
            "UnsubscribeConfirmation", topic_arn, subscribe_url, signature_version
        )

    def _confirmation(
        self, kind: str, topic_arn: str, subscribe_url: str, signature_version: str
    ) -> dict[str, str]:
        token = uuid.uuid4().hex * 2
        fields = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": subscribe_url,
            "Timestamp": _now(),
        }
        return self.sign(fields, signature_version)

    @property
    def _host(self) -> str:
        return self.signing_cert_url.split("/")[2]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode(message: dict[str, str]) -> bytes:
    """Serialize a signed message as SNS posts it."""
    return msgspec.json.encode(message)
