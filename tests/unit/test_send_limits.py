"""The limits in force: configured values combined with what SES GetAccount reports."""

from __future__ import annotations

from pathlib import Path

from service.dispatch.account import DEFAULT_DAILY_QUOTA, AccountReport, combine
from tests.conftest import make_settings


def report(rate: float | None, quota: int | None, enabled: bool = True) -> AccountReport:
    return AccountReport(rate, quota, enabled, True)


def test_smaller_rate_and_quota_win(tmp_path: Path) -> None:
    """The smaller of the configured and reported rate and quota are used."""
    settings = make_settings(tmp_path, "postgresql://x/y", email_rate=14.0, email_daily_quota=900)
    assert combine(settings, report(10.0, 5000)).rate == 10.0
    assert combine(settings, report(10.0, 5000)).daily_quota == 900
    assert combine(settings, report(50.0, 200)).rate == 14.0
    assert combine(settings, report(50.0, 200)).daily_quota == 200


def test_without_any_quota_uses_default(tmp_path: Path) -> None:
    """No configured quota and none reported (or SES's -1 for unlimited) means 50,000."""
    settings = make_settings(tmp_path, "postgresql://x/y")
    assert combine(settings, None).daily_quota == DEFAULT_DAILY_QUOTA
    assert combine(settings, report(None, -1)).daily_quota == DEFAULT_DAILY_QUOTA


def test_sending_disabled_is_reported(tmp_path: Path) -> None:
    """SendingEnabled false turns sending off; no report leaves it on."""
    settings = make_settings(tmp_path, "postgresql://x/y")
    assert combine(settings, report(14.0, 100, enabled=False)).sending_enabled is False
    assert combine(settings, None).sending_enabled is True
