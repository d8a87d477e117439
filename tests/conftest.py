"""Shared fixtures: a real site folder with a real SQLite database, and the real CLI."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter import db
from newsletter.cli import main
from newsletter.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# A fixed test key: tests never read a real secret.
TEST_ENV = {"NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production"}


@dataclass
class Site:
    """A newsletter site in a temp dir: newsletter.toml, templates and issues copied from the repo."""

    root: Path

    @property
    def settings(self) -> Settings:
        return load_settings(self.root, env={**os.environ, **TEST_ENV})

    def sessions(self):
        return db.session_factory(db.make_engine(self.settings.db_url))

    def transaction(self, *, dry_run: bool = False):
        return db.transaction(self.sessions(), dry_run=dry_run)

    def cli(self, *args: str, input: str | None = None, ok: bool = True, env=None) -> Result:
        """Run `newsletter --root ROOT ARGS...`; with ok=True, fail the test on a non-zero exit."""
        runner = CliRunner()
        result = runner.invoke(main, ["--root", str(self.root), *args], input=input,
                               env={**TEST_ENV, **(env or {})}, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"newsletter {' '.join(args)} exited {result.exit_code}:\n"
                f"{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
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
    s = Site(root)
    s.cli("init")
    return s
