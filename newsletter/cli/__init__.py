"""The `newsletter` command line: each command parses, calls one core function, prints."""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .. import db, i18n
from ..errors import NewsletterError
from ..i18n import _
from ..settings import Settings, load_settings, site_language


class App:
    """What every command shares: settings, loaded once, and the database, opened on first use."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @cached_property
    def settings(self) -> Settings:
        i18n.activate(site_language(self.root))  # an error in the file is told in its language
        settings = load_settings(self.root)
        i18n.activate(settings.organisation.language)
        return settings

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.db_url)

    @cached_property
    def current_engine(self) -> Engine:
        """The engine, once the database is known to be up to date and made with our key."""
        db.require_current(self.engine, self.settings.secret_key)
        return self.engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database that `newsletter init` has brought up to date."""
        return db.session_factory(self.current_engine)

    @cached_property
    def writers(self) -> sessionmaker[Session]:
        """Sessions for transactions that read, then write: see db.writer."""
        return db.session_factory(db.writer(self.current_engine))

    def transaction(self, *, dry_run: bool = False):
        """A session committed at the end of the block (rolled back with dry_run or on error)."""
        return db.transaction(self.writers, dry_run=dry_run)


pass_app = click.make_pass_decorator(App)


INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


class _Group(click.Group):
    """Turns every NewsletterError into one line on stderr and its exit code: never a traceback.

    Exit codes: 0 success, 1 bad input or data, 2 usage (click's own), 78 configuration,
    130 interrupted (see errors.py). Ctrl-C anywhere in a command, at a prompt too, is one line
    and 130; the transaction it interrupted is rolled back (db.transaction).
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            click.echo(_("Error: {reason}").format(reason=exc), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            self._interrupted()
        except click.Abort as exc:  # click's prompts turn Ctrl-C into Abort
            if not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            self._interrupted()
        except SQLAlchemyError as exc:  # the database itself: unreachable, locked, damaged
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            click.echo(_("Error: the database ({url}): {reason}").format(
                url=self._database(ctx), reason=reason), err=True)
            sys.exit(1)

    @staticmethod
    def _interrupted() -> None:
        click.echo(_("Interrupted."), err=True)
        sys.exit(INTERRUPTED)

    @staticmethod
    def _database(ctx: click.Context) -> str:
        app = ctx.obj
        try:
            return app.engine.url.render_as_string(hide_password=True)
        except NewsletterError:
            return "?"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), envvar="NEWSLETTER_ROOT",
              default=None, help="The newsletter site's folder (default: the current directory).")
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, root: Path | None) -> None:
    """Monthly newsletter and webinar mailings for an association of Swedish municipalities.

    Example: newsletter init && newsletter contacts import kontakter.csv
    """
    ctx.obj = App(root)


def _register() -> None:
    from . import (
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
        segments,
        serve,
        site,
        webinars,
    )

    for module in (site, doctor, backup, bounces, console, contacts, demo, intake, issues,
                   mailings, municipalities, report, retention, segments, serve, webinars):
        module.register(main)


_register()
