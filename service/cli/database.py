"""Database commands: `migrate` and `db url`."""

from __future__ import annotations

import click
import psycopg

from service.cli.bootstrap import database, fail, settings_or_exit
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate as apply_migrations
from service.errors import ServiceError
from service.logging import get_logger

log = get_logger(__name__)


@click.command()
def migrate() -> None:
    """Apply the pending schema migrations (safe to run from several processes at once)."""
    settings = settings_or_exit()
    with database(settings, "migrate") as boot:
        try:
            applied = apply_migrations(boot.url)
        except (ServiceError, psycopg.Error) as error:
            fail(f"migration failed: {error}", code=1)
        log.info("migrations_done", applied=[m.version for m in applied])


@click.group()
def db() -> None:
    """Database helpers."""


@db.command()
@click.option("--local", is_flag=True, help="Print the embedded database's URL whatever is set.")
def url(local: bool) -> None:
    """Print the PostgreSQL URL in use, for `psql "$(ses-sender db url)"`."""
    settings = settings_or_exit(local=local)
    if settings.database_url is not None:
        click.echo(settings.database_url.reveal())
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    if not (settings.data_dir / "postgres.port").exists():
        fail(
            f"no embedded database exists under DATA_DIR={settings.data_dir}; "
            f"start the service once with `ses-sender run --local`"
        )
    if not embedded.is_running():
        click.echo(
            "ses-sender: note: the embedded database is not running; "
            "start it with `ses-sender run --local`",
            err=True,
        )
    click.echo(embedded.url)
