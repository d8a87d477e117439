"""`newsletter bounces`: delivery status notifications and the suppression list."""

from __future__ import annotations

from pathlib import Path

import click

from ..bounces import process_mailbox
from ..i18n import _, ngettext
from .app import App, pass_app


@click.group("bounces")
def group() -> None:
    """Delivery status notifications (bounces) from the mailbox replies come back to."""


@group.command("process")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@pass_app
def process(app: App, path: Path, dry_run: bool) -> None:
    """Read the bounces in PATH (a Maildir folder or an mbox file) and act on them.

    A hard bounce (e.g. 5.1.1 user unknown) puts the address on the suppression list at once;
    soft bounces (mailbox full, delayed, 4.x.x) are counted and suppress the address after
    `[bounces] soft_limit` of them in a row (a delivery in between starts the count again);
    a spam complaint (ARF feedback report) suppresses the address; auto-replies are ignored.
    Reading the same mailbox again changes nothing. The mailbox itself is never changed.

    Example: newsletter bounces process ~/Maildir/.Studsar
    """
    with app.transaction(dry_run=dry_run) as session:
        s = process_mailbox(session, app.settings, path)
    click.echo(ngettext("{n} message read in {path}", "{n} messages read in {path}",
                        s.messages).format(n=s.messages, path=path))
    click.echo(_("  hard bounces:             {n} (addresses suppressed)").format(n=s.hard))
    click.echo(_("  soft bounces:             {n} (counted; {suppressed} suppressed after "
                 "{limit})").format(n=s.soft, suppressed=s.suppressed_after_soft,
                                     limit=app.settings.soft_bounce_limit))
    click.echo(_("  complaints (spam):        {n} (addresses suppressed)").format(
        n=s.complaints))
    click.echo(_("  auto-replies (ignored):   {n}").format(n=s.auto_replies))
    click.echo(_("  not delivery reports:     {n}").format(n=s.not_reports))
    click.echo(_("  already processed:        {n}").format(n=s.already_processed))
    click.echo(_("  unknown addresses:        {n} (suppressed anyway when they bounce hard)")
               .format(n=s.unknown_addresses))
    if dry_run:
        click.echo(_("Dry run: nothing was changed."))


def register(main: click.Group) -> None:
    main.add_command(group)
