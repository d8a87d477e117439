"""Backups of the database: `newsletter backup FILE`.

SQLite: SQLite's online backup API copies the whole database in one step, which in WAL mode
reads one snapshot while senders and the web pages go on writing (they are not blocked; they
only keep the WAL from being checkpointed past the snapshot until the copy ends). The copy is
written to a temp file (mode 0600: it holds personal data) beside FILE, switched to a rollback
journal so that it is one self-contained file, checked (`PRAGMA quick_check`), flushed to disk
and only then given its name: FILE is never half-written, and an existing FILE is replaced only
with `force`. PostgreSQL: `pg_dump --format=custom` writes the same way, if pg_dump is installed;
without it the error says what to install and run.

What a backup cannot hold: the secret key (NEWSLETTER_SECRET_KEY or .secret_key), without
which a restored database refuses to open, and whatever happened after the backup. Restored,
a mailing resumes from the rows the backup records as sent: recipients who got their message
after the backup was taken get it again (see docs/DEPLOY.md, "Restore").
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError, NewsletterError
from .i18n import _
from .settings import Settings

MODE = 0o600


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    method: str  # "sqlite" or "pg_dump"


def backup(settings: Settings, target: Path, *, force: bool = False) -> Backup:
    """Write a consistent copy of the database to TARGET; refuse an existing TARGET unless
    FORCE. NewsletterError (exit status 1) when it cannot."""
    target = target.expanduser().absolute()
    if target.exists() and not force:
        raise NewsletterError(_("{file} exists: give --force to replace it").format(file=target))
    if target.is_dir():
        raise NewsletterError(_("{file} is a folder: name the backup file").format(file=target))
    if not target.parent.is_dir():
        raise NewsletterError(_("{folder}: no such folder").format(folder=target.parent))
    try:
        url = make_url(settings.db_url)
    except ArgumentError as exc:
        raise ConfigError(_("database url: {reason}").format(reason=exc)) from None
    if url.get_backend_name() == "sqlite":
        return _sqlite(Path(url.database or ""), target, force)
    if url.get_backend_name() == "postgresql":
        return _pg_dump(url, target, force)
    raise NewsletterError(_("backup knows SQLite and PostgreSQL; for {backend} use its own "
                            "tools").format(backend=url.get_backend_name()))


def _temp_beside(target: Path) -> Path:
    """An empty new file next to TARGET, mode 0600 from the start (no moment of wider access)."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
    return tmp


def _publish(tmp: Path, target: Path, force: bool) -> None:
    """Give TMP (complete, flushed) the name TARGET, atomically."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    if force:
        os.replace(tmp, target)
    else:
        try:  # a hard link fails if TARGET appeared meanwhile: never overwrite by accident
            os.link(tmp, target)
        except FileExistsError:
            raise NewsletterError(_("{file} exists: give --force to replace it").format(
                file=target)) from None
        except OSError:  # a file system without hard links
            if target.exists():
                raise NewsletterError(_("{file} exists: give --force to replace it").format(
                    file=target)) from None
            os.replace(tmp, target)
        tmp.unlink(missing_ok=True)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _sqlite(source: Path, target: Path, force: bool) -> Backup:
    if not source.is_file():
        raise NewsletterError(_("no database at {path}: nothing to back up").format(path=source))
    if target.resolve() == source.resolve():
        raise NewsletterError(_("{file} is the database itself").format(file=target))
    tmp = _temp_beside(target)
    try:
        src = sqlite3.connect(source, timeout=30)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if verdict != "ok":
            raise NewsletterError(_("the copy of {path} fails SQLite's integrity check: {why}")
                                  .format(path=source, why=verdict))
        _publish(tmp, target, force)
    except sqlite3.Error as exc:
        raise NewsletterError(_("backup of {path}: {reason}").format(path=source, reason=exc)
                              ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size, "sqlite")


def _pg_dump(url, target: Path, force: bool) -> Backup:
    program = shutil.which("pg_dump")
    if program is None:
        raise NewsletterError(_(
            "PostgreSQL is backed up with pg_dump, which is not installed: apt install "
            "postgresql-client, then run this again (or pg_dump --format=custom --file FILE "
            "DBNAME yourself; docs/DEPLOY.md)"))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # not on the command line, where ps shows it
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    tmp = _temp_beside(target)
    try:
        done = subprocess.run([program, "--format=custom", "--no-owner", "--file", str(tmp),
                               "--dbname", uri], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
            raise NewsletterError(_("pg_dump failed: {reason}").format(reason=reason))
        _publish(tmp, target, force)
    finally:
        tmp.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size, "pg_dump")
