"""Engine, sessions and migrations. Nothing here is SQLite-only but the pragmas applied to SQLite
and the way writers take the write lock there (BEGIN IMMEDIATE; elsewhere SELECT ... FOR UPDATE)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from . import files
from .errors import ConfigError
from .i18n import _, pgettext, shown
from .models import SiteMeta

BUSY_TIMEOUT_MS = 30_000
_WRITER = "newsletter_writer"  # the execution option db.writer sets
_KEY_FINGERPRINT = "secret_key_fingerprint"  # a site_meta row every initialised database has


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Erasure that really erases: deleted rows are overwritten, not left in free pages.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for URL; SQLite gets WAL, a busy timeout, foreign keys and secure_delete."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            path = sqlite_file(url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                event.listen(engine, "do_connect", _create_private(path))
            event.listen(engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy, not pysqlite, begin transactions (the SQLAlchemy docs' recipe).
            event.listen(engine, "connect", _disable_pysqlite_begin)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _lock_for_writer)
        return engine
    except Exception as exc:  # an unparseable URL or a missing driver
        raise ConfigError(_("database url “{url}”: {reason}").format(url=shown(url), reason=exc)
                          ) from None


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database or :memory:).

    It holds personal data, so it is created mode 0600 (files.create_private); SQLite gives its
    -wal and -shm files the database's mode.
    """
    if not url.startswith("sqlite"):
        return None
    name = make_url(url).database
    return Path(name) if name and name != ":memory:" and not name.startswith("file:") else None


def _create_private(path: Path):
    """A do_connect hook: make the database file private before SQLite creates it with the
    umask's mode. It returns None, so SQLAlchemy then connects as usual."""
    def create(*_args) -> None:
        files.create_private(path)
    return create


def make_private(url: str) -> list[tuple[Path, int]]:
    """Make the SQLite database of URL and its -wal, -shm and -journal files private (0600)
    if they are readable by others; returns each file changed with its old mode."""
    path = sqlite_file(url)
    if path is None:
        return []
    changed = []
    for name in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        old = files.make_private(name)
        if old is not None:
            changed.append((name, old))
    return changed


def _disable_pysqlite_begin(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn) -> None:
    # pysqlite's own transaction handling begins late and breaks SAVEPOINTs; begin ourselves.
    immediate = conn.get_execution_options().get(_WRITER)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_WRITE_LOCK = select(SiteMeta.key).where(SiteMeta.key == _KEY_FINGERPRINT).with_for_update()


def _lock_for_writer(conn) -> None:
    if conn.get_execution_options().get(_WRITER):
        conn.execute(_WRITE_LOCK)


def writer(engine: Engine) -> Engine:
    """ENGINE for transactions that read, then write (a web form, a CLI command).

    They run one at a time, each seeing what the one before committed, as the code that reads
    ("not suppressed yet", "these areas stored") and then writes on that basis assumes.
    On SQLite they begin IMMEDIATE: the write lock is taken (waiting up to the busy timeout) at
    the start. A deferred transaction that reads first fails at once with "database is locked"
    when another connection (the sender, say) commits before its first write. Elsewhere they
    begin by locking one well-known row (SELECT ... FOR UPDATE); without that, two unsubscribe
    clicks at once on PostgreSQL both insert the suppression and the second fails on its unique
    key. Other transactions (readers, the sender's claims) do not wait for writers.
    """
    return engine.execution_options(**{_WRITER: True})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, dry_run: bool = False) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back on any error.

    With dry_run the work is always rolled back: the block sees its own changes, nobody else does.
    """
    with factory() as session:
        session.begin()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        if dry_run:
            session.rollback()
        else:
            session.commit()


def checkpoint(engine: Engine) -> bool:
    """On SQLite, copy the write-ahead log into the database file and truncate the -wal file to
    nothing; elsewhere nothing to do. Returns False if a reader kept it from finishing.

    After an erasure: with secure_delete the erased rows are overwritten in the database file,
    but until a checkpoint the -wal file still holds older copies of their pages (and a
    long-running `serve` keeps it from being checkpointed away on close).
    """
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        busy, _frames, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    return busy == 0


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("newsletter") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (revision before, revision after).
    The query planner's statistics are refreshed too (an upgrade may add indexes)."""
    cfg = _alembic_config(engine)
    before = current_revision(engine)
    command.upgrade(cfg, "head")
    with engine.begin() as conn:
        refresh_statistics(conn)
    return before, current_revision(engine) or ""


ANALYSIS_LIMIT = 1000  # rows of each index SQLite's ANALYZE samples: milliseconds for a million


def refresh_statistics(connection: Connection) -> None:
    """Tell SQLite's query planner how big the tables and how selective the indexes are now
    (ANALYZE, sampled): after a bulk change such as an import, and daily from the worker.

    Without statistics SQLite reads persons through the index on `status` even when every
    person is active, a random read per row: a segment count on a million contacts took 1.0 s
    instead of 0.7. PostgreSQL's autovacuum analyses by itself: nothing to do there.
    """
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
    connection.exec_driver_sql("ANALYZE")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("newsletter") / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def require_current(engine: Engine, secret_key: bytes) -> None:
    """Refuse to work on a database that `newsletter init` has not created or migrated, or with
    a secret key other than the one it was made with."""
    rev = current_revision(engine)
    if rev != head_revision():
        raise ConfigError(_(
            "database {url} is not initialised or is out of date (revision {revision}): run "
            "`newsletter init`").format(url=engine.url.render_as_string(hide_password=True),
                                        revision=rev or pgettext("revision", "none")))
    with transaction(session_factory(engine)) as session:
        check_secret_key(session, secret_key)


def check_secret_key(session: Session, secret_key: bytes) -> None:
    """Remember the secret key's fingerprint on first use; refuse another key afterwards.

    The suppression list is keyed by an HMAC of each address under this key: with another key
    every unsubscribed, bounced and erased address would silently become mailable again, and
    every link already sent would stop working.
    """
    if not secret_key:
        raise ConfigError(_("no secret key: set NEWSLETTER_SECRET_KEY or run `newsletter init`"))
    stored = session.get(SiteMeta, _KEY_FINGERPRINT)
    if stored is None:
        session.add(SiteMeta(key=_KEY_FINGERPRINT, value=_fingerprint(secret_key)))
    elif not key_matches(session, secret_key):
        raise ConfigError(_(
            "the secret key (NEWSLETTER_SECRET_KEY or .secret_key) is not the one this database "
            "was made with: with another key the suppression list and every link already sent "
            "stop working. Restore the old key"))


def _fingerprint(secret_key: bytes) -> str:
    return hmac.new(secret_key, b"newsletter key check", hashlib.sha256).hexdigest()


def key_matches(session: Session, secret_key: bytes) -> bool | None:
    """Whether the database was made with SECRET_KEY, without writing anything; None when it
    has no fingerprint yet (`newsletter init` has not run on it)."""
    stored = session.get(SiteMeta, _KEY_FINGERPRINT)
    if stored is None:
        return None
    return hmac.compare_digest(stored.value, _fingerprint(secret_key))
