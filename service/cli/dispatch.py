"""Sending commands: `dispatch` and `uncertain list|resend`."""

from __future__ import annotations

import asyncio
import functools
import uuid

import click
import psycopg

from service.cli.bootstrap import database, fail, require_sending_or_exit, settings_or_exit
from service.config import Settings
from service.db.pool import open_pool
from service.dispatch.dispatcher import run_dispatcher
from service.dispatch.uncertain import UncertainEmail, list_uncertain, resend
from service.errors import ServiceError
from service.logging import get_logger
from service.metrics_server import metrics_listener
from service.runtime import run_components
from service.tracking.sending import sending_personalizers

log = get_logger(__name__)


@click.command()
def dispatch() -> None:
    """Send due emails through SES at EMAIL_RATE, until SIGTERM or Ctrl-C."""
    settings = settings_or_exit()
    require_sending_or_exit(settings)
    with database(settings, "dispatcher") as boot:
        try:
            asyncio.run(_dispatch(boot.settings, boot.url))
        except (ServiceError, OSError, psycopg.OperationalError) as error:
            fail(str(error), code=1)


async def _dispatch(settings: Settings, url: str) -> None:
    pool = await open_pool(url, name="dispatcher", min_size=2, max_size=6)
    try:
        personalizers = await sending_personalizers(pool, settings)
        dispatcher = functools.partial(
            run_dispatcher, settings, pool, url, personalizers=personalizers
        )
        await run_components({"dispatcher": dispatcher, **metrics_listener(settings)})
    finally:
        await pool.close()


@click.group()
def uncertain() -> None:
    """Emails whose dispatcher died mid-send: SES may or may not have sent them."""


@uncertain.command("list")
@click.option("--limit", default=1000, show_default=True, help="Maximum number of emails to list.")
def list_command(limit: int) -> None:
    """List uncertain emails, oldest first: request id, topic, recipient, attempt, since."""
    settings = settings_or_exit()
    with database(settings, "cli") as boot:
        emails = asyncio.run(_list(boot.url, limit))
    for email in emails:
        click.echo(
            f"{email.request_id}\t{email.topic_id}\t{email.recipient}\t"
            f"{email.attempt}\t{email.since.isoformat()}"
        )
    click.echo(f"{len(emails)} uncertain", err=True)


@uncertain.command("resend")
@click.argument("request_ids", nargs=-1)
@click.option("--all", "resend_all", is_flag=True, help="Resend every uncertain email.")
def resend_command(request_ids: tuple[str, ...], resend_all: bool) -> None:
    """Queue uncertain emails (REQUEST_ID... or --all) to be sent again.

    The recipient may receive the email twice if SES did accept the first attempt.
    """
    if bool(request_ids) == resend_all:
        fail("give the request ids to resend, or --all (not both)")
    invalid = [value for value in request_ids if not _is_uuid(value)]
    if invalid:
        fail(f"invalid request id {', '.join(map(repr, invalid))}: "
             "give UUIDs as `ses-sender uncertain list` prints them")
    settings = settings_or_exit()
    with database(settings, "cli") as boot:
        queued = asyncio.run(_resend(boot.url, None if resend_all else request_ids))
    for request_id in queued:
        click.echo(request_id)
    missing = set(request_ids) - set(queued)
    for request_id in sorted(missing):
        click.echo(f"not uncertain, left alone: {request_id}", err=True)
    click.echo(f"{len(queued)} queued to be sent again", err=True)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _list(url: str, limit: int) -> list[UncertainEmail]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await list_uncertain(conn, limit)


async def _resend(url: str, request_ids: tuple[str, ...] | None) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await resend(conn, request_ids)
