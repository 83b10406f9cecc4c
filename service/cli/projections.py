"""Projection commands: `project` runs the projector; `projections status` and `rebuild`."""

from __future__ import annotations

import asyncio
import functools
import json

import click
import psycopg

from projections.lag import log_head, projection_status
from projections.rebuild import RebuildError, count_events, rebuild
from projections.registry import PROJECTIONS, select
from projections.runner import RunnerOptions, run_projector
from service.cli.bootstrap import Bootstrap, database, fail, settings_or_exit
from service.config import Settings
from service.db.pool import Pool, open_pool
from service.errors import ServiceError
from service.logging import get_logger
from service.metrics_server import metrics_listener
from service.runtime import Component, run_components

log = get_logger(__name__)


def projector_component(pool: Pool, url: str, settings: Settings) -> Component:
    """The projector as a component of a process, configured from the settings."""
    options = RunnerOptions(
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_seconds,
    )
    return functools.partial(run_projector, pool, url, options)


@click.command()
def project() -> None:
    """Keep the read models (topic_stats, hourly_counts, email_status) up to date."""
    settings = settings_or_exit()
    with database(settings, "projector") as boot:
        try:
            asyncio.run(_project(boot))
        except (ServiceError, OSError, psycopg.Error) as error:
            fail(str(error), code=1)


async def _project(boot: Bootstrap) -> None:
    pool = await open_pool(boot.url, name="projector", min_size=1, max_size=len(PROJECTIONS) + 1)
    try:
        components = {
            "projector": projector_component(pool, boot.url, boot.settings),
            **metrics_listener(boot.settings),
        }
        await run_components(components)
    finally:
        await pool.close()


@click.group()
def projections() -> None:
    """Inspect and rebuild the read models."""


@projections.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Show each projection's position in the log and how far behind the head it is."""
    settings = settings_or_exit()
    with database(settings, "projections") as boot:
        try:
            rows, head = asyncio.run(_status(boot.url))
        except psycopg.Error as error:
            fail(f"cannot read the projection status: {error}", code=1)
            return
    if as_json:
        click.echo(json.dumps({"head": head, "projections": rows}, indent=2, default=str))
        return
    click.echo(f"head of log: position {head['position']}, recorded at {head['recorded_at']}")
    header = f"{'projection':<15} {'position':>10} {'lag events':>11} {'lag seconds':>12}  updated"
    click.echo(header)
    for row in rows:
        click.echo(
            f"{row['projection']:<15} {row['position']:>10} {row['lag_events']:>11} "
            f"{row['lag_seconds']:>12.1f}  {row['updated_at']}"
        )


async def _status(url: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        statuses = await projection_status(conn, list(PROJECTIONS))
        head = await log_head(conn)
    rows = [
        {
            "projection": s.projection,
            "position": s.position,
            "xact_id": s.xact_id,
            "events_applied": s.events_applied,
            "lag_events": s.lag_events,
            "lag_seconds": round(s.lag_seconds, 3),
            "updated_at": s.updated_at.isoformat(),
        }
        for s in statuses
    ]
    recorded = head.recorded_at.isoformat() if head.recorded_at else None
    return rows, {"position": head.position, "recorded_at": recorded}


@projections.command(name="rebuild")
@click.argument("names", nargs=-1)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Events applied per transaction while replaying.",
)
def rebuild_command(names: tuple[str, ...], batch_size: int) -> None:
    """Replay the log from the start into the named projections (default: all of them).

    The service keeps running: the new tables are built aside and swapped in at the end.
    """
    try:
        chosen = select(names)
    except KeyError as error:
        fail(
            f"unknown projection {error.args[0]!r}; expected one of {', '.join(PROJECTIONS)}"
        )
        return
    settings = settings_or_exit()
    with database(settings, "projections") as boot:
        for projection in chosen:
            try:
                asyncio.run(_rebuild_one(boot.url, projection.name, batch_size))
            except (RebuildError, psycopg.Error) as error:
                fail(f"rebuild of {projection.name} failed: {error}", code=1)


async def _rebuild_one(url: str, name: str, batch_size: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        total = await count_events(conn)
    with click.progressbar(length=total, label=f"rebuilding {name}", file=None) as bar:
        result = await rebuild(url, PROJECTIONS[name], batch_size, bar.update)
    click.echo(f"{name}: {result.events} events applied, position {result.checkpoint.position}")
