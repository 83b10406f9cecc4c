"""Signed tracking tokens: round trips, tampering, other requests and other purposes."""

from __future__ import annotations

import base64
import uuid

import pytest

from service.tracking import tokens

KEY = b"k" * 32
REQUEST_ID = str(uuid.uuid4())


@pytest.mark.parametrize("purpose", ["open", "unsubscribe"])
def test_token_round_trip(purpose: tokens.Purpose) -> None:
    """A token verifies for its own purpose and returns its request id."""
    token = tokens.sign(KEY, purpose, REQUEST_ID)
    verified = tokens.verify(KEY, purpose, token)
    assert verified.request_id == REQUEST_ID
    assert verified.target is None


def test_open_token_is_compact_and_url_safe() -> None:
    """An open token is 43 URL-safe characters."""
    token = tokens.sign(KEY, "open", REQUEST_ID)
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_click_token_carries_target() -> None:
    """A click token returns the exact URL it was signed with."""
    target = "https://example.com/a?b=1&c=ü#frag"
    verified = tokens.verify(KEY, "click", tokens.sign(KEY, "click", REQUEST_ID, target))
    assert verified.target == target
    assert verified.request_id == REQUEST_ID


def test_every_changed_character_is_rejected() -> None:
    """Changing any single character of a token makes it invalid."""
    token = tokens.sign(KEY, "open", REQUEST_ID)
    alphabet = "AQgw-_09"
    for index in range(len(token)):
        for replacement in alphabet:
            if replacement == token[index]:
                continue
            changed = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(tokens.InvalidToken):
                tokens.verify(KEY, "open", changed)


def test_swapped_target_is_rejected() -> None:
    """A click token whose target bytes are replaced does not verify."""
    raw = base64.urlsafe_b64decode(
        tokens.sign(KEY, "click", REQUEST_ID, "https://example.com/") + "=="
    )
    forged = raw[:32] + b"https://evil.example/"
    token = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, "click", token)


def test_swapped_request_id_is_rejected() -> None:
    """A token with another request id put in front of its MAC does not verify."""
    raw = base64.urlsafe_b64decode(tokens.sign(KEY, "open", REQUEST_ID) + "=")
    forged = uuid.uuid4().bytes + raw[16:]
    token = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, "open", token)


def test_tokens_differ_between_requests() -> None:
    """Two requests get unrelated MACs."""
    first = tokens.sign(KEY, "open", REQUEST_ID)
    second = tokens.sign(KEY, "open", str(uuid.uuid4()))
    assert first[22:] != second[22:]


@pytest.mark.parametrize(
    ("signed_for", "used_for"),
    [("open", "unsubscribe"), ("unsubscribe", "open"), ("open", "click"), ("click", "open")],
)
def test_token_for_other_purpose_is_rejected(
    signed_for: tokens.Purpose, used_for: tokens.Purpose
) -> None:
    """A token signed for one purpose is invalid for every other."""
    target = "https://example.com/" if signed_for == "click" else None
    token = tokens.sign(KEY, signed_for, REQUEST_ID, target)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, used_for, token)


def test_token_under_other_key_is_rejected() -> None:
    """A token made with another secret does not verify."""
    token = tokens.sign(b"x" * 32, "open", REQUEST_ID)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, "open", token)


@pytest.mark.parametrize("token", [None, "", "!!!!", "abc", "A" * 43, "A" * 10_000])
def test_malformed_token_is_rejected(token: str | None) -> None:
    """Missing, short, non-base64 and oversized tokens are invalid."""
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, "open", token)


def test_sign_rejects_non_uuid_request_id() -> None:
    """Signing names the bad request id."""
    with pytest.raises(ValueError, match="not-a-uuid"):
        tokens.sign(KEY, "open", "not-a-uuid")
