"""The `newsletter` command line: each command parses, calls one core function, prints.

This module only assembles: the root group, and the commands of each module of this package
(`register(main)` each). What the commands share is in app.py.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import (
    archive,
    backup,
    bounces,
    console,
    contacts,
    demo,
    doctor,
    intake,
    issues,
    mailings,
    municipalities,
    report,
    retention,
    review,
    segments,
    serve,
    site,
    webinars,
    worker,
)
from .app import App, Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), envvar="NEWSLETTER_ROOT",
              default=None, help="The newsletter site's folder (default: the current directory).")
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, root: Path | None) -> None:
    """Monthly newsletter and webinar mailings for an association of Swedish municipalities.

    Example: newsletter init && newsletter contacts import kontakter.csv
    """
    ctx.obj = App(root)


for _module in (site, doctor, archive, backup, bounces, console, contacts, demo, intake, issues,
                mailings, municipalities, report, retention, review, segments, serve, webinars,
                worker):
    _module.register(main)
