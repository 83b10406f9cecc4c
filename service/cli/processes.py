"""Long-running commands: `serve` and `run`."""

from __future__ import annotations

import asyncio
import functools
from contextlib import ExitStack

import click
import psycopg

from service.api.context import AppContext
from service.cli.bootstrap import (
    Bootstrap,
    database,
    fail,
    require_sending_or_exit,
    settings_or_exit,
)
from service.cli.projections import projector_component
from service.config import Settings
from service.db.migrate import migrate as apply_migrations
from service.db.pool import open_pool
from service.dispatch.dispatcher import run_dispatcher
from service.errors import ServiceError
from service.local.mode import LocalMode, feedback_simulator, local_mode
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
    help="Run on this machine alone: the embedded database under DATA_DIR, a generated API key "
    "kept there, and an SES emulator on 127.0.0.1 (no email leaves the machine).",
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
        require_sending_or_exit(settings)
    with ExitStack() as stack:
        mode = _enter_local_mode(stack, settings) if local else None
        if mode is not None:
            settings = mode.settings
        boot = stack.enter_context(database(settings, "all"))
        try:
            apply_migrations(boot.url)
        except (ServiceError, psycopg.Error) as error:
            fail(f"migration failed: {error}", code=1)
        if mode is not None:
            _announce_local(boot, mode)
        host = bind or ("127.0.0.1" if local else "0.0.0.0")  # noqa: S104
        _run(boot, host, api=True, dispatch=True, project=True, local=mode)


def _enter_local_mode(stack: ExitStack, settings: Settings) -> LocalMode:
    try:
        mode: LocalMode = stack.enter_context(local_mode(settings))
    except ServiceError as error:
        fail(str(error))
        raise AssertionError("unreachable") from None
    return mode


def _announce_local(boot: Bootstrap, mode: LocalMode) -> None:
    settings = boot.settings
    assert settings.api_key is not None
    log.info(
        "local_mode_started",
        note="no email leaves this machine: SES is an emulator on 127.0.0.1",
        ses_endpoint=settings.ses_endpoint_url,
        sender=settings.email_sender,
        base_url=settings.server_host,
    )
    click.echo(
        "\n".join(
            [
                "ses-sender is running in local mode: no email leaves this machine.",
                f"  API:      {settings.server_host}  (OpenAPI: {settings.server_host}/schema)",
                f"  API key:  {settings.api_key.reveal()}  (kept in {settings.data_dir}/api-key)",
                f"  Database: {boot.embedded.display_url if boot.embedded else 'external'}",
                f"  SES:      emulator at {settings.ses_endpoint_url}, keeping every email "
                f"in memory",
                f"  Sender:   {settings.email_sender}",
                f"  Feedback: simulated for every send and posted, signed, to "
                f"/v1/events/results from {mode.topic_arn}",
            ]
        ),
        err=True,
    )


def _run(
    boot: Bootstrap,
    host: str,
    *,
    api: bool,
    dispatch: bool = False,
    project: bool = False,
    local: LocalMode | None = None,
) -> None:
    try:
        asyncio.run(_main(boot, host, api=api, dispatch=dispatch, project=project, local=local))
    except (ServiceError, OSError) as error:
        fail(str(error), code=1)
    except psycopg.Error as error:
        fail(f"database connection failed: {error}", code=1)


async def _main(
    boot: Bootstrap,
    host: str,
    *,
    api: bool,
    dispatch: bool = False,
    project: bool = False,
    local: LocalMode | None = None,
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
        if local is not None:
            simulator = feedback_simulator(local, boot.url, host, pool)
            components["feedback_simulator"] = simulator.run
        log.info("service_starting", components=list(components), port=boot.settings.server_port)
        await run_components(components)
    finally:
        await pool.close()
    log.info("service_stopped")
