"""The sending state: the statements the send engine (sender.py) moves outbox rows through
`OutboxStatus` with (claim, record, release, reclaim), the mailing's status while it sends
(`set_paused`, `finish_if_done`), and which mailings have work due (`with_work_due`,
`due_mailings`).

sender.py runs each statement in a short transaction of its own and explains the exactly-once
window. A claim is a compare-and-set, so any number of senders may work on one mailing.

Failure mode: a sender that dies leaves rows in 'sending'; `claim_is_dead` tells them (a dead
process on this host, or older than STALE_AFTER) and `reclaim` puts them back marked RECLAIMED:
they may have been sent, and a second copy is possible.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Row,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..models import (
    CLAIMABLE,
    UNFINISHED,
    Mailing,
    MailingStatus,
    OutboxRow,
    OutboxStatus,
    Person,
    Suppression,
)

CLAIM_BATCH = 25  # the most rows a sending worker takes at a time
STALE_AFTER = timedelta(minutes=10)  # a claim older than this is taken to be a dead sender's
RECLAIMED = "reclaimed after a crashed sender: possibly sent twice"
# How the sender's last_error of a failed row that hard-bounced begins (labels.py: "studsade").
HARD_BOUNCE = "hard bounce: "
Executor = Session | Connection  # runs a statement in the caller's transaction


# --- claims and records: the sending state -----------------------------------------------------

def claimant(worker: int | str = 0) -> str:
    """Who claims rows: host, process id and a random token (fits outbox.claimed_by)."""
    host = socket.gethostname()[:24]
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}:{worker}"


def claim_is_dead(claimed_by: str | None, claimed_at: datetime | None,
                  now: datetime | None = None) -> bool:
    """A claim whose sender is gone: a dead process on this host, or older than STALE_AFTER."""
    now = now or datetime.now(UTC)
    if claimed_at is None or now - claimed_at > STALE_AFTER:
        return True
    host, _, rest = (claimed_by or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:24] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Claimed:
    """A row claimed for sending, with its person's address and public id at claim time."""

    id: int
    person_id: int | None
    variant_key: str
    message_id: str
    attempts: int
    last_error: str | None
    email: str | None
    public_id: str | None
    digest: str | None = None  # EMAIL's suppression key, computed once by the engine


# Built once: statements run per message or per claim (building them costs more than running
# them), each on the calling worker's own database connection.
_DUE = or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= bindparam("now"))
# The rows to take: on PostgreSQL (and others with row locks) rows another sender is taking at
# this moment are skipped rather than waited for (FOR UPDATE SKIP LOCKED), so that senders on
# one mailing take disjoint rows at once; SQLite, which has no row locks, renders no FOR UPDATE
# and takes one writer at a time, so there the compare-and-set below alone decides.
_CLAIM = (update(OutboxRow)
          .where(OutboxRow.id.in_(select(OutboxRow.id)
                                  .where(OutboxRow.mailing_id == bindparam("mailing"),
                                         OutboxRow.status.in_(CLAIMABLE), _DUE)
                                  .order_by(OutboxRow.id).limit(bindparam("limit"))
                                  .with_for_update(skip_locked=True)),
                 OutboxRow.status.in_(CLAIMABLE), _DUE,
                 select(Mailing.id).where(Mailing.id == bindparam("mailing"),
                                          Mailing.status == MailingStatus.SENDING).exists())
          .values(status=OutboxStatus.SENDING, claimed_by=bindparam("me"),
                  claimed_at=bindparam("now"))
          .execution_options(synchronize_session=False))
_CLAIMED = (select(OutboxRow.id, OutboxRow.person_id, OutboxRow.variant_key, OutboxRow.message_id,
                   OutboxRow.attempts, OutboxRow.last_error, Person.email, Person.public_id)
            .outerjoin(Person, Person.id == OutboxRow.person_id)
            .where(OutboxRow.mailing_id == bindparam("mailing"),
                   OutboxRow.claimed_by == bindparam("me"),
                   OutboxRow.status == OutboxStatus.SENDING)
            .order_by(OutboxRow.id))
# The re-check right before each message: one query for the person and the suppression list.
_RECIPIENT = (select(Person.name, Person.email, Person.status, Person.paused_until,
                     select(Suppression.id).where(Suppression.email_hash == bindparam("digest"))
                     .exists().label("suppressed"),
                     select(Suppression.reason).where(
                         Suppression.email_hash == bindparam("digest"))
                     .scalar_subquery().label("suppression"))
              .where(Person.id == bindparam("pid")))
_RECORD = (update(OutboxRow)
           .where(OutboxRow.id == bindparam("row_id"), OutboxRow.claimed_by == bindparam("me"))
           .values(status=bindparam("new_status"), last_error=bindparam("error"),
                   next_attempt_at=bindparam("due"), attempts=bindparam("attempts"),
                   sent_at=bindparam("sent_at"), claimed_by=bindparam("claim"))
           .execution_options(synchronize_session=False))
_RELEASE = (update(OutboxRow)
            .where(OutboxRow.id.in_(bindparam("ids", expanding=True)),
                   OutboxRow.claimed_by == bindparam("me"),
                   OutboxRow.status == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None,
                    next_attempt_at=bindparam("due"))
            .execution_options(synchronize_session=False))


def claim(db: Executor, mailing_id: int, me: str, now: datetime, *,
          limit: int = CLAIM_BATCH) -> list[Claimed]:
    """Take up to LIMIT due rows of a sending mailing for claimant ME, and return them.

    Any number of senders, in threads, processes or on other hosts, may claim from one mailing
    at once: a row is taken by one of them only. The UPDATE is a compare-and-set (only rows still
    claimable and due are stamped with ME), and on PostgreSQL the rows are chosen FOR UPDATE
    SKIP LOCKED, so concurrent claims take different rows instead of queueing for the same ones.
    """
    params = {"mailing": mailing_id, "me": me, "now": now, "limit": limit}
    db.execute(_CLAIM, params)
    return [Claimed(*r) for r in db.execute(_CLAIMED, params)]


def mailing_state(db: Executor, mailing_id: int) -> tuple[str, str | None]:
    """(status, paused reason) of MAILING_ID."""
    status, reason = db.execute(select(Mailing.status, Mailing.paused_reason)
                                .where(Mailing.id == mailing_id)).one()
    return status, reason


def recipient_now(db: Executor, person_id: int, digest: str | None) -> Row | None:
    """The person of a row as they are now: name, email, status, paused_until, and whether
    (and why) the address with suppression key DIGEST is suppressed; None if they were
    erased."""
    return db.execute(_RECIPIENT, {"pid": person_id, "digest": digest}).first()


def record(db: Executor, row: Claimed, me: str, status: OutboxStatus, error: str | None, *,
           attempts: int, due: datetime | None = None) -> None:
    """Record ROW's new STATUS (claimed by ME); a row left claimable gives up its claim."""
    db.execute(_RECORD, {
        "row_id": row.id, "me": me, "new_status": status, "error": error, "due": due,
        "attempts": attempts,
        "sent_at": datetime.now(UTC) if status == OutboxStatus.SENT else None,
        "claim": None if status in CLAIMABLE else me})


def release(db: Executor, ids: list[int], me: str, *, due: datetime | None = None) -> None:
    """Put rows claimed by ME back, untouched (never handed to the transport), due at DUE."""
    if ids:
        db.execute(_RELEASE, {"ids": ids, "me": me, "due": due})


def release_all(db: Executor, mailing_id: int, me: str) -> None:
    """Put back every row of MAILING_ID that ME still holds."""
    db.execute(update(OutboxRow)
               .where(OutboxRow.mailing_id == mailing_id, OutboxRow.claimed_by == me,
                      OutboxRow.status == OutboxStatus.SENDING)
               .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None)
               .execution_options(synchronize_session=False))


def next_due(db: Executor, mailing_id: int) -> tuple[int, datetime | None]:
    """(rows left to claim, the earliest next attempt among them; None = due now)."""
    left, earliest = db.execute(select(func.count(), func.min(OutboxRow.next_attempt_at))
                                .where(OutboxRow.mailing_id == mailing_id,
                                       OutboxRow.status.in_(CLAIMABLE))).one()
    return left, earliest


def due_mailings(session: Session, now: datetime, *, also: Iterable[int] = ()) -> list[int]:
    """Of the mailings `with_work_due` at NOW, those that are transactional (a message someone
    asked for, such as a webinar confirmation) or among ALSO; oldest first. What a background
    sender retries by itself (background.py)."""
    due, also = with_work_due(session, now), set(also)
    rows = session.execute(select(Mailing.id, Mailing.meta).where(Mailing.id.in_(due))
                           .order_by(Mailing.id))
    return [mailing_id for mailing_id, meta in rows
            if mailing_id in also or (meta or {}).get("transactional")]


def reclaim(session: Session, mailing_id: int, now: datetime | None = None) -> int:
    """Take back rows left in 'sending' by a dead sender; they may have been sent (sender.py)."""
    now = now or datetime.now(UTC)
    taken = 0
    rows = session.execute(select(OutboxRow.id, OutboxRow.claimed_by, OutboxRow.claimed_at)
                           .where(OutboxRow.mailing_id == mailing_id,
                                  OutboxRow.status == OutboxStatus.SENDING)).all()
    for row_id, by, at in rows:
        if claim_is_dead(by, at, now):
            taken += session.execute(
                update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.claimed_by == by,
                                        OutboxRow.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None,
                        last_error=RECLAIMED)
                .execution_options(synchronize_session=False)).rowcount
    return taken



def set_paused(db: Executor, mailing_id: int, reason: str) -> None:
    """Pause a sending mailing (one statement, so a sender may call it at any moment)."""
    db.execute(update(Mailing).where(Mailing.id == mailing_id,
                                     Mailing.status == MailingStatus.SENDING)
               .values(status=MailingStatus.PAUSED, paused_reason=reason)
               .execution_options(synchronize_session=False))


def finish_if_done(db: Executor, mailing_id: int) -> None:
    """Mark the mailing done when no row is left to send (one statement: safe under concurrency)."""
    left = select(OutboxRow.id).where(OutboxRow.mailing_id == mailing_id,
                                      OutboxRow.status.in_(UNFINISHED))
    db.execute(update(Mailing).where(Mailing.id == mailing_id,
                                     Mailing.status == MailingStatus.SENDING, ~left.exists())
               .values(status=MailingStatus.DONE, finished_at=datetime.now(UTC))
               .execution_options(synchronize_session=False))



def with_work_due(session: Session, now: datetime) -> list[int]:
    """Ids of the sending mailings with a row to send at NOW: pending, deferred and due, or
    left claimed by a dead sender (claim_is_dead); oldest first."""
    due = set(session.scalars(select(OutboxRow.mailing_id).join(
        Mailing, Mailing.id == OutboxRow.mailing_id).where(
        Mailing.status == MailingStatus.SENDING, OutboxRow.status.in_(CLAIMABLE),
        or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now))
        .distinct()))
    claims = session.execute(select(OutboxRow.mailing_id, OutboxRow.claimed_by,
                                    func.min(OutboxRow.claimed_at)).join(
        Mailing, Mailing.id == OutboxRow.mailing_id).where(
        Mailing.status == MailingStatus.SENDING, OutboxRow.status == OutboxStatus.SENDING)
        .group_by(OutboxRow.mailing_id, OutboxRow.claimed_by))
    due |= {mailing_id for mailing_id, by, at in claims if claim_is_dead(by, at, now)}
    return sorted(due)

