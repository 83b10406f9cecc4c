"""Settings: defaults, parsing, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.errors import ConfigError


def load(env: dict[str, str], tmp_path: Path, env_file: Path | None = None):  # type: ignore[no-untyped-def]
    return load_settings({"DATA_DIR": str(tmp_path), **env}, env_file=env_file)


def test_defaults(tmp_path: Path) -> None:
    """With nothing set, the recipe's defaults apply and the database is embedded."""
    settings = load({}, tmp_path)
    assert settings.database_url is None
    assert settings.server_port == 3000
    assert settings.server_host == "http://localhost:3000"
    assert settings.email_rate == 14.0
    assert settings.api_key is None
    assert settings.sns_topic_arns == ()
    assert settings.sns_certs_dir == tmp_path / "sns-certs"


def test_database_url_from_db_parts(tmp_path: Path) -> None:
    """DB_* variables build a URL, with the password escaped."""
    settings = load(
        {"DB_HOST": "db", "DB_USER": "mail", "DB_PASSWORD": "p@ss:/w", "DB_NAME": "ses"}, tmp_path
    )
    assert settings.database_url is not None
    assert settings.database_url.reveal() == "postgresql://mail:p%40ss%3A%2Fw@db:5432/ses"


def test_database_url_wins_over_parts(tmp_path: Path) -> None:
    """DATABASE_URL is used as given when both are set."""
    settings = load({"DATABASE_URL": "postgresql://u@h/d", "DB_HOST": "other"}, tmp_path)
    assert settings.database_url is not None
    assert settings.database_url.reveal() == "postgresql://u@h/d"


def test_incomplete_db_parts(tmp_path: Path) -> None:
    """A lone DB_HOST names the missing variables."""
    with pytest.raises(ConfigError, match="DB_USER, DB_NAME missing"):
        load({"DB_HOST": "db"}, tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SERVER_PORT", "abc", "SERVER_PORT='abc' is invalid: expected a whole number"),
        ("SERVER_PORT", "70000", "SERVER_PORT='70000' is invalid: expected a TCP port"),
        ("EMAIL_RATE", "0", "EMAIL_RATE='0' is invalid: expected a number of sends per second"),
        ("EMAIL_RATE", "fast", "EMAIL_RATE='fast' is invalid"),
        ("EMAIL_RATE", "nan", "EMAIL_RATE='nan' is invalid"),
        ("EMAIL_DAILY_QUOTA", "-5", "EMAIL_DAILY_QUOTA='-5' is invalid: expected a whole number"),
        ("SERVER_HOST", "localhost:3000", "SERVER_HOST='localhost:3000' is invalid: expected an"),
        ("EMAIL_SENDER", "not-an-address", "EMAIL_SENDER='not-an-address' is invalid"),
        ("SNS_TOPIC_ARNS", "topic", "SNS_TOPIC_ARNS='topic' is invalid: expected comma-separated"),
        ("SNS_AUTO_CONFIRM", "maybe", "SNS_AUTO_CONFIRM='maybe' is invalid: expected true or"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml' is invalid: expected json or console"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is invalid: expected one of"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL='mysql://x' is invalid: expected a URL"),
        ("TRACKING_SECRET", "short", "TRACKING_SECRET=(hidden) is invalid: expected at least 16"),
        ("SNS_BASIC_AUTH", "nocolon", "SNS_BASIC_AUTH=(hidden) is invalid: expected user:password"),
    ],
)
def test_bad_value_names_variable_value_and_fix(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    """Each bad value gives one line naming the variable, the value and what is expected."""
    with pytest.raises(ConfigError) as raised:
        load({variable: value}, tmp_path)
    message = str(raised.value)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://user:hunter2-secret@db/x"),
        ("TRACKING_SECRET", "hunter2"),
        ("SNS_BASIC_AUTH", "hunter2"),
    ],
)
def test_secret_values_never_in_errors(tmp_path: Path, variable: str, value: str) -> None:
    """A rejected secret is not echoed back."""
    with pytest.raises(ConfigError) as raised:
        load({variable: value}, tmp_path)
    assert "hunter2" not in str(raised.value)


def test_every_bad_value_reported_at_once(tmp_path: Path) -> None:
    """Several bad values give one line each, so one restart can fix them all."""
    with pytest.raises(ConfigError) as raised:
        load({"SERVER_PORT": "abc", "EMAIL_RATE": "0", "LOG_LEVEL": "loud"}, tmp_path)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("SERVER_PORT='abc'")
    assert any(line.startswith("EMAIL_RATE='0'") for line in lines)
    assert any(line.startswith("LOG_LEVEL='loud'") for line in lines)


def test_database_url_password_masked_in_error(tmp_path: Path) -> None:
    """A rejected DATABASE_URL is shown with its password replaced."""
    with pytest.raises(ConfigError) as raised:
        load({"DATABASE_URL": "mysql://user:hunter2@db/x"}, tmp_path)
    assert "mysql://user:***@db/x" in str(raised.value)


def test_secrets_masked_in_repr(tmp_path: Path) -> None:
    """The settings object can be logged without leaking secrets."""
    settings = load(
        {"API_KEY": "key-hunter2", "DATABASE_URL": "postgresql://u:hunter2@h/d"}, tmp_path
    )
    assert "hunter2" not in repr(settings)
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "key-hunter2"


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """.env fills in what the environment does not set."""
    env_file = tmp_path / ".env"
    env_file.write_text("SERVER_PORT=4000\nEMAIL_RATE=3\n")
    settings = load({"EMAIL_RATE": "5"}, tmp_path, env_file=env_file)
    assert settings.server_port == 4000
    assert settings.email_rate == 5.0


def test_empty_variable_means_unset(tmp_path: Path) -> None:
    """docker-compose passes unset variables as empty strings; they mean the default."""
    settings = load({"SERVER_PORT": "", "API_KEY": ""}, tmp_path)
    assert settings.server_port == 3000
    assert settings.api_key is None


def test_port_changes_default_host(tmp_path: Path) -> None:
    """SERVER_HOST follows SERVER_PORT unless it is set itself."""
    assert load({"SERVER_PORT": "8080"}, tmp_path).server_host == "http://localhost:8080"
    settings = load({"SERVER_PORT": "8080", "SERVER_HOST": "https://m.example.com/"}, tmp_path)
    assert settings.server_host == "https://m.example.com"


def test_topic_arns_list(tmp_path: Path) -> None:
    """SNS_TOPIC_ARNS is a comma-separated list."""
    settings = load(
        {"SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:123456789012:a, arn:aws:sns:eu-west-1:1:b"},
        tmp_path,
    )
    assert settings.sns_topic_arns == (
        "arn:aws:sns:us-east-1:123456789012:a",
        "arn:aws:sns:eu-west-1:1:b",
    )


def test_certs_dir_defaults_under_data_dir(tmp_path: Path) -> None:
    """Settings built in code without SNS_CERTS_DIR keep certificates under DATA_DIR."""
    settings = Settings(database_url=None, data_dir=tmp_path)
    assert settings.sns_certs_dir == tmp_path / "sns-certs"
