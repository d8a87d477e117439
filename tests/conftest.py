"""Shared fixtures: a real site folder with a real database, the real CLI, a recording SMTP
server and the web app's test client. Shared helpers are in helpers.py.

The database is a SQLite file in the site folder, or, when NEWSLETTER_TEST_PG_URL names a
PostgreSQL server (`postgresql+psycopg://USER@HOST:PORT/postgres`, USER may create databases),
a fresh database on it per test, dropped afterwards. Tests marked `sqlite_only` are about SQLite
itself and are skipped there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from newsletter import db, i18n
from newsletter.background import THREAD_NAME
from newsletter.cli import main
from newsletter.models import Person
from newsletter.settings import Settings, load_settings
from newsletter.web import create_app
from newsletter.web.pages import background_of

from .certs import Certs, make_certs
from .console_support import Console, start_console, stop_console
from .helpers import ANNA, BERTIL, PG_URL, REPO, TEST_ENV
from .postfix import PostfixRelay, in_ci, skip_reason
from .smtp_server import RecordingSMTPServer

# The tests run in the time zone the shipped services run in (deploy/systemd: TZ=Europe/Stockholm,
# the demo's [organisation] timezone): the pages count days in the site's zone and much of the
# core in the process's, and between 23.00 and 24.00 UTC those are two different days.
os.environ["TZ"] = "Europe/Stockholm"
time.tzset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not PG_URL:
        return
    skip = pytest.mark.skip(reason="about SQLite itself; NEWSLETTER_TEST_PG_URL is PostgreSQL")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


@dataclass
class Site:
    """A newsletter site in a temp dir: newsletter.toml, templates and issues from the repo."""

    root: Path
    # NEWSLETTER_DB_URL for the site; None: the site's own SQLite file.
    db_url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**TEST_ENV, **({"NEWSLETTER_DB_URL": self.db_url} if self.db_url else {})}

    @property
    def settings(self) -> Settings:
        return load_settings(self.root, env={**os.environ, **self.env})

    def sessions(self):
        return db.session_factory(db.make_engine(self.settings.db_url))

    def transaction(self, *, dry_run: bool = False):
        return db.transaction(self.sessions(), dry_run=dry_run)

    def writing(self):
        """A transaction that reads, then writes, while other processes (workers, serve) commit:
        through db.writer, as the CLI's own (a plain one fails with "database is locked")."""
        return db.transaction(db.session_factory(db.writer(db.make_engine(self.settings.db_url))))

    def cli(self, *args: str, input: str | None = None, ok: bool = True, env=None) -> Result:
        """Run `newsletter --root ROOT ARGS...`; with ok=True, fail the test on a non-zero exit."""
        runner = CliRunner()
        result = runner.invoke(main, ["--root", str(self.root), *args], input=input,
                               env={**self.env, **(env or {})}, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"newsletter {' '.join(args)} exited {result.exit_code}:\n"
                f"{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def database_url() -> Iterator[str | None]:
    """A fresh, empty PostgreSQL database's URL if NEWSLETTER_TEST_PG_URL is set, else None."""
    if not PG_URL:
        yield None
        return
    server = make_url(PG_URL)
    name = f"test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:  # FORCE: engines the test left open still hold connections
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> Site:
    """An initialised site (config, database, municipalities) in a fresh temp dir."""
    root = tmp_path / "site"
    root.mkdir()
    for name in ("newsletter.toml",):
        shutil.copy(REPO / name, root / name)
    for folder in ("templates", "issues"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder,
                            ignore=shutil.ignore_patterns("build"))
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NEWSLETTER_TRANSPORT", raising=False)
    monkeypatch.delenv("NEWSLETTER_DB_URL", raising=False)
    monkeypatch.delenv("NEWSLETTER_ROOT", raising=False)
    if database_url:  # subprocesses (the sender, `newsletter serve`) inherit it
        monkeypatch.setenv("NEWSLETTER_DB_URL", database_url)
    s = Site(root, database_url)
    s.cli("init")
    return s


@pytest.fixture
def smtp_server() -> Iterator[RecordingSMTPServer]:
    """A started RecordingSMTPServer on 127.0.0.1 (see smtp_server.py), stopped after the test."""
    with RecordingSMTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throw-away CA and server certificates (certs.py), made once per session."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def web(site):
    """(app test client, site) with two active contacts, ANNA and BERTIL (helpers.py); the
    app's background sender is stopped after the test (helpers.sent_in_background waits)."""
    with site.transaction() as session:
        session.add_all([Person(email=ANNA, name="Anna Andersson"),
                         Person(email=BERTIL, name="Bertil Berg")])
    app = create_app(site.settings)
    app.testing = True
    yield app.test_client(), site
    assert background_of(app).stop(), "the background sender did not stop"


@pytest.fixture(autouse=True)
def _no_background_sender_left() -> Iterator[None]:
    """A test that starts an app's background sender stops it (`background_of(app).stop()`):
    a thread left running would go on sweeping a database the next test no longer has."""
    yield
    left = [t for t in threading.enumerate() if t.name == THREAD_NAME]
    assert not left, "a background sender was left running: stop it at the end of the test"
@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: the CLI and the apps activate a site's own."""
    i18n.activate(i18n.DEFAULT_LANGUAGE)
    yield
    i18n.activate(i18n.DEFAULT_LANGUAGE)


def _console(site) -> Iterator[Console]:
    console = start_console(site)
    yield console
    stop_console(console)


@pytest.fixture
def console(site) -> Iterator[Console]:
    """The console app of the test site (console_support.py), with one staff member of each
    role and a clock the test moves; its background sender is stopped after the test."""
    yield from _console(site)


@pytest.fixture
def mailing_console(site, smtp_server, monkeypatch) -> Iterator[Console]:
    """`console`, with the site's transport the recording SMTP server `smtp_server`: what the
    console's background sender sends arrives there."""
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", smtp_server.url)
    yield from _console(site)


@pytest.fixture
def postfix_relay() -> Iterator[PostfixRelay]:
    """A started PostfixRelay (postfix.py) relaying to a RecordingSMTPServer (`relay.sink`),
    both stopped after the test. Skips where Postfix cannot run, except under CI=true, where it
    fails."""
    reason = skip_reason()
    if reason:
        if in_ci():
            pytest.fail(f"CI=true, but the relay test cannot run: {reason}")
        pytest.skip(reason)
    with RecordingSMTPServer() as sink, PostfixRelay(sink.port) as relay:
        relay.sink = sink
        yield relay
