"""`newsletter retention`: anonymise personal traces older than `[retention]` says."""

from __future__ import annotations

import click

from ..i18n import _
from ..retention import apply_retention
from .app import App, pass_app


@click.command("retention")
@click.option("--dry-run", is_flag=True, help="Show what would be anonymised, change nothing.")
@pass_app
def retention(app: App, dry_run: bool) -> None:
    """Anonymise events and per-recipient rows older than [retention] events_days and
    outbox_days; each mailing keeps its counts. The worker does this every round.

    Example: newsletter retention --dry-run
    """
    with app.transaction(dry_run=dry_run) as session:
        report = apply_retention(session, app.settings)
    if report.changed and not dry_run:
        app.checkpoint()
    days = app.settings.retention
    click.echo(_("Events older than {days} days: {n} anonymised").format(
        days=days.events_days or "∞", n=report.events))
    click.echo(_("Mailings finished more than {days} days ago: {n} anonymised ({rows} "
                 "recipient rows, {variants} personal variants deleted)").format(
        days=days.outbox_days or "∞", n=report.mailings, rows=report.rows,
        variants=report.variants))
    if report.signups:
        click.echo(_("Unconfirmed sign-ups whose link expired: {n} deleted").format(
            n=report.signups))
    if dry_run:
        click.echo(_("Dry run: nothing was changed."))


def register(main: click.Group) -> None:
    main.add_command(retention)
