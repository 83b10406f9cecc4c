"""Command startup: read settings, set up logging, find the database."""

from __future__ import annotations

import dataclasses
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from service.config import Settings, load_settings
from service.db.embedded import EmbeddedPostgres
from service.db.pool import database_url, embedded_server
from service.errors import ServiceError
from service.logging import configure_logging, get_logger
from service.secret import Secret
from service.sentry import init_sentry

log = get_logger(__name__)


@dataclass
class Bootstrap:
    settings: Settings
    embedded: EmbeddedPostgres | None
    url: str


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit: the format for every startup error."""
    click.echo(f"ses-sender: error: {message}", err=True)
    sys.exit(code)


def settings_or_exit(*, local: bool = False) -> Settings:
    try:
        settings = load_settings()
    except ServiceError as error:
        fail(str(error))
        raise AssertionError("unreachable") from None
    configure_logging(settings.log_level, settings.log_format)
    if local:
        settings = _local_settings(settings)
    return settings


def _local_settings(settings: Settings) -> Settings:
    if settings.database_url is not None:
        log.warning(
            "local_mode_ignores_database_url",
            hint="--local always uses the embedded database under DATA_DIR",
        )
    api_key = settings.api_key or Secret(_local_api_key(settings.data_dir))
    return dataclasses.replace(settings, database_url=None, api_key=api_key)


def _local_api_key(data_dir: Path) -> str:
    """Return the API key kept in DATA_DIR for local mode, generating it on first use."""
    path = data_dir / "api-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


@contextmanager
def database(settings: Settings, component: str) -> Iterator[Bootstrap]:
    """Resolve the database (starting the embedded one if it is used) for one command."""
    init_sentry(settings, component)
    embedded = embedded_server(settings)
    try:
        url = database_url(settings, embedded)
    except ServiceError as error:
        fail(str(error), code=1)
        raise AssertionError("unreachable") from None
    try:
        yield Bootstrap(settings, embedded, url)
    finally:
        if embedded is not None:
            embedded.stop()
