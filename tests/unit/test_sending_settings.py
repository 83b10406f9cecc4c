"""The startup check of a process that calls SES: sender address and AWS credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from service.aws import has_aws_credentials, require_sending_settings
from service.config import Settings
from service.errors import ConfigError
from service.secret import Secret

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture
def no_aws_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where boto3's chain finds nothing, without asking any metadata service."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    # The instance metadata service is the last link of the chain; it must not be asked.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def sending_settings(tmp_path: Path, sender: str | None = "sender@example.com") -> Settings:
    return Settings(
        database_url=Secret("postgresql://user@127.0.0.1:5432/db"),
        data_dir=tmp_path,
        email_sender=sender,
    )


def test_missing_sender_named(no_aws_identity: Path) -> None:
    """Without EMAIL_SENDER the error names the variable and both fixes."""
    settings = sending_settings(no_aws_identity, sender=None)
    with pytest.raises(ConfigError) as raised:
        require_sending_settings(settings)
    message = str(raised.value)
    assert message.startswith("EMAIL_SENDER is missing")
    assert "--local" in message


def test_missing_credentials_named(no_aws_identity: Path) -> None:
    """Without any AWS identity the error names the variables to set and --local."""
    with pytest.raises(ConfigError) as raised:
        require_sending_settings(sending_settings(no_aws_identity))
    message = str(raised.value)
    assert message.startswith("AWS credentials are missing")
    assert "AWS_ACCESS_KEY_ID" in message
    assert "--local" in message


def test_sender_checked_first(no_aws_identity: Path) -> None:
    """With both missing, the sender is reported: one line, one fix at a time."""
    with pytest.raises(ConfigError, match="EMAIL_SENDER"):
        require_sending_settings(sending_settings(no_aws_identity, sender=None))


def test_environment_credentials_pass(
    no_aws_identity: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys in the environment satisfy the check."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    require_sending_settings(sending_settings(no_aws_identity))


def test_shared_file_credentials_pass(no_aws_identity: Path) -> None:
    """A profile in the shared credentials file satisfies the check."""
    (no_aws_identity / "aws-credentials").write_text(
        "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = example-secret\n"
    )
    assert has_aws_credentials("eu-west-1")


def test_unknown_profile_rejected(no_aws_identity: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An AWS_PROFILE that names no profile is a clear error, not a crash."""
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigError, match="no-such-profile"):
        require_sending_settings(sending_settings(no_aws_identity))


def test_local_settings_unchanged(no_aws_identity: Path) -> None:
    """The check only reads: it never fills in a sender or an endpoint."""
    settings = sending_settings(no_aws_identity, sender=None)
    before = dataclasses.asdict(settings)
    with pytest.raises(ConfigError):
        require_sending_settings(settings)
    assert dataclasses.asdict(settings) == before
