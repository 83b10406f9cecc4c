"""The limits SES reports for the account (GetAccount), combined with the configured ones.

Read at start and at most once a minute. The rate and quota in force are the smaller of
the configured and the reported values. An endpoint without GetAccount (moto, some
emulators) leaves the configured values in force, with one log line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from service.config import Settings
from service.dispatch.ses import SESV2Client
from service.logging import get_logger

log = get_logger(__name__)

DEFAULT_DAILY_QUOTA = 50_000
"""A usual starting quota of a production SES account; used when SES and settings give none."""
REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class SendLimits:
    """The rate and quota in force, and whether SES lets the account send at all."""

    rate: float
    daily_quota: int
    sending_enabled: bool = True


@dataclass(frozen=True)
class AccountReport:
    """The fields of a GetAccount response that the dispatcher uses."""

    max_send_rate: float | None
    max_24_hour_send: int | None
    sending_enabled: bool
    production_access: bool | None


def combine(settings: Settings, report: AccountReport | None) -> SendLimits:
    """Return the limits in force: the smaller of the configured and reported values."""
    rate = settings.email_rate
    quotas = [q for q in (settings.email_daily_quota,) if q is not None]
    enabled = True
    if report is not None:
        if report.max_send_rate is not None and report.max_send_rate > 0:
            rate = min(rate, report.max_send_rate)
        # SES reports -1 for an unlimited quota.
        if report.max_24_hour_send is not None and report.max_24_hour_send > 0:
            quotas.append(report.max_24_hour_send)
        enabled = report.sending_enabled
    quota = min(quotas) if quotas else DEFAULT_DAILY_QUOTA
    return SendLimits(rate=rate, daily_quota=quota, sending_enabled=enabled)


def read_account(client: SESV2Client) -> AccountReport:
    """Call GetAccount; raise BotoCoreError or ClientError when it is not available."""
    response = client.get_account()
    quota = response.get("SendQuota", {})
    max_24h = quota.get("Max24HourSend")
    max_rate = quota.get("MaxSendRate")
    return AccountReport(
        max_send_rate=float(max_rate) if max_rate is not None else None,
        max_24_hour_send=int(max_24h) if max_24h is not None else None,
        sending_enabled=bool(response.get("SendingEnabled", True)),
        production_access=response.get("ProductionAccessEnabled"),
    )


class AccountLimits:
    """The limits in force for one dispatcher, refreshed from SES at most once a minute."""

    def __init__(self, settings: Settings, client: SESV2Client) -> None:
        self._settings = settings
        self._client = client
        self._limits = combine(settings, None)
        self._read_at: float | None = None
        self._unavailable_logged = False

    @property
    def current(self) -> SendLimits:
        return self._limits

    def due(self) -> bool:
        """Return whether the limits are older than a minute (or were never read)."""
        return self._read_at is None or time.monotonic() - self._read_at >= REFRESH_SECONDS

    def refresh(self) -> SendLimits:
        """Read GetAccount (a blocking call: run it in a thread) and update the limits."""
        first = self._read_at is None
        self._read_at = time.monotonic()
        try:
            report: AccountReport | None = read_account(self._client)
        except (BotoCoreError, ClientError) as error:
            report = None
            if not self._unavailable_logged:
                self._unavailable_logged = True
                log.info(
                    "ses_account_unavailable",
                    reason=_short_reason(error),
                    using="EMAIL_RATE and EMAIL_DAILY_QUOTA",
                )
        limits = combine(self._settings, report)
        if first:
            self._log_start(limits, report)
        elif limits.sending_enabled != self._limits.sending_enabled:
            self._log_enabled(limits.sending_enabled)
        self._limits = limits
        return limits

    def _log_start(self, limits: SendLimits, report: AccountReport | None) -> None:
        reported = report is not None and report.max_24_hour_send not in (None, 0)
        if self._settings.email_daily_quota is None and not reported:
            log.warning("daily_quota_defaulted", daily_quota=limits.daily_quota,
                        hint="set EMAIL_DAILY_QUOTA to the account's quota")
        log.info("send_limits", rate=limits.rate, daily_quota=limits.daily_quota,
                 sending_enabled=limits.sending_enabled,
                 production_access=report.production_access if report else None)
        if not limits.sending_enabled:
            self._log_enabled(False)

    @staticmethod
    def _log_enabled(enabled: bool) -> None:
        if enabled:
            log.warning("ses_sending_enabled_again")
        else:
            log.error("ses_sending_disabled", hint="sending holds until SES enables it again")


def _short_reason(error: BotoCoreError | ClientError) -> str:
    """Name the error without the response body, which an emulator may fill with an HTML page."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "unknown")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"GetAccount failed: {code} (HTTP {status})"
    return str(error)[:200]
