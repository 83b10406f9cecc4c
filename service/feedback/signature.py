"""SNS message signatures: the string to sign and its RSA PKCS#1 v1.5 verification.

SignatureVersion 1 signs with SHA-1 and 2 with SHA-256. The string to sign is, for each key
present in a fixed order, the key, a newline, the value and a newline (after the last value
too), over the JSON-decoded values encoded as UTF-8.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from service.feedback.rejection import Rejected

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)

HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def string_to_sign(fields: Mapping[str, str]) -> bytes:
    """Build the bytes SNS signs for a message whose string fields are `fields`."""
    keys = NOTIFICATION_KEYS if fields.get("Type") == "Notification" else CONFIRMATION_KEYS
    parts: list[str] = []
    for key in keys:
        value = fields.get(key)
        # Subject is the only optional key; a missing one is left out entirely.
        if value is not None:
            parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


def hash_for(signature_version: str) -> hashes.HashAlgorithm:
    """Return the hash of `signature_version`; raise Rejected(400) for any other version."""
    algorithm = HASHES.get(signature_version)
    if algorithm is None:
        raise Rejected(
            400,
            f"SignatureVersion {signature_version!r} is not supported; SNS signs with 1 or 2.",
        )
    return algorithm()


def verify_signature(fields: Mapping[str, str], key: RSAPublicKey) -> None:
    """Raise Rejected unless `fields["Signature"]` is the key's signature of the message."""
    algorithm = hash_for(fields.get("SignatureVersion", ""))
    try:
        signature = base64.b64decode(fields.get("Signature", ""), validate=True)
    except binascii.Error:
        raise Rejected(400, "The SNS message's Signature is not base64.") from None
    try:
        key.verify(signature, string_to_sign(fields), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise Rejected(403, "The SNS message's signature does not match its content.") from None
