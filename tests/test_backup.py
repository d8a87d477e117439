"""`newsletter backup FILE`, and the restore docs/DEPLOY.md describes: a backup taken while a
mailing is being sent restores to a database every command accepts, and the mailing resumes
from it without sending a second copy to anyone the backup records as sent."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url, select

from newsletter.cli import main
from newsletter.models import OutboxRow, Person

from .helpers import PG_URL, TEST_ENV, output_of, seed
from .smtp_server import RecordingSMTPServer


def _sent(site) -> set[str]:
    """The addresses the site's database records as sent."""
    with site.transaction() as session:
        return set(session.scalars(select(Person.email).join(
            OutboxRow, OutboxRow.person_id == Person.id).where(OutboxRow.status == "sent")))


def _restore(site, backup: Path) -> None:
    """Put BACKUP in the place of the site's database, as docs/DEPLOY.md says."""
    if site.db_url:  # PostgreSQL: pg_restore --clean into the same database
        url = make_url(site.db_url).set(drivername="postgresql")
        done = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname",
                               url.render_as_string(hide_password=False), str(backup)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return
    database = Path(site.settings.db_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copy2(backup, database)


def _sender(site, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--root", str(site.root), "send", "issue",
         "2026-12", "--to", "medlemmar", "--yes"],
        env={**os.environ, **TEST_ENV, "NEWSLETTER_TRANSPORT": url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_backup_taken_mid_send_restores_and_the_send_resumes_without_second_copies(
        site, smtp_server, tmp_path):
    addresses = seed(site, 80)
    smtp_server.delay = 0.03  # slow enough that the backup lands in the middle
    proc = _sender(site, smtp_server.url)
    try:
        assert smtp_server.wait_for(15, timeout=60), output_of(proc)
        backup = tmp_path / "backups" / "subscribers.db"
        backup.parent.mkdir()
        result = site.cli("backup", str(backup))
        assert "säkerhetskopierad" in result.stdout
        assert smtp_server.wait_for(len(smtp_server.messages) + 15, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)  # the disaster: the machine goes down mid-send
        proc.wait(10)
    assert backup.stat().st_mode & 0o777 == 0o600
    received = set(smtp_server.copies())

    # Restore as docs/DEPLOY.md says: stop, put the backup in the database's place,
    # `newsletter init`, `newsletter doctor` (the checks that need no network here).
    _restore(site, backup)
    sent_in_backup = _sent(site)
    assert 0 < len(sent_in_backup) < len(addresses)
    assert sent_in_backup <= received  # the backup never claims a message nobody received
    assert len(received) > len(sent_in_backup)  # and the send went on while it was taken
    assert "aktuell" in site.cli("init").stdout
    assert "✓ databas" in site.cli("doctor", "--timeout", "1", ok=False).stdout
    status = site.cli("send", "status", "1").stdout
    assert f"skickade: {len(sent_in_backup)}" in status
    site.cli("contacts", "list")

    with RecordingSMTPServer() as after:
        proc = _sender(site, after.url)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "klart" in out
        resumed = after.copies()
    assert set(resumed) == set(addresses) - sent_in_backup  # nobody the backup says got it
    assert all(n == 1 for n in resumed.values())


def test_backup_is_private_whole_and_never_overwrites_by_accident(site, tmp_path):
    site.cli("contacts", "add", "anna.berg@example.se", "--name", "Anna Berg")
    target = tmp_path / "kopia.db"
    site.cli("backup", str(target))
    if PG_URL:
        assert target.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    else:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("SELECT email FROM persons").fetchall() == [
                ("anna.berg@example.se",)]
    assert target.stat().st_mode & 0o777 == 0o600
    before = target.read_bytes()
    refused = site.cli("backup", str(target), ok=False)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert target.read_bytes() == before
    site.cli("contacts", "add", "bo.ek@example.se", "--name", "Bo Ek")
    site.cli("backup", str(target), "--force")
    assert target.read_bytes() != before and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    missing = site.cli("backup", str(tmp_path / "finns-inte" / "x.db"), ok=False)
    assert missing.exit_code == 1 and "mappen finns inte" in missing.stderr


@pytest.mark.sqlite_only
def test_backup_refuses_the_database_itself(site):
    database = site.settings.db_url.removeprefix("sqlite:///")
    result = site.cli("backup", database, "--force", ok=False)
    assert result.exit_code == 1 and "själva databasen" in result.stderr


def test_postgresql_without_pg_dump_says_what_to_do(tmp_path):
    result = CliRunner().invoke(main, ["--root", str(tmp_path), "backup", str(tmp_path / "x")],
                                env={**TEST_ENV, "PATH": str(tmp_path),
                                     "NEWSLETTER_DB_URL": "postgresql+psycopg://u@127.0.0.1/nl"})
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "pg_dump" in line and "postgresql-client" in line
    assert list(tmp_path.iterdir()) == []
