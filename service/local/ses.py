"""The SES emulator of local mode: moto's server on 127.0.0.1, with the sender verified in it.

moto keeps every accepted email in memory and delivers none, so nothing sent to it leaves the
machine. It comes with the `local` extra, so a plain install does not pull it in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from service.errors import ConfigError
from service.logging import get_logger

log = get_logger(__name__)

HOST = "127.0.0.1"
# Any non-empty values do: moto accepts every key, and these never reach AWS.
EMULATOR_CREDENTIALS = {
    "aws_access_key_id": "local-emulator",
    "aws_secret_access_key": "local-emulator-secret",
}


def _moto_server_class() -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ConfigError(
            "--local needs the SES emulator from moto, which is not installed; "
            "install it with `pip install 'ses-sender[local]'`"
        ) from None
    return ThreadedMotoServer


@contextmanager
def ses_emulator(region: str, sender: str) -> Iterator[str]:
    """Serve an SES emulator on a free port of 127.0.0.1 and yield its endpoint URL.

    The sender identity is verified before the URL is yielded, so SendEmail from it succeeds.
    Raises ConfigError when moto is not installed.
    """
    server = _moto_server_class()(ip_address=HOST, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        verify_sender(endpoint, region, sender)
        log.info("ses_emulator_started", endpoint=endpoint, sender=sender)
        yield endpoint
    finally:
        server.stop()
        log.info("ses_emulator_stopped")


def verify_sender(endpoint: str, region: str, sender: str) -> None:
    """Create the sender's email identity in the emulator, which marks it verified at once."""
    client = boto3.client(
        "sesv2", region_name=region, endpoint_url=endpoint, **EMULATOR_CREDENTIALS
    )
    client.create_email_identity(EmailIdentity=sender)
