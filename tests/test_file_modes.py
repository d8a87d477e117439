"""Files that hold personal data are private: created 0600 (never wider than 0640, whatever
the umask), as the secret key and exports are; `newsletter init` tightens an old database."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from newsletter import db
from newsletter.models import Person

ADDRESS = "anna.andersson@example.se"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a careless site (0000: files made 0666 unless we say otherwise)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path, open_umask):
    url = f"sqlite:///{tmp_path / 'site' / 'subscribers.db'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:  # a write, with a second connection open: -wal and -shm stay
        conn.execute(text("CREATE TABLE t (x)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        conn.execute(text("SELECT * FROM t")).all()
        files = sorted((tmp_path / "site").iterdir())
        assert [f.name for f in files] == ["subscribers.db", "subscribers.db-shm",
                                           "subscribers.db-wal"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    engine.dispose()


def test_the_site_s_umask_may_be_stricter(tmp_path):
    old = os.umask(0o077)
    try:
        engine = db.make_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x)"))
        engine.dispose()
    finally:
        os.umask(old)
    assert mode(tmp_path / "subscribers.db") == 0o600


@pytest.mark.sqlite_only
def test_init_makes_an_existing_database_private_and_says_so(site):
    database = site.root / "subscribers.db"
    wal = site.root / "subscribers.db-wal"
    running = sqlite3.connect(database)  # a process with the database open keeps its -wal
    running.execute("UPDATE site_meta SET value = value")
    running.commit()
    database.chmod(0o644)
    wal.chmod(0o666)
    try:
        out = site.cli("init").stdout
    finally:
        running.close()
    assert f"{database} kunde läsas av andra (läge 644)" in out
    assert f"{wal} kunde läsas av andra (läge 666)" in out
    assert mode(database) == 0o600 and mode(wal) == 0o600
    assert "kunde läsas av andra" not in site.cli("init").stdout  # only when there was cause


@pytest.mark.sqlite_only
def test_init_leaves_a_group_readable_database_alone(site):
    database = site.root / "subscribers.db"
    database.chmod(0o640)  # what an operator may choose for a backup group: not wider
    assert "kunde läsas av andra" not in site.cli("init").stdout
    assert mode(database) == 0o640


def test_build_preview_export_and_maildir_are_0600(site, tmp_path, open_umask):
    site.cli("contacts", "add", ADDRESS, "--name", "Anna Andersson", "--municipality", "Åsele",
             "--role", "kommunchef")
    site.cli("municipalities", "members", "Åsele")
    site.cli("issue", "build", "2026-12")
    site.cli("issue", "preview", "2026-12", "--as", ADDRESS)
    site.cli("contacts", "export", str(tmp_path / "kontakter.csv"))
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    build = site.root / "issues" / "2026-12" / "build"
    with site.transaction() as session:
        public_id = session.scalar(select(Person.public_id).where(Person.email == ADDRESS))
    assert f"/u/{public_id}." in (build / "preview.html").read_text(encoding="utf-8")  # hers
    written = [*build.iterdir(), tmp_path / "kontakter.csv",
               *(site.root / "Maildir" / "new").iterdir()]
    assert len(written) == 5 + 1 + 1
    assert {str(p): mode(p) for p in written} == {str(p): 0o600 for p in written}
    for folder in ("", "new", "cur", "tmp"):
        assert mode(site.root / "Maildir" / folder) == 0o700
