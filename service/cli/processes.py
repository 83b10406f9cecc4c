"""Long-running commands: `serve` and `run`."""

from __future__ import annotations

import asyncio
import functools

import click
import psycopg

from service.api.context import AppContext
from service.cli.bootstrap import Bootstrap, database, fail, settings_or_exit
from service.cli.projections import projector_component
from service.db.migrate import migrate as apply_migrations
from service.db.pool import open_pool
from service.dispatch.dispatcher import run_dispatcher
from service.dispatch.startup import require_sending_settings
from service.errors import ServiceError
from service.logging import get_logger
from service.runtime import Component, run_components
from service.server import serve_api
from service.tracking.sending import sending_personalizers

log = get_logger(__name__)

@click.command()
@click.option("--bind", default=None, help="Address to listen on. Default: 0.0.0.0.")
def serve(bind: str | None) -> None:
    """Serve the HTTP API on SERVER_PORT."""
    settings = settings_or_exit()
    with database(settings, "api") as boot:
        _run(boot, bind or "0.0.0.0", api=True)  # noqa: S104 - a service listens on all interfaces


@click.command()
@click.option(
    "--local",
    is_flag=True,
    help="Use the embedded database under DATA_DIR and a generated API key kept there.",
)
@click.option(
    "--bind",
    default=None,
    help="Address to listen on. Default: 0.0.0.0, or 127.0.0.1 with --local.",
)
def run(local: bool, bind: str | None) -> None:
    """Apply migrations, then run every component in this one process."""
    settings = settings_or_exit(local=local)
    if not local:
        try:
            require_sending_settings(settings)
        except ServiceError as error:
            fail(str(error))
    with database(settings, "all") as boot:
        try:
            apply_migrations(boot.url)
        except (ServiceError, psycopg.Error) as error:
            fail(f"migration failed: {error}", code=1)
        if local:
            _announce_local(boot)
        host = bind or ("127.0.0.1" if local else "0.0.0.0")  # noqa: S104
        _run(boot, host, api=True, dispatch=True, project=True)


def _announce_local(boot: Bootstrap) -> None:
    settings = boot.settings
    assert settings.api_key is not None
    click.echo(
        "\n".join(
            [
                "ses-sender is running in local mode.",
                f"  API:      {settings.server_host}  (OpenAPI: {settings.server_host}/schema)",
                f"  API key:  {settings.api_key.reveal()}  (kept in {settings.data_dir}/api-key)",
                f"  Database: {boot.embedded.display_url if boot.embedded else 'external'}",
            ]
        ),
        err=True,
    )


def _run(
    boot: Bootstrap, host: str, *, api: bool, dispatch: bool = False, project: bool = False
) -> None:
    try:
        asyncio.run(_main(boot, host, api=api, dispatch=dispatch, project=project))
    except (ServiceError, OSError) as error:
        fail(str(error), code=1)
    except psycopg.Error as error:
        fail(f"database connection failed: {error}", code=1)


async def _main(
    boot: Bootstrap, host: str, *, api: bool, dispatch: bool = False, project: bool = False
) -> None:
    pool = await open_pool(boot.url, name="api", max_size=20)
    try:
        settings = boot.settings
        context = AppContext(settings, pool)
        components: dict[str, Component] = {}
        if api:
            components["api"] = functools.partial(serve_api, context, host)
        if dispatch:
            personalizers = await sending_personalizers(pool, settings)
            components["dispatcher"] = functools.partial(
                run_dispatcher, settings, pool, boot.url, personalizers=personalizers
            )
        if project:
            components["projector"] = projector_component(pool, boot.url, boot.settings)
        log.info("service_starting", components=list(components), port=boot.settings.server_port)
        await run_components(components)
    finally:
        await pool.close()
    log.info("service_stopped")
