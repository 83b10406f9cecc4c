"""The startup check of processes that call SES: an AWS identity and a sender address."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError

from service.config import Settings
from service.errors import ConfigError


def require_sending_settings(settings: Settings) -> None:
    """Raise ConfigError naming the missing setting and its fix unless SES can be called.

    Local mode is never chosen on the caller's behalf: the message asks the operator to set
    the value, or to start with `--local` on purpose.
    """
    if settings.email_sender is None:
        raise ConfigError(
            "EMAIL_SENDER is missing: set it to a From address verified in SES, "
            "such as EMAIL_SENDER=mail@example.com, or run `ses-sender run --local` "
            "to send to a local SES emulator"
        )
    if not has_aws_credentials(settings.aws_region):
        raise ConfigError(
            "AWS credentials are missing: boto3 found none in the environment "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), the shared files "
            "(~/.aws/credentials, AWS_PROFILE) or an instance or container role; "
            "set them, or run `ses-sender run --local` to send to a local SES emulator"
        )


def has_aws_credentials(region: str) -> bool:
    """Return whether boto3's default credential chain resolves to any credentials.

    Raises ConfigError when the chain itself is misconfigured, such as an AWS_PROFILE that
    names no profile.
    """
    try:
        credentials = boto3.Session(region_name=region).get_credentials()
    except BotoCoreError as error:
        raise ConfigError(f"AWS credentials could not be loaded: {error}") from None
    return credentials is not None
