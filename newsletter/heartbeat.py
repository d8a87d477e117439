"""The worker's heartbeat: each `newsletter worker` process records when it last ran a round.

A beat is a row in `site_meta` keyed `heartbeat:HOST:PID` (the worker's id) whose value is the
time of the beat, in UTC, as `YYYY-MM-DDTHH:MM:SSZ` (a fixed-width text, so that comparing the
strings compares the times). Several workers on one or more hosts each keep their own row;
`last_seen` is the newest of them. `newsletter doctor` and the console read it to tell an
operator whether anything is sending scheduled mailings, retries and reminders.

Failure modes: a worker that hangs stops beating, so its row ages and `is_stale` says so; a
worker killed with SIGKILL leaves its row behind, and a restart beats under a new PID: `beat`
removes rows older than PRUNE_AFTER, so dead workers do not pile up in the table. The clock is
the caller's (`now`), so tests need no sleeping; beats from hosts whose clocks disagree compare
as their clocks say.
"""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import SiteMeta

PREFIX = "heartbeat:"
# A worker not seen for this long is taken to be stopped (a round lasts a few seconds).
STALE_AFTER = timedelta(minutes=2)
# Beats older than this are removed by the next beat (a dead worker's row).
PRUNE_AFTER = timedelta(days=1)
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_KEY_LENGTH = 40  # site_meta.key is VARCHAR(40)


def default_worker_id() -> str:
    """This process's id as a worker: `HOST:PID`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _key(worker_id: str) -> str:
    key = PREFIX + worker_id
    if len(key) <= _KEY_LENGTH:
        return key
    # A long host name: keep its start readable and tell workers apart by a digest of the rest.
    digest = hashlib.sha256(worker_id.encode()).hexdigest()[:8]
    return key[:_KEY_LENGTH - 9] + "~" + digest


def _stamp(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("heartbeat: now must be an aware datetime")
    return now.astimezone(UTC).strftime(_FORMAT)


def _parse(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def beat(session: Session, worker_id: str, now: datetime) -> None:
    """Record that WORKER_ID ran a round at NOW (aware); in the caller's transaction."""
    key = _key(worker_id)
    stamp = _stamp(now)
    session.execute(delete(SiteMeta).where(
        SiteMeta.key.startswith(PREFIX, autoescape=True), SiteMeta.key != key,
        SiteMeta.value < _stamp(now - PRUNE_AFTER)))
    row = session.get(SiteMeta, key)
    if row is None:
        session.add(SiteMeta(key=key, value=stamp))
    else:
        row.value = stamp
    session.flush()


def beats(session: Session) -> dict[str, datetime]:
    """Every worker's last beat: worker id (as stored, possibly shortened) -> time (UTC)."""
    rows = session.execute(select(SiteMeta.key, SiteMeta.value).where(
        SiteMeta.key.startswith(PREFIX, autoescape=True))).all()
    seen = {key[len(PREFIX):]: _parse(value) for key, value in rows}
    return {worker: at for worker, at in seen.items() if at is not None}


def last_seen(session: Session) -> datetime | None:
    """When any worker last beat (UTC), or None if none ever did."""
    return max(beats(session).values(), default=None)


def is_stale(seen: datetime | None, now: datetime) -> bool:
    """True when no worker beat within STALE_AFTER before NOW (or none ever did)."""
    return seen is None or now - seen > STALE_AFTER
