"""`newsletter init`: the site's configuration and database, created or brought up to date."""

from __future__ import annotations

import click

from .. import db
from ..files import atomic_write
from ..municipalities import load_municipalities
from ..settings import CONFIG_NAME, default_config_text, ensure_secret_key
from .app import App, pass_app


@click.command()
@pass_app
def init(app: App) -> None:
    """Create newsletter.toml (if missing) and the database, or migrate it to the newest schema.

    Safe to run again: an existing database keeps its data. Example: newsletter init
    """
    root = app.settings.root
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_NAME
    if not config.exists():
        with atomic_write(config) as fh:
            fh.write(default_config_text())
        click.echo(f"Skapade {config}")
        del app.settings
    settings = app.settings = ensure_secret_key(app.settings)
    before, after = db.migrate(app.engine)
    with db.transaction(db.session_factory(app.engine)) as session:
        db.check_secret_key(session, settings.secret_key)
        added = load_municipalities(session)
    if before == after:
        click.echo(f"Databasen är aktuell (schema {after}).")
    else:
        click.echo(f"Databasen uppgraderad från {before or 'tom'} till schema {after}.")
    if added:
        click.echo(f"Lade in {added} kommuner.")


def register(main: click.Group) -> None:
    main.add_command(init)
