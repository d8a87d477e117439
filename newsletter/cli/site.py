"""`newsletter init`: a real site's newsletter.toml (asked for, or from flags) and its database."""

from __future__ import annotations

import click

from .. import db, siteconfig
from ..errors import ConfigError, NewsletterError
from ..i18n import _
from ..municipalities import load_municipalities
from ..settings import CONFIG_NAME, ensure_secret_key
from .app import App, pass_app
from .prompts import confirm, interactive


def _question(key: str) -> str:
    return {
        "name": _("The organisation's name"),
        "sender": _("Sender address (From:)"),
        "reply_to": _("Reply-to address"),
        "postal_address": _("Postal address (in every message's footer)"),
        "base_url": _("Public address of the web pages (https://...)"),
    }[key]


def _ask(values: dict[str, str | None]) -> dict[str, str | None]:
    """Ask on the terminal for each value not given, until it validates."""
    answers = dict(values)
    for key in siteconfig.ASKED:
        while not answers.get(key):
            default = answers.get("sender") if key == "reply_to" else None
            raw = click.prompt(_question(key), default=default)
            try:
                answers[key] = siteconfig.validate(key, raw)
            except NewsletterError as exc:
                click.echo(_("Error: {reason}").format(reason=exc), err=True)
    return answers


def _create_config(app: App, values: dict[str, str | None]) -> None:
    missing = [flag for key, flag in siteconfig.ASKED.items() if not values.get(key)]
    asked = bool(missing)
    if missing:
        if not interactive():
            raise ConfigError(_(
                "{file} does not exist and there is no terminal to ask on: give {flags} "
                "(nothing is guessed; `newsletter demo` makes a demo site)").format(
                file=CONFIG_NAME, flags=", ".join(missing)))
        click.echo(_("A new site: {file} is written with these answers.").format(
            file=CONFIG_NAME))
        values = _ask(values)
    org = siteconfig.organisation(values)
    if asked:
        for key in siteconfig.ASKED:
            click.echo(f"  {siteconfig.ASKED[key]:<17} {org[key]}")
        confirm(_("Write {file}?").format(file=CONFIG_NAME), default=True, abort=True)
    path = siteconfig.write_config(app.settings.root, org)
    click.echo(_("Created {path} for {name}: sender {sender}, pages at {url}").format(
        path=path, name=org["name"], sender=org["sender"], url=org["base_url"]))
    del app.settings  # read again, now with the new file


@click.command()
@click.option("--org", "name", metavar="NAME", help="The organisation's name.")
@click.option("--sender", metavar="EMAIL", help="The From: address of every mailing.")
@click.option("--reply-to", metavar="EMAIL", help="Where replies go.")
@click.option("--postal-address", metavar="TEXT",
              help="The postal address in every message's footer.")
@click.option("--base-url", metavar="URL",
              help="The public web pages' address, https:// (unsubscribe, archive).")
@pass_app
def init(app: App, **values: str | None) -> None:
    """Create newsletter.toml and the database, or migrate an existing site's database.

    A new site needs the organisation's name, sender, reply-to, postal address and public base
    URL: given as flags, or asked for on a terminal (without a terminal, nothing is guessed:
    exit status 78 naming what is missing). On an existing site init only migrates the
    database; it is safe to run again. `newsletter demo` makes a demo site instead.

    Example: newsletter init --org "Småkommunerna" --sender nyhetsbrev@smakommuner.example
    --reply-to kansliet@smakommuner.example --postal-address "Storgatan 1, 111 22 Stockholm"
    --base-url https://nyhetsbrev.smakommuner.example
    """
    root = app.settings.root
    root.mkdir(parents=True, exist_ok=True)
    if (root / CONFIG_NAME).exists():
        changed = siteconfig.differences(app.settings.organisation, values)
        if changed:
            key = changed[0]
            raise NewsletterError(_(
                '{file} already has organisation.{key} = "{value}"; init does not change an '
                "existing site: edit {file}").format(
                file=CONFIG_NAME, key=key, value=getattr(app.settings.organisation, key)))
    else:
        _create_config(app, values)
    settings = app.settings = ensure_secret_key(app.settings)
    for path, old in db.make_private(settings.db_url):
        click.echo(_("{path} was readable by others (mode {old:o}): made private (0600)")
                   .format(path=path, old=old))
    before, after = db.migrate(app.engine)
    with db.transaction(db.session_factory(app.engine)) as session:
        db.check_secret_key(session, settings.secret_key)
        added = load_municipalities(session)
    if before == after:
        click.echo(_("The database is up to date (schema {revision}).").format(revision=after))
    elif before:
        click.echo(_("The database was upgraded from {old} to schema {revision}.").format(
            old=before, revision=after))
    else:
        click.echo(_("The database was created (schema {revision}).").format(revision=after))
    if added:
        click.echo(_("Loaded {n} municipalities.").format(n=added))


def register(main: click.Group) -> None:
    main.add_command(init)
