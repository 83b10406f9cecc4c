"""Turning a process into local mode: AWS stand-ins started, and settings pointed at them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.config import Settings
from service.db.pool import Pool
from service.feedback.local_signer import LocalSnsSigner
from service.local.feedback_simulator import FeedbackSimulator, SimulatorConfig
from service.local.mailbox_simulator import LOCAL_ACCOUNT_ID
from service.local.ses import EMULATOR_CREDENTIALS, ses_emulator
from service.logging import get_logger

log = get_logger(__name__)

DEFAULT_SENDER = "sender@localhost.localdomain"
EMULATOR_URL_FILE = "ses-emulator-url"
# The emulator has no GetAccount to report a quota. This value is used when EMAIL_DAILY_QUOTA
# is not set, so that the dispatcher does not warn that it guessed one.
LOCAL_DAILY_QUOTA = 50_000

# Variables that would make boto3 pick a real identity over the emulator's fake one.
_AWS_IDENTITY_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass(frozen=True)
class LocalMode:
    """The settings of a local-mode process and the SNS stand-in its feedback simulator uses."""

    settings: Settings
    signer: LocalSnsSigner
    topic_arn: str


def local_topic_arn(region: str) -> str:
    return f"arn:aws:sns:{region}:{LOCAL_ACCOUNT_ID}:ses-sender-local-feedback"


@contextmanager
def local_mode(settings: Settings) -> Iterator[LocalMode]:
    """Start the SES emulator and prepare the SNS stand-in; yield the settings that use them.

    The settings send to the emulator with fake credentials, and accept the local topic with
    the certificate placed in SNS_CERTS_DIR. The process environment gets the fake credentials
    too, so every boto3 client made later in this process talks to the emulator.
    """
    if settings.ses_endpoint_url is not None:
        log.warning(
            "local_mode_ignores_ses_endpoint_url",
            hint="--local always sends to its own SES emulator on 127.0.0.1",
        )
    sender = settings.email_sender or DEFAULT_SENDER
    # Before the first boto3 client: an AWS_PROFILE naming a missing profile would fail it.
    use_emulator_credentials(os.environ)
    signer = LocalSnsSigner.create(settings.aws_region)
    signer.install(settings.sns_certs_dir)
    topic_arn = local_topic_arn(settings.aws_region)
    with ses_emulator(settings.aws_region, sender) as endpoint:
        write_emulator_url(settings.data_dir, endpoint)
        local_settings = dataclasses.replace(
            settings,
            ses_endpoint_url=endpoint,
            email_sender=sender,
            email_daily_quota=settings.email_daily_quota or LOCAL_DAILY_QUOTA,
            sns_topic_arns=(*settings.sns_topic_arns, topic_arn),
        )
        yield LocalMode(local_settings, signer, topic_arn)


def write_emulator_url(data_dir: Path, endpoint: str) -> None:
    """Write the emulator's URL to DATA_DIR, where users and scripts look up the emails it keeps.

    moto lists every email it accepted at `<url>/moto-api/data.json`, and its port is chosen
    anew at each start.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / EMULATOR_URL_FILE).write_text(endpoint + "\n")


def use_emulator_credentials(environ: MutableMapping[str, str]) -> None:
    """Replace any AWS identity in `environ` with the emulator's fake credentials."""
    for name in _AWS_IDENTITY_VARIABLES:
        environ.pop(name, None)
    environ["AWS_ACCESS_KEY_ID"] = EMULATOR_CREDENTIALS["aws_access_key_id"]
    environ["AWS_SECRET_ACCESS_KEY"] = EMULATOR_CREDENTIALS["aws_secret_access_key"]


def feedback_simulator(
    local: LocalMode, database_url: str, bind_host: str, pool: Pool
) -> FeedbackSimulator:
    """Build the simulator that posts feedback to this process's own callback endpoint."""
    settings = local.settings
    basic_auth = None
    if settings.sns_basic_auth is not None:
        user, _, password = settings.sns_basic_auth.reveal().partition(":")
        basic_auth = (user, password)
    config = SimulatorConfig(
        database_url=database_url,
        callback_url=f"http://{_loopback(bind_host)}:{settings.server_port}/v1/events/results",
        topic_arn=local.topic_arn,
        region=settings.aws_region,
        sender=settings.email_sender or DEFAULT_SENDER,
        checkpoint_path=settings.data_dir / "feedback-simulator.checkpoint",
        basic_auth=basic_auth,
    )
    return FeedbackSimulator(config, pool, local.signer)


def _loopback(bind_host: str) -> str:
    """The address to reach a server bound to `bind_host` from this machine."""
    if bind_host in ("0.0.0.0", ""):  # noqa: S104 - compared with, not bound to
        return "127.0.0.1"
    if bind_host == "::":
        return "[::1]"
    return f"[{bind_host}]" if ":" in bind_host else bind_host
