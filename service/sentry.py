"""Optional error reporting to Sentry, enabled by SENTRY_DSN."""

from __future__ import annotations

import sentry_sdk

from service import __version__
from service.config import Settings


def init_sentry(settings: Settings, component: str) -> bool:
    """Start the Sentry client when a DSN is configured; return whether it was started."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.reveal(),
        release=f"ses-sender@{__version__}",
        server_name=component,
        # Personal data (request bodies with recipients and content) stays out: that is the
        # SDK's default, so it is not set here.
        traces_sample_rate=0.0,
    )
    return True
