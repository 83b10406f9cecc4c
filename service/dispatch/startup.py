"""Checks that sending can start for real: a sender address and AWS credentials."""

from __future__ import annotations

import boto3

from service.config import Settings
from service.errors import ConfigError


def require_sending_settings(settings: Settings) -> None:
    """Raise ConfigError naming what is missing and how to supply it."""
    if settings.email_sender is None:
        raise ConfigError(
            "EMAIL_SENDER is missing: set it to a From address verified in SES, "
            "or use `ses-sender run --local` to try the service without AWS"
        )
    if boto3.session.Session().get_credentials() is None:
        raise ConfigError(
            "AWS credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or run with an IAM role; or use `ses-sender run --local`"
        )
