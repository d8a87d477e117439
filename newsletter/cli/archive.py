"""`newsletter archive list|remove|restore`: which sent issues the public archive shows."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click

from .. import archive
from ..i18n import _
from .app import App, pass_app

MONTH = click.argument("month", metavar="YYYY-MM")


@click.group("archive")
def group() -> None:
    """The public archive of sent issues (/arkiv/ and its feed)."""


@group.command("list")
@pass_app
def list_(app: App) -> None:
    """List the archived issues, newest first, withdrawn ones marked.

    Example: newsletter archive list
    """
    zone = ZoneInfo(app.settings.organisation.timezone)
    with app.transaction() as s:
        rows = archive.list_archive(s)
        for issue in rows:
            published = issue.published_at.astimezone(zone).strftime("%Y-%m-%d")
            state = (_("withdrawn {date}").format(
                date=issue.withdrawn_at.astimezone(zone).strftime("%Y-%m-%d"))
                if issue.withdrawn_at else _("published {date}").format(date=published))
            click.echo(f"{issue.month}  {state:<22} {issue.subject}")
    if not rows:
        click.echo(_("The archive is empty: an issue is published when it is sent to a "
                     "segment."))


@group.command("remove")
@MONTH
@click.option("--by", metavar="EMAIL", help="Who withdraws it (for the event log).")
@pass_app
def remove(app: App, month: str, by: str | None) -> None:
    """Withdraw issue YYYY-MM from the public archive and feed; what was sent is untouched.

    Example: newsletter archive remove 2026-12
    """
    with app.transaction() as s:
        archive.withdraw(s, month, by=by)
    click.echo(_("Issue {month} is withdrawn from the archive and the feed (`newsletter "
                 "archive restore {month}` puts it back).").format(month=month))


@group.command("restore")
@MONTH
@click.option("--by", metavar="EMAIL", help="Who restores it (for the event log).")
@pass_app
def restore(app: App, month: str, by: str | None) -> None:
    """Show a withdrawn issue in the public archive again.

    Example: newsletter archive restore 2026-12
    """
    with app.transaction() as s:
        archive.restore(s, month, by=by)
    click.echo(_("Issue {month} is in the archive again.").format(month=month))


def register(main: click.Group) -> None:
    main.add_command(group)
