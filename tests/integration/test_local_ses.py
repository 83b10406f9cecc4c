"""The SES emulator of local mode: moto's server on 127.0.0.1 with the sender verified."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from service.config import Settings
from service.errors import ConfigError
from service.feedback.certificates import certificate_file_name
from service.local.mode import (
    DEFAULT_SENDER,
    EMULATOR_URL_FILE,
    LOCAL_DAILY_QUOTA,
    local_mode,
)
from service.local.ses import EMULATOR_CREDENTIALS, ses_emulator
from service.secret import Secret

SENDER = "news@example.com"


def sesv2(endpoint: str) -> object:
    return boto3.client(
        "sesv2", region_name="eu-west-1", endpoint_url=endpoint, **EMULATOR_CREDENTIALS
    )


def send_one(client: object, sender: str) -> str:
    response = client.send_email(  # type: ignore[attr-defined]
        FromEmailAddress=sender,
        Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
        Content={"Simple": {"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "Hi"}}}},
    )
    message_id: str = response["MessageId"]
    return message_id


def test_emulator_listens_on_loopback() -> None:
    """The endpoint is on 127.0.0.1 and refuses connections when the block ends."""
    with ses_emulator("eu-west-1", SENDER) as endpoint:
        assert urlsplit(endpoint).hostname == "127.0.0.1"
        identities = sesv2(endpoint).list_email_identities()["EmailIdentities"]  # type: ignore[attr-defined]
    names = {identity["IdentityName"]: identity for identity in identities}
    assert names[SENDER]["VerificationStatus"] == "SUCCESS"
    with pytest.raises(EndpointConnectionError):
        sesv2(endpoint).list_email_identities()  # type: ignore[attr-defined]


def test_emulator_accepts_verified_sender() -> None:
    """SendEmail from the verified sender returns a message id."""
    with ses_emulator("eu-west-1", SENDER) as endpoint:
        assert send_one(sesv2(endpoint), SENDER)


def test_emulator_rejects_other_sender() -> None:
    """A sender that was not verified is rejected, as SES in the sandbox does."""
    with ses_emulator("eu-west-1", SENDER) as endpoint:
        client = sesv2(endpoint)
        with pytest.raises(client.exceptions.MessageRejected):  # type: ignore[attr-defined]
            send_one(client, "other@example.com")


def test_missing_moto_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without moto the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "moto.server", None)
    with pytest.raises(ConfigError) as raised, ses_emulator("eu-west-1", SENDER):
        pass
    assert "pip install 'ses-sender[local]'" in str(raised.value)


def test_local_mode_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode points SES at the emulator, with the default sender and fake credentials."""
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDREAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    settings = Settings(
        database_url=None,
        data_dir=tmp_path,
        sns_certs_dir=tmp_path / "certs",
        api_key=Secret("k" * 20),
    )
    with local_mode(settings) as mode:
        local = mode.settings
        assert local.email_sender == DEFAULT_SENDER
        assert local.email_daily_quota == LOCAL_DAILY_QUOTA
        assert local.ses_endpoint_url is not None
        assert (tmp_path / EMULATOR_URL_FILE).read_text() == f"{local.ses_endpoint_url}\n"
        assert urlsplit(local.ses_endpoint_url).hostname == "127.0.0.1"
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == EMULATOR_CREDENTIALS["aws_access_key_id"]
        # A client built from the environment alone, as a component would build it, can send.
        client = boto3.client(
            "sesv2", region_name=local.aws_region, endpoint_url=local.ses_endpoint_url
        )
        assert send_one(client, DEFAULT_SENDER)


def test_local_mode_keeps_sender(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured EMAIL_SENDER and EMAIL_DAILY_QUOTA are kept and verified in the emulator."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "placeholder")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "placeholder")
    settings = Settings(
        database_url=None,
        data_dir=tmp_path,
        sns_certs_dir=tmp_path / "certs",
        email_sender=SENDER,
        email_daily_quota=200,
    )
    with local_mode(settings) as mode:
        local = mode.settings
        assert local.email_sender == SENDER
        assert local.email_daily_quota == 200
        assert local.ses_endpoint_url is not None
        assert send_one(sesv2(local.ses_endpoint_url), SENDER)


def test_local_mode_sns_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode allows its own topic and places the signing certificate in SNS_CERTS_DIR."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "placeholder")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "placeholder")
    configured = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
    settings = Settings(
        database_url=None,
        data_dir=tmp_path,
        sns_certs_dir=tmp_path / "certs",
        sns_topic_arns=(configured,),
    )
    with local_mode(settings) as mode:
        assert mode.settings.sns_topic_arns == (configured, mode.topic_arn)
        assert mode.topic_arn.startswith("arn:aws:sns:us-east-1:")
        certificate = tmp_path / "certs" / certificate_file_name(mode.signer.signing_cert_url)
        assert certificate.read_bytes() == mode.signer.certificate_pem
