"""Settings: read from the environment and an optional `.env` file, validated once at startup.

Every variable has a parser that raises ValueError with what it expected. `load_settings` turns
that into one ConfigError line naming the variable, the value (masked for secrets) and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import platformdirs
from dotenv import dotenv_values

from service.errors import ConfigError
from service.secret import Secret

T = TypeVar("T")

LogFormat = Literal["json", "console"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The validated configuration of one process."""

    database_url: Secret | None
    """PostgreSQL URL; None means the embedded server under `data_dir`."""
    data_dir: Path
    server_port: int = 3000
    server_host: str = "http://localhost:3000"
    api_key: Secret | None = None
    aws_region: str = "us-east-1"
    ses_endpoint_url: str | None = None
    email_sender: str | None = None
    ses_configuration_set: str | None = None
    email_rate: float = 14.0
    email_daily_quota: int | None = None
    dispatch_concurrency: int = 32
    """Emails one dispatcher works on at once (claimed and not yet recorded)."""
    send_max_attempts: int = 5
    """Transient SES failures (timeouts, 5xx) tolerated per email before it fails for good."""
    resend_uncertain_after: float | None = None
    """Seconds after which an uncertain email is sent again; None leaves it to an operator."""
    dispatch_lease_seconds: float = 60.0
    """How long a claim lasts before its email counts as uncertain; far above SES's timeouts."""
    tracking_secret: Secret | None = None
    sns_topic_arns: tuple[str, ...] = ()
    sns_certs_dir: Path = Path()
    """The SNS signing certificate cache; left empty, `data_dir/sns-certs`."""
    sns_auto_confirm: bool = True
    sns_basic_auth: Secret | None = None
    sentry_dsn: Secret | None = None
    log_format: LogFormat | None = None
    """None picks console on a terminal and JSON elsewhere."""
    log_level: str = "info"
    metrics_port: int | None = None
    """Port of a separate /metrics listener for processes without the API (dispatch, project)."""
    max_recipients_per_request: int = 10_000
    max_content_bytes: int = 1_000_000
    max_subject_length: int = 998
    max_request_bytes: int = 20_000_000
    idempotency_key_hours: int = 24
    """How long an Idempotency-Key of POST /v1/messages is remembered."""
    projection_batch_size: int = 1000
    """Events a projection applies per transaction."""
    projection_poll_seconds: float = 2.0
    """How often projectors look for new events when no notification arrives."""

    def __post_init__(self) -> None:
        # An empty path would put certificates in the working directory.
        if self.sns_certs_dir == Path():
            object.__setattr__(self, "sns_certs_dir", self.data_dir / "sns-certs")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a non-empty value")
    return value.strip()


def _port(value: str) -> int:
    port = _integer(value)
    if not 1 <= port <= 65535:
        raise ValueError("expected a TCP port from 1 to 65535")
    return port


def _integer(value: str) -> int:
    try:
        return int(value.replace("_", ""))
    except ValueError:
        raise ValueError("expected a whole number") from None


def _positive_integer(value: str) -> int:
    number = _integer(value)
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError("expected a number of sends per second, such as 14") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError("expected a number of sends per second greater than 0, such as 14")
    return rate


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("expected a number of seconds, such as 2 or 3600") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("expected a number of seconds greater than 0, such as 2 or 3600")
    return seconds


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _base_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http or https URL, such as https://mail.example.com")
    if parts.query or parts.fragment:
        raise ValueError("expected a base URL without a query or fragment")
    return value.strip().rstrip("/")


def _postgres_url(value: str) -> Secret:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a URL of the form postgresql://user:password@host:5432/dbname")
    return Secret(value.strip())


def _secret(value: str) -> Secret:
    return Secret(_text(value))


def _secret_min_16(value: str) -> Secret:
    if len(value.strip()) < 16:
        raise ValueError(
            "expected at least 16 characters; generate one with `openssl rand -hex 32`"
        )
    return Secret(value.strip())


def _basic_auth(value: str) -> Secret:
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise ValueError("expected user:password")
    return Secret(value)


def _topic_arns(value: str) -> tuple[str, ...]:
    arns = tuple(arn.strip() for arn in value.split(",") if arn.strip())
    for arn in arns:
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns":
            raise ValueError(
                "expected comma-separated SNS topic ARNs such as "
                f"arn:aws:sns:us-east-1:123456789012:ses-feedback, and {arn!r} is not one"
            )
    return arns


def _log_format(value: str) -> LogFormat:
    lowered = value.strip().lower()
    if lowered == "json":
        return "json"
    if lowered == "console":
        return "console"
    raise ValueError("expected json or console")


def _log_level(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return lowered


def _email_sender(value: str) -> str:
    # Imported here so that importing the settings stays cheap for the CLI's --help.
    from service.addresses import InvalidAddress, normalize_address

    try:
        return normalize_address(value.strip())
    except InvalidAddress as error:
        raise ValueError(f"expected an email address ({error.reason})") from None


def _path(value: str) -> Path:
    return Path(_text(value)).expanduser()


SECRET_VARIABLES = frozenset(
    {"DATABASE_URL", "DB_PASSWORD", "API_KEY", "TRACKING_SECRET", "SNS_BASIC_AUTH", "SENTRY_DSN"}
)


@dataclass(frozen=True)
class _Spec:
    variable: str
    attribute: str
    parse: Callable[[str], Any]


_SPECS = (
    _Spec("SERVER_PORT", "server_port", _port),
    _Spec("SERVER_HOST", "server_host", _base_url),
    _Spec("API_KEY", "api_key", _secret),
    _Spec("AWS_REGION", "aws_region", _text),
    _Spec("SES_ENDPOINT_URL", "ses_endpoint_url", _base_url),
    _Spec("EMAIL_SENDER", "email_sender", _email_sender),
    _Spec("SES_CONFIGURATION_SET", "ses_configuration_set", _text),
    _Spec("EMAIL_RATE", "email_rate", _rate),
    _Spec("EMAIL_DAILY_QUOTA", "email_daily_quota", _positive_integer),
    _Spec("DISPATCH_CONCURRENCY", "dispatch_concurrency", _positive_integer),
    _Spec("SEND_MAX_ATTEMPTS", "send_max_attempts", _positive_integer),
    _Spec("RESEND_UNCERTAIN_AFTER", "resend_uncertain_after", _seconds),
    _Spec("DISPATCH_LEASE_SECONDS", "dispatch_lease_seconds", _seconds),
    _Spec("TRACKING_SECRET", "tracking_secret", _secret_min_16),
    _Spec("SNS_TOPIC_ARNS", "sns_topic_arns", _topic_arns),
    _Spec("SNS_AUTO_CONFIRM", "sns_auto_confirm", _boolean),
    _Spec("SNS_BASIC_AUTH", "sns_basic_auth", _basic_auth),
    _Spec("SENTRY_DSN", "sentry_dsn", _secret),
    _Spec("LOG_FORMAT", "log_format", _log_format),
    _Spec("LOG_LEVEL", "log_level", _log_level),
    _Spec("METRICS_PORT", "metrics_port", _port),
    _Spec("MAX_RECIPIENTS_PER_REQUEST", "max_recipients_per_request", _positive_integer),
    _Spec("MAX_CONTENT_BYTES", "max_content_bytes", _positive_integer),
    _Spec("MAX_SUBJECT_LENGTH", "max_subject_length", _positive_integer),
    _Spec("MAX_REQUEST_BYTES", "max_request_bytes", _positive_integer),
    _Spec("IDEMPOTENCY_KEY_HOURS", "idempotency_key_hours", _positive_integer),
    _Spec("PROJECTION_BATCH_SIZE", "projection_batch_size", _positive_integer),
    _Spec("PROJECTION_POLL_SECONDS", "projection_poll_seconds", _seconds),
)


def _shown(variable: str, value: str) -> str:
    if variable == "DATABASE_URL":
        return repr(_mask_password(value))
    return "(hidden)" if variable in SECRET_VARIABLES else repr(value)


def _mask_password(url: str) -> str:
    """Show a URL with its password replaced, so an error can name it without leaking it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _parse(variable: str, value: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(value)
    except ValueError as error:
        raise ConfigError(f"{variable}={_shown(variable, value)} is invalid: {error}") from None


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> dict[str, str]:
    """Merge the `.env` file (if any) under the process environment, which wins."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    # An empty variable means "not set", as docker-compose passes unset values through as "".
    return {key: value for key, value in merged.items() if value != ""}


def _database_url(env: Mapping[str, str]) -> Secret | None:
    if "DATABASE_URL" in env:
        return _parse("DATABASE_URL", env["DATABASE_URL"], _postgres_url)
    parts = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")
    if not any(name in env for name in parts):
        return None
    missing = [name for name in ("DB_HOST", "DB_USER", "DB_NAME") if name not in env]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} missing: when any DB_* variable is set, DB_HOST, DB_USER and "
            f"DB_NAME are required (or set DATABASE_URL instead)"
        )
    port = _parse("DB_PORT", env.get("DB_PORT", "5432"), _port)
    user = quote(env["DB_USER"], safe="")
    password = quote(env.get("DB_PASSWORD", ""), safe="")
    credentials = f"{user}:{password}" if password else user
    host = env["DB_HOST"]
    name = quote(env["DB_NAME"], safe="")
    return Secret(f"postgresql://{credentials}@{host}:{port}/{name}")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Read and validate every setting; raise ConfigError on the first bad one."""
    env = read_environment(environ, env_file)
    errors: list[str] = []

    def collect(parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except ConfigError as error:
            errors.append(str(error))
            return None

    default_data_dir = platformdirs.user_data_dir("ses-sender", appauthor=False)
    data_dir = collect(lambda: _parse("DATA_DIR", env.get("DATA_DIR", default_data_dir), _path))
    certs_default = str((data_dir or Path(default_data_dir)) / "sns-certs")
    values: dict[str, Any] = {
        "database_url": collect(lambda: _database_url(env)),
        "data_dir": data_dir,
        "sns_certs_dir": collect(
            lambda: _parse("SNS_CERTS_DIR", env.get("SNS_CERTS_DIR", certs_default), _path)
        ),
    }
    for spec in _SPECS:
        if spec.variable in env:
            values[spec.attribute] = collect(
                lambda spec=spec: _parse(spec.variable, env[spec.variable], spec.parse)  # type: ignore[misc]
            )
    if errors:
        # Every bad value is reported at once, one per line, so one restart fixes them all.
        raise ConfigError("\n".join(errors))
    if "SERVER_HOST" not in env and "SERVER_PORT" in env:
        values["server_host"] = f"http://localhost:{values['server_port']}"
    return Settings(**values)
