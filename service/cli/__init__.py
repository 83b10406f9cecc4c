"""The `ses-sender` command line."""

from __future__ import annotations

import click

from service import __version__
from service.cli.database import db, migrate
from service.cli.dispatch import dispatch, uncertain
from service.cli.processes import run, serve
from service.cli.projections import project, projections


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ses-sender")
def main() -> None:
    """Email delivery on Amazon SES: submission API, rate-limited sending, feedback, statistics.

    Settings come from the environment and an optional .env file in the working directory;
    see the README for the list.
    """


main.add_command(migrate)
main.add_command(db)
main.add_command(serve)
main.add_command(run)
main.add_command(dispatch)
main.add_command(uncertain)
main.add_command(project)
main.add_command(projections)
