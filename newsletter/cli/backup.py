"""`newsletter backup FILE`: a consistent copy of the database, taken while the site runs."""

from __future__ import annotations

from pathlib import Path

import click

from .. import backup as backups
from ..i18n import _
from .app import App, pass_app


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_app
def backup(app: App, file: Path, force: bool) -> None:
    """Back up the database to FILE (mode 0600), consistent even while a mailing is sent.

    SQLite: SQLite's online backup API, one self-contained file. PostgreSQL: pg_dump's custom
    format (needs pg_dump installed; restore with pg_restore). FILE is written whole or not at
    all, and an existing FILE is kept unless --force. The secret key is not in the backup:
    keep NEWSLETTER_SECRET_KEY (or .secret_key) safe separately. Restore: docs/DEPLOY.md.

    Example: newsletter backup /var/backups/newsletter/subscribers-2026-12-01.db
    """
    done = backups.backup(app.settings, file, force=force)
    click.echo(_("Backed up the database to {path} ({size:.1f} MB, {method}).").format(
        path=done.path, size=done.size / 1e6, method=done.method))


def register(main: click.Group) -> None:
    main.add_command(backup)
