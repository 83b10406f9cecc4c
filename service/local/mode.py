"""Turning a process into local mode: AWS stand-ins started, and settings pointed at them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from service.config import Settings
from service.local.ses import EMULATOR_CREDENTIALS, ses_emulator
from service.logging import get_logger

log = get_logger(__name__)

DEFAULT_SENDER = "sender@localhost.localdomain"

# Variables that would make boto3 pick a real identity over the emulator's fake one.
_AWS_IDENTITY_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@contextmanager
def local_mode(settings: Settings) -> Iterator[Settings]:
    """Start the SES emulator and yield settings that send to it with fake credentials.

    The process environment gets the fake credentials too, so every boto3 client made later
    in this process, by whichever component, talks to the emulator as the same identity.
    """
    if settings.ses_endpoint_url is not None:
        log.warning(
            "local_mode_ignores_ses_endpoint_url",
            hint="--local always sends to its own SES emulator on 127.0.0.1",
        )
    sender = settings.email_sender or DEFAULT_SENDER
    # Before the first boto3 client: an AWS_PROFILE naming a missing profile would fail it.
    use_emulator_credentials(os.environ)
    with ses_emulator(settings.aws_region, sender) as endpoint:
        yield dataclasses.replace(settings, ses_endpoint_url=endpoint, email_sender=sender)


def use_emulator_credentials(environ: MutableMapping[str, str]) -> None:
    """Replace any AWS identity in `environ` with the emulator's fake credentials."""
    for name in _AWS_IDENTITY_VARIABLES:
        environ.pop(name, None)
    environ["AWS_ACCESS_KEY_ID"] = EMULATOR_CREDENTIALS["aws_access_key_id"]
    environ["AWS_SECRET_ACCESS_KEY"] = EMULATOR_CREDENTIALS["aws_secret_access_key"]
