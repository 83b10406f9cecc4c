"""Confirming SNS subscriptions by a GET of the SubscribeURL, after the answer is sent."""

from __future__ import annotations

from service.feedback.http import HttpGet
from service.logging import get_logger

log = get_logger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0


async def confirm_subscription(http_get: HttpGet, topic_arn: str, subscribe_url: str) -> bool:
    """GET `subscribe_url` (already checked against the host rule); log and return the outcome.

    Runs as a background task, so a failure is logged, not raised. SNS resends the
    confirmation for a while, and an operator can confirm by hand with the logged URL.
    """
    try:
        result = await http_get(subscribe_url)
    except OSError as error:
        log.error(
            "sns_subscription_confirm_failed",
            topic_arn=topic_arn,
            subscribe_url=subscribe_url,
            error=str(error),
        )
        return False
    if result.status != 200:
        log.error(
            "sns_subscription_confirm_failed",
            topic_arn=topic_arn,
            subscribe_url=subscribe_url,
            http_status=result.status,
        )
        return False
    log.info("sns_subscription_confirmed", topic_arn=topic_arn)
    return True
