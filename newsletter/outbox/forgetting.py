"""What the ledger forgets, and what it tells about a person: erasure (`forget_address`,
`forget_person`), retention (`anonymise_finished`), and a person's mailings (`last_sent_at`,
`delivered_between`, `mailings_of`).

Erasure and retention keep each row's state, so a mailing's counts stay; what goes is whatever
names the person: the address in error texts and test labels, content frozen for them alone, the
Message-ID that holds their public id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Row,
    String,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import (
    Mailing,
    MailingStatus,
    MailingVariant,
    OutboxRow,
    OutboxStatus,
    Person,
)

# --- what the ledger forgets: erasure, retention; what it tells about a person -----------------

def forget_address(session: Session, email: str) -> None:
    """Erasure of EMAIL (contacts.forget): the test copies sent to it (`--test-to`) and the
    one-off messages to it (create_message_to) name it in their label and meta, and their rows'
    error text may quote it (the relay's refusal); they lose it, and the error keeps its reason.
    A pending row is then a row without a person, which the engine marks suppressed."""
    for mailing in session.scalars(select(Mailing).where(
            Mailing.segment.endswith(f":{email}", autoescape=True))):
        if (mailing.meta or {}).get("test_to", email) != email:
            continue
        _forget_test_address(mailing, "erased")
        quoting = re.compile(re.escape(email), re.IGNORECASE)
        for row in session.scalars(select(OutboxRow).where(
                OutboxRow.mailing_id == mailing.id,
                OutboxRow.last_error.icontains(email, autoescape=True))):
            row.last_error = quoting.sub(_("(erased)"), row.last_error)


def forget_person(session: Session, person: Person) -> None:
    """Erasure of PERSON (contacts.forget, before the person is deleted): error texts that quote
    the address go, and so does content frozen for this person alone (a calendar invite names
    its attendee); the rows keep their states and lose their person by the foreign key."""
    session.execute(update(OutboxRow).where(
        OutboxRow.person_id == person.id,
        OutboxRow.last_error.icontains(person.email, autoescape=True)).values(last_error=None))
    session.execute(delete(MailingVariant).where(MailingVariant.key == person.public_id))


def _forget_test_address(mailing: Mailing, why: str) -> None:
    """Take the address out of a test mailing or one-off message: its label "LABEL:ADDRESS"
    becomes "LABEL:WHY:ID" and its meta loses test_to."""
    label = mailing.segment.split(":", 1)[0] if ":" in mailing.segment else "test"
    mailing.segment = f"{label}:{why}:{mailing.id}"
    mailing.meta = {k: v for k, v in (mailing.meta or {}).items() if k != "test_to"}


@dataclass
class Anonymised:
    mailings: int = 0  # finished mailings anonymised
    rows: int = 0  # outbox rows that lost their person
    variants: int = 0  # variants frozen for one person, deleted


def anonymise_finished(session: Session, cutoff: datetime) -> Anonymised:
    """Retention (retention.py): the mailings finished before CUTOFF lose every trace of their
    persons: the rows their person, Message-ID (it holds the public id) and error text, the
    variants frozen for one person, a test mailing its address. Each row keeps its state, so
    the counts stay. Each mailing is done once (marked "retained" in its meta)."""
    done = Anonymised()
    old = [m for m in session.scalars(select(Mailing).where(
        Mailing.status == MailingStatus.DONE, Mailing.finished_at < cutoff))
        if not (m.meta or {}).get("retained")]
    personal = select(Person.public_id)
    for mailing in old:
        done.variants += session.execute(
            delete(MailingVariant).where(MailingVariant.mailing_id == mailing.id,
                                         MailingVariant.key.in_(personal))
            .execution_options(synchronize_session=False)).rowcount or 0
        session.execute(update(OutboxRow).where(OutboxRow.mailing_id == mailing.id,
                                                OutboxRow.variant_key.in_(personal))
                        .values(variant_key="personal")
                        .execution_options(synchronize_session=False))
        done.rows += session.execute(
            update(OutboxRow).where(OutboxRow.mailing_id == mailing.id,
                                    OutboxRow.person_id.is_not(None))
            .values(person_id=None, last_error=None, claimed_by=None,
                    message_id=literal("retained:") + cast(OutboxRow.id, String))
            .execution_options(synchronize_session=False)).rowcount or 0
        if (mailing.meta or {}).get("test_to"):
            _forget_test_address(mailing, "retained")
        mailing.meta = {**(mailing.meta or {}), "retained": True}
        done.mailings += 1
    return done


def last_sent_at(session: Session, person_id: int) -> datetime | None:
    """When the latest message to PERSON_ID was sent (accepted by the relay), or None."""
    return session.scalar(select(func.max(OutboxRow.sent_at)).where(
        OutboxRow.person_id == person_id, OutboxRow.status == OutboxStatus.SENT))


def delivered_between(session: Session, person_id: int, after: datetime, before: datetime, *,
                      unless_error: str = "bounce") -> bool:
    """Whether a message to PERSON_ID was sent after AFTER and before BEFORE and not marked
    since (its last_error starting with UNLESS_ERROR: bounces.py's note of a report)."""
    return session.scalar(select(OutboxRow.id).where(
        OutboxRow.person_id == person_id, OutboxRow.status == OutboxStatus.SENT,
        OutboxRow.sent_at > after, OutboxRow.sent_at < before,
        or_(OutboxRow.last_error.is_(None),
            OutboxRow.last_error.not_like(f"{unless_error}%"))).limit(1)) is not None


def mailings_of(session: Session, person_id: int) -> list[Row]:
    """PERSON_ID's mailings, oldest first: (id, kind, subject, row status, sent_at, created_at)."""
    return list(session.execute(
        select(Mailing.id, Mailing.kind, Mailing.subject, OutboxRow.status, OutboxRow.sent_at,
               Mailing.created_at)
        .join(Mailing, Mailing.id == OutboxRow.mailing_id)
        .where(OutboxRow.person_id == person_id).order_by(Mailing.created_at, Mailing.id)))
