"""Shared fixtures: a real site folder with a real database, and the real CLI.

The database is a SQLite file in the site folder, or, when NEWSLETTER_TEST_PG_URL names a
PostgreSQL server (`postgresql+psycopg://USER@HOST:PORT/postgres`, USER may create databases),
a fresh database on it per test, dropped afterwards. Tests marked `sqlite_only` are about SQLite
itself and are skipped there.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from newsletter import db, i18n
from newsletter.cli import main
from newsletter.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# A fixed test key: tests never read a real secret.
TEST_ENV = {"NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production"}

PG_URL = os.environ.get("NEWSLETTER_TEST_PG_URL", "")

# `newsletter init` flags for a site that is not the demo. The .example top-level domain is
# reserved (RFC 2606), so no real mail goes anywhere; example.se is what marks demo data.
INIT_FLAGS = ("--org", "Föreningen Småkommunerna", "--sender", "nyhetsbrev@smakommuner.example",
              "--reply-to", "kansliet@smakommuner.example",
              "--postal-address", "Storgatan 1, 111 22 Stockholm",
              "--base-url", "https://nyhetsbrev.smakommuner.example")


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


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: the CLI and the apps activate a site's own."""
    i18n.activate(i18n.DEFAULT_LANGUAGE)
    yield
    i18n.activate(i18n.DEFAULT_LANGUAGE)
