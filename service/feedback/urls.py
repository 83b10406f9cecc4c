"""The host rule for URLs found in SNS messages (SigningCertURL, SubscribeURL).

Only `https://sns.<region>.amazonaws.com` and `https://sns.<region>.amazonaws.com.cn`, with no
port or user info, are accepted. Any other `amazonaws.com` host (S3 buckets among them) could
serve a certificate chosen by whoever posts the message.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from service.feedback.rejection import Rejected

# A region is two letters, one or more words, and a number: us-east-1, us-gov-west-1, cn-north-1.
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d+\.amazonaws\.com(?:\.cn)?")


def is_sns_url(url: str) -> bool:
    """Return True when `url` is https on an SNS host, without port, user info or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and "@" not in parts.netloc
        and port is None
        and parts.hostname is not None
        and parts.netloc == parts.hostname
        and _SNS_HOST.fullmatch(parts.hostname) is not None
    )


def check_signing_cert_url(url: str) -> None:
    """Raise Rejected(403) unless `url` is an SNS host's https URL whose path ends in .pem."""
    if not is_sns_url(url):
        raise Rejected(
            403,
            f"SigningCertURL {url!r} is not an https URL on sns.<region>.amazonaws.com, "
            f"so the message cannot be trusted.",
        )
    if not urlsplit(url).path.endswith(".pem"):
        raise Rejected(403, f"SigningCertURL {url!r} does not name a .pem certificate.")
