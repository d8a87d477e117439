"""Where a mailing stands and what staff do to it: its progress (`mailing_status`, rows per
state, the failures with their reasons, crash leftovers), `pause` and `unpause`, and the life of a
scheduled mailing (`due_scheduled`, `start_scheduled`, `cancel`).

A mailing is scheduled -> sending <-> paused -> done, or cancelled. Starting and cancelling a
scheduled mailing are compare-and-set statements: a worker and a person at the console cannot
both win.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..errors import SendError
from ..i18n import _
from ..models import (
    UNFINISHED,
    Mailing,
    MailingStatus,
    OutboxRow,
    OutboxStatus,
    Person,
)
from .creating import get_mailing
from .sending import HARD_BOUNCE, RECLAIMED, claim_is_dead

# --- progress, pause, resume, finish ----------------------------------------------------------

class Problem(NamedTuple):
    """A row that failed or waits for a retry: the address, the person's name, its state and
    the server's answer."""

    address: str
    name: str
    state: str
    error: str


@dataclass
class MailingProgress:
    """Where a mailing stands: rows per OutboxStatus, failures with reasons, crash leftovers."""

    mailing: Mailing
    counts: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    possibly_sent: int = 0  # 'sending' rows of a dead sender: sent or not, we cannot know
    reclaimed: int = 0  # rows re-sent after a crash: a second copy is possible
    next_attempt_at: datetime | None = None  # of the earliest deferred row
    bounced: int = 0  # of the failed rows, those that hard-bounced (HARD_BOUNCE)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(address, "STATE: error") of each problem."""
        return [(p.address, f"{p.state}: {p.error}".strip()) for p in self.problems]

    @property
    def failed(self) -> int:
        """Failed rows that did not bounce: 'misslyckade' means one thing, 'studsade' another."""
        return self.counts[OutboxStatus.FAILED] - self.bounced

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return sum(self.counts[state] for state in UNFINISHED)


def mailing_status(session: Session, mailing_id: int, *, failures: int = 20) -> MailingProgress:
    mailing = get_mailing(session, mailing_id)
    progress = MailingProgress(mailing)
    for state, n in session.execute(select(OutboxRow.status, func.count())
                                    .where(OutboxRow.mailing_id == mailing_id)
                                    .group_by(OutboxRow.status)):
        progress.counts[state] = n
    now = datetime.now(UTC)
    for by, at in session.execute(select(OutboxRow.claimed_by, OutboxRow.claimed_at).where(
            OutboxRow.mailing_id == mailing_id, OutboxRow.status == OutboxStatus.SENDING)):
        progress.possibly_sent += claim_is_dead(by, at, now)
    if progress.counts[OutboxStatus.FAILED]:
        progress.bounced = session.scalar(select(func.count()).where(
            OutboxRow.mailing_id == mailing_id, OutboxRow.status == OutboxStatus.FAILED,
            OutboxRow.last_error.startswith(HARD_BOUNCE, autoescape=True))) or 0
    progress.reclaimed = session.scalar(select(func.count()).where(
        OutboxRow.mailing_id == mailing_id, OutboxRow.status == OutboxStatus.SENT,
        OutboxRow.last_error == RECLAIMED)) or 0
    progress.next_attempt_at = session.scalar(select(func.min(OutboxRow.next_attempt_at)).where(
        OutboxRow.mailing_id == mailing_id, OutboxRow.status == OutboxStatus.DEFERRED))
    rows = session.execute(
        select(Person.email, Person.name, OutboxRow.person_id, OutboxRow.status,
               OutboxRow.last_error)
        .outerjoin(Person, Person.id == OutboxRow.person_id)
        .where(OutboxRow.mailing_id == mailing_id,
               OutboxRow.status.in_((OutboxStatus.FAILED, OutboxStatus.DEFERRED)))
        .order_by(OutboxRow.id).limit(failures))
    for email, name, person_id, state, error in rows:
        who = email or (mailing.meta or {}).get("test_to") or f"(raderad #{person_id})"
        progress.problems.append(Problem(who, name or "", state, error or ""))
    return progress


def audience(session: Session, mailing: Mailing) -> str:
    """Whom MAILING went to, for people: its segment, or for a message to one person
    ("person:PUBLIC_ID") their name and address, while they are in the register."""
    kind, _sep, public_id = mailing.segment.partition(":")
    if kind == "person" and public_id:
        found = session.execute(select(Person.name, Person.email).where(
            Person.public_id == public_id)).first()
        if found is not None:
            return f"{found.name} <{found.email}>" if found.name else found.email
    return mailing.segment


def list_mailings(session: Session, limit: int = 50) -> list[MailingProgress]:
    ids = session.scalars(select(Mailing.id).order_by(Mailing.id.desc()).limit(limit)).all()
    return [mailing_status(session, i, failures=0) for i in ids]


def pause(session: Session, mailing_id: int, reason: str) -> Mailing:
    mailing = get_mailing(session, mailing_id)
    if mailing.status == MailingStatus.DONE:
        raise SendError(_("mailing {id} is already done: nothing to pause").format(id=mailing_id))
    mailing.status, mailing.paused_reason = MailingStatus.PAUSED, reason
    return mailing


def unpause(session: Session, mailing_id: int) -> Mailing:
    """Let a paused mailing go on, its deferred rows due at once: someone who resumes a mailing
    has usually mended what held it up and wants it sent now, not at the next backoff step."""
    mailing = get_mailing(session, mailing_id)
    if mailing.status == MailingStatus.PAUSED:
        mailing.status, mailing.paused_reason = MailingStatus.SENDING, None
    session.execute(update(OutboxRow)
                    .where(OutboxRow.mailing_id == mailing_id,
                           OutboxRow.status == OutboxStatus.DEFERRED)
                    .values(next_attempt_at=None)
                    .execution_options(synchronize_session=False))
    return mailing



# --- scheduled mailings, work that is due, one-address messages (schedule.py, worker.py) ------

def due_scheduled(session: Session, now: datetime) -> list[int]:
    """Ids of the scheduled mailings whose time has come at NOW, earliest first."""
    return list(session.scalars(select(Mailing.id).where(
        Mailing.status == MailingStatus.SCHEDULED, Mailing.scheduled_at <= now)
        .order_by(Mailing.scheduled_at, Mailing.id)))


def start_scheduled(session: Session, mailing_id: int) -> bool:
    """Take the start of scheduled MAILING_ID (compare-and-set: scheduled -> sending); False
    when another worker took it, or it was cancelled. The caller fixes its recipients in the
    same transaction, so nobody sees it sending without them."""
    taken = session.execute(update(Mailing).where(Mailing.id == mailing_id,
                                                  Mailing.status == MailingStatus.SCHEDULED)
                            .values(status=MailingStatus.SENDING)
                            .execution_options(synchronize_session=False)).rowcount
    session.expire_all()
    return taken == 1


def cancel(session: Session, mailing_id: int, reason: str) -> Mailing:
    """Cancel scheduled MAILING_ID (compare-and-set, so a worker cannot have started it
    meanwhile). Its label becomes "cancelled:ID:SEGMENT", so the same mail can be scheduled
    to that segment again; SendError if it is not scheduled (any more)."""
    mailing = get_mailing(session, mailing_id)
    taken = session.execute(update(Mailing).where(Mailing.id == mailing_id,
                                                  Mailing.status == MailingStatus.SCHEDULED)
                            .values(status=MailingStatus.CANCELLED, paused_reason=reason,
                                    finished_at=datetime.now(UTC),
                                    segment=f"cancelled:{mailing_id}:{mailing.segment}")
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(mailing)
    if taken != 1:
        raise SendError(_("mailing {id} is {status}, not scheduled: it cannot be cancelled "
                          "(pause a mailing under way with `newsletter send pause {id}`)")
                        .format(id=mailing_id, status=mailing.status))
    return mailing

