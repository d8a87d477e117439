"""What every command shares (`App`: settings and database, opened on first use) and the one
place that turns errors into text on the command line (`Group`)."""

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
from . import click_texts, help_texts

click_texts.translate_click()  # click's own "Usage:", "Error:", "Aborted!" in the site's language

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
# The type of a row id argument (a mailing, an intake entry): a number the database can hold
# (a 32-bit integer on PostgreSQL; a larger one made SQLite raise OverflowError).
ROW_ID = click.IntRange(1, 2**31 - 1)


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

    def checkpoint(self) -> None:
        """After an erasure or anonymisation: empty the -wal file of the old pages (db.checkpoint),
        or say on stderr why it could not be done now."""
        if not db.checkpoint(self.engine):
            click.echo(_("Another process is reading the database: its -wal file could not be "
                         "emptied now (the next writes overwrite it)."), err=True)


pass_app = click.make_pass_decorator(App)


def _root_argument(args: list[str]) -> str | None:
    """The value of --root among the command line's ARGS (None: NEWSLETTER_ROOT or here)."""
    for i, arg in enumerate(args):
        if arg == "--root" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--root="):
            return arg.removeprefix("--root=")
    return None


class Group(click.Group):
    """Turns every NewsletterError into one line on stderr and its exit code: never a traceback.

    Exit codes: 0 success, 1 bad input or data, 2 usage (click's own), 78 configuration,
    130 interrupted (see errors.py). Ctrl-C anywhere in a command, at a prompt too, is one line
    and 130; the transaction it interrupted is rolled back (db.transaction).
    """

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        if parent is None:  # the site's language before parsing: usage errors and help speak it
            i18n.activate(site_language(_root_argument(args)))
            click_texts.refresh(self)
            help_texts.translate(self)  # the commands' and options' own help
        return super().make_context(info_name, args, parent=parent, **extra)

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
