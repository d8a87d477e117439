"""The site, the settings, the database and its migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tomllib

import click
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from newsletter import db
from newsletter.cli import main
from newsletter.files import atomic_write
from newsletter.models import Base, Mailing, MailingVariant, Municipality, OutboxRow, TrackedLink
from newsletter.settings import default_config_text, load_settings

from .helpers import INIT_FLAGS, REPO


def test_init_is_idempotent_and_keeps_data(site):
    with site.transaction() as session:
        session.scalar(select(Municipality).where(Municipality.kommunkod == "2463")).member = True
    second = site.cli("init")
    assert "aktuell" in second.stdout
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Municipality)) == 290
        assert session.scalar(select(Municipality.member).where(Municipality.kommunkod == "2463"))


# Alembic cannot compare the expression index uq_positions_open (COALESCE over a NULL
# municipality); tests/test_positions.py checks it by what it refuses.
@pytest.mark.filterwarnings("ignore:.*expression-based index uq_positions_open")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_match_the_models(site):
    engine = db.make_engine(site.settings.db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(site):
    engine = db.make_engine(site.settings.db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS


def test_commands_refuse_an_uninitialised_database(tmp_path):
    result = site_cli(tmp_path, "municipalities", "list")
    assert result.exit_code != 0
    assert "newsletter init" in result.stderr
    assert "Traceback" not in result.output


def site_cli(root, *args):
    from click.testing import CliRunner

    return CliRunner().invoke(main, ["--root", str(root), *args])


def test_repository_config_is_the_embedded_default():
    assert (REPO / "newsletter.toml").read_text(encoding="utf-8") == default_config_text()
    data = tomllib.loads(default_config_text())
    assert [a["slug"] for a in data["areas"]] == [
        "medlemmar", "bostad", "kapital", "omvarld", "digitalisering", "infrastruktur",
        "arbetsmarknad"]
    assert data["segments"]["kommunchefer"] == "role:kommunchef and member"


def test_environment_overrides_the_file(tmp_path):
    (tmp_path / "newsletter.toml").write_text('[transport]\nurl = "maildir:X"\n', encoding="utf-8")
    assert load_settings(tmp_path, env={}).transport.url == "maildir:X"
    env = {"NEWSLETTER_TRANSPORT": "smtp://127.0.0.1:2525"}
    assert load_settings(tmp_path, env=env).transport.url == "smtp://127.0.0.1:2525"


def test_broken_config_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "newsletter.toml").write_text("[organisation\n", encoding="utf-8")
    result = site_cli(tmp_path, "init")
    assert result.exit_code == 78  # EX_CONFIG
    assert "newsletter.toml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_secret_key_file_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    assert site_cli(tmp_path, "init", *INIT_FLAGS).exit_code == 0
    key = tmp_path / ".secret_key"
    assert key.stat().st_mode & 0o077 == 0
    assert len(key.read_text().strip()) >= 32


def test_every_command_has_help():
    def walk(group: click.Group, path: list[str]):
        for name, command in group.commands.items():
            assert command.help and command.help.strip(), f"{' '.join(path + [name])} has no help"
            if isinstance(command, click.Group):
                yield from walk(command, path + [name])
            else:
                yield path + [name]

    commands = list(walk(main, []))
    assert ["init"] in commands
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in commands:
        assert "newsletter " + " ".join(path) in readme, f"README does not mention {path}"


@pytest.mark.sqlite_only
def test_secure_delete_is_on(site):
    conn = sqlite3.connect(site.settings.db_url.removeprefix("sqlite:///"))
    # secure_delete is per connection: check ours sets it.
    engine = db.make_engine(site.settings.db_url)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    conn.close()


def test_another_secret_key_is_refused_in_one_line(site):
    site.cli("municipalities", "list")
    other = {"NEWSLETTER_SECRET_KEY": "another-secret-key-of-some-length"}
    result = site.cli("municipalities", "list", ok=False, env=other)
    assert result.exit_code == 78
    assert "är inte den som databasen skapades med" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    site.cli("municipalities", "list")  # the right key still works


def test_init_then_demo_keep_the_key_made_on_the_first_run(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    assert site_cli(tmp_path, "init", *INIT_FLAGS).exit_code == 0
    key = (tmp_path / ".secret_key").read_text()
    assert site_cli(tmp_path, "init").exit_code == 0
    assert (tmp_path / ".secret_key").read_text() == key


def test_a_damaged_database_is_one_line_not_a_traceback(site):
    engine = db.make_engine(site.settings.db_url)
    with engine.begin() as conn:  # mailings and the tables that refer to it
        for model in (OutboxRow, MailingVariant, TrackedLink, Mailing):
            model.__table__.drop(conn)
    engine.dispose()
    result = site.cli("send", "status", ok=False)
    assert result.exit_code == 1
    # SQLite: "no such table: mailings"; PostgreSQL: 'relation "mailings" does not exist'.
    assert "mailings" in result.stderr
    assert engine.url.render_as_string(hide_password=True) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_code_is_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "newsletter",
                             "tests", "bench"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_atomic_write_leaves_the_old_file_whole_on_an_error(tmp_path):
    target = tmp_path / "issue.html"
    target.write_text("gammal", encoding="utf-8")
    try:
        with atomic_write(target) as fh:
            fh.write("halv")
            raise RuntimeError("avbrott")
    except RuntimeError:
        pass
    assert target.read_text(encoding="utf-8") == "gammal"
    assert [p.name for p in tmp_path.iterdir()] == ["issue.html"]
    with atomic_write(target, mode=0o600) as fh:
        fh.write("ny")
    assert target.read_text(encoding="utf-8") == "ny"
    assert target.stat().st_mode & 0o777 == 0o600
