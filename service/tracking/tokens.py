"""Signed tokens for tracking URLs.

A token is URL-safe base64 (no padding) of `request id (16 bytes) | MAC (16 bytes) | target`,
where the target is the link's URL in UTF-8 for click tokens and empty otherwise. The MAC is
HMAC-SHA256 under the tracking secret over the purpose, the request id and the target,
truncated to 128 bits. Because the purpose is signed, an open token is not a valid click or
unsubscribe token. Because the target is signed, a click token redirects only to the URL it
was made for. An open or unsubscribe token is 43 characters long.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["open", "click", "unsubscribe"]

_REQUEST_ID_BYTES = 16
_MAC_BYTES = 16
# Maximum length of a token that `verify` accepts, so that a crafted token cannot make the
# server decode and hash megabytes. Click targets are limited to fit in it.
MAX_TOKEN_LENGTH = 8192
MAX_TARGET_BYTES = MAX_TOKEN_LENGTH * 3 // 4 - 32


class InvalidToken(ValueError):
    """The token is malformed, or was not made with this secret for this purpose."""


@dataclass(frozen=True)
class Verified:
    """The contents of a valid token."""

    request_id: str
    target: str | None
    """The link a click token redirects to; None for open and unsubscribe tokens."""


def _mac(key: bytes, purpose: Purpose, request_id: bytes, target: bytes) -> bytes:
    message = b"ses-sender:" + purpose.encode() + b"\x00" + request_id + target
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _request_id_bytes(request_id: str) -> bytes:
    try:
        return uuid.UUID(request_id).bytes
    except ValueError:
        raise ValueError(f"request id {request_id!r} is not a UUID") from None


def sign(key: bytes, purpose: Purpose, request_id: str, target: str | None = None) -> str:
    """Return the token for `request_id` and `purpose`; `target` is required for clicks."""
    if (purpose == "click") != (target is not None):
        raise ValueError("a click token needs a target URL, and only a click token takes one")
    rid = _request_id_bytes(request_id)
    target_bytes = (target or "").encode()
    if len(target_bytes) > MAX_TARGET_BYTES:
        raise ValueError(f"target URL is longer than {MAX_TARGET_BYTES} bytes")
    raw = rid + _mac(key, purpose, rid, target_bytes) + target_bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify(key: bytes, purpose: Purpose, token: str | None) -> Verified:
    """Return what `token` carries, or raise InvalidToken; the MAC is compared in constant time."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("missing or oversized token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("token is not URL-safe base64") from None
    # The decoder ignores stray characters and unused trailing bits. Only the canonical
    # spelling of the bytes is accepted, so any change to the token is rejected.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("token is not in canonical form")
    if len(raw) < _REQUEST_ID_BYTES + _MAC_BYTES:
        raise InvalidToken("token is too short")
    rid = raw[:_REQUEST_ID_BYTES]
    mac = raw[_REQUEST_ID_BYTES : _REQUEST_ID_BYTES + _MAC_BYTES]
    target_bytes = raw[_REQUEST_ID_BYTES + _MAC_BYTES :]
    if (purpose == "click") != bool(target_bytes):
        raise InvalidToken(f"token is not a {purpose} token")
    if not hmac.compare_digest(mac, _mac(key, purpose, rid, target_bytes)):
        raise InvalidToken("token signature does not match")
    try:
        target = target_bytes.decode() if target_bytes else None
    except UnicodeDecodeError:
        raise InvalidToken("token target is not UTF-8") from None
    return Verified(str(uuid.UUID(bytes=rid)), target)
