"""`newsletter report`: delivery, clicks and list health as tables, a CSV file, a year page."""

from __future__ import annotations

from pathlib import Path

import click

from .. import db
from ..i18n import _
from ..report_tables import Table, build, write_csv
from ..year_page import write_year_page
from . import tables
from .app import App, pass_app


def _echo_table(table: Table) -> None:
    click.echo(table.title)
    click.echo("=" * len(table.title))
    tables.echo(table.headers, table.rows, table.numeric)
    if not table.rows:
        click.echo(_("(nothing in this period)"))
    if table.note:
        click.echo(table.note)
    click.echo()


@click.command("report")
@click.argument("target", required=False, metavar="[ID | YYYY-MM]")
@click.option("--year", type=click.IntRange(2000, 2999), help="The year report of YYYY.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the tables to this CSV file (UTF-8, for Excel).")
@click.option("--semicolon", is_flag=True, help="Separate the CSV columns with ; (Swedish Excel).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the printable year page to this HTML file (year reports only).")
@pass_app
def report(app: App, target: str | None, year: int | None, csv_file: Path | None,
           semicolon: bool, html_file: Path | None) -> None:
    """Delivery, clicks and list health of a mailing (ID), a month (YYYY-MM) or a year.

    Without ID or month: the year report (this year, or --year). Clicks are counted per link,
    never per person; figures broken down below a mailing that are under 5 show as <5.

    Examples: newsletter report 12 · newsletter report 2026-12 --csv december.csv ·
    newsletter report --year 2026 --html arsrapport-2026.html
    """
    if target is not None and year is not None:
        raise click.UsageError(_("give a mailing or a month, or --year: not both"))
    if html_file is not None and target is not None:
        raise click.UsageError(_("--html makes the year page: use it with --year YYYY"))
    with db.transaction(app.sessions, dry_run=True) as session:  # only reads
        built = build(session, app.settings, target, year)
    for table in built.tables:
        _echo_table(table)
    if csv_file is not None:
        write_csv(csv_file, built.tables, delimiter=";" if semicolon else ",")
        click.echo(_("Wrote {file}").format(file=csv_file))
    if html_file is not None and built.year is not None:
        write_year_page(app.settings, built.year, html_file)
        click.echo(_("Wrote {file}").format(file=html_file))


def register(main: click.Group) -> None:
    main.add_command(report)
