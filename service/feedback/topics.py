"""The SNS topic allowlist (SNS_TOPIC_ARNS), checked before anything else is done."""

from __future__ import annotations

from service.feedback.rejection import Rejected
from service.logging import get_logger

log = get_logger(__name__)


class TopicAllowlist:
    def __init__(self, arns: tuple[str, ...]) -> None:
        self._arns = frozenset(arns)

    def check(self, topic_arn: str) -> None:
        """Raise Rejected(403) unless `topic_arn` is allowed; with none configured, none is."""
        if not self._arns:
            log.warning(
                "sns_topic_rejected",
                topic_arn=topic_arn,
                reason="SNS_TOPIC_ARNS is not set, so every SNS message is rejected; "
                "set it to the ARNs of the topics SES publishes feedback to",
            )
            raise Rejected(
                403,
                "No SNS topic is allowed on this server; set SNS_TOPIC_ARNS to accept feedback.",
            )
        if topic_arn not in self._arns:
            log.warning("sns_topic_rejected", topic_arn=topic_arn, reason="not in SNS_TOPIC_ARNS")
            raise Rejected(403, f"TopicArn {topic_arn!r} is not in this server's SNS_TOPIC_ARNS.")
