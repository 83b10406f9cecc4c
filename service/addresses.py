"""Email address validation and normalisation, the way SES accepts addresses."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """An address SES would not accept; `reason` explains why in one sentence."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address!r} is not a valid email address: {reason}")
        self.address = address
        self.reason = reason


def normalize_address(address: str) -> str:
    """Validate the syntax of `address` and return it with its domain lower-cased and in punycode.

    No DNS lookup is made. SES accepts only ASCII local parts, so a non-ASCII local part is
    rejected rather than passed on to fail at send time.
    """
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidAddress(address, str(error)) from None
    if not result.local_part.isascii():
        raise InvalidAddress(
            address, "SES does not accept non-ASCII characters before the @; use an ASCII address"
        )
    domain = result.ascii_domain.lower()
    return f"{result.local_part}@{domain}"

