"""Creating a mailing: its row, its frozen content and its recipients; test copies, messages to
one address, and the dry run (`plan`). Also the lookups of a mailing (`get_mailing` ...).

Creating a mailing is two steps, which a caller may also take apart (a scheduled mailing freezes
its content when it is scheduled and fixes its recipients when its time comes):

1. `open_mailing`, then `freeze` for each content variant: the mailing's row, and each variant's
   `sources.Content` stored exactly as it will be sent. `freeze` is the one door every variant
   passes before it is stored: the place to rewrite it first (e.g. tracked links).
2. `add_recipients`: one `outbox` row per person (unique per mailing) with a deterministic
   Message-ID and status pending, nobody who already got the same source in another mailing;
   a variant not frozen yet is rendered (once) and frozen on first use. The statements of its
   bulk path are in outbox/bulk.py.

`create_mailing` takes both steps and is idempotent per (kind, source key, segment): asked again,
it returns the mailing it made the first time, which is what makes "the same command again"
resume instead of re-send. Test copies (`create_test_mailings`) are mailings of their own.

Failure mode: everything runs in the caller's transaction, so a source that fails to render or
a segment that does not resolve leaves nothing behind when the caller rolls back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Select,
    func,
    select,
)
from sqlalchemy.orm import Session, selectinload

from .. import segments, tracking
from ..errors import NotFound, SendError
from ..events import may_confirm, suppression_reason
from ..i18n import _
from ..messages import MessageTemplate, message_id
from ..models import (
    Mailing,
    MailingKind,
    MailingStatus,
    MailingVariant,
    OutboxRow,
    OutboxStatus,
    Person,
)
from ..settings import Settings
from ..signing import address_hasher
from ..sources import Content, Source, profile_of, recipient_for
from . import bulk


@dataclass(frozen=True)
class Created:
    mailing: Mailing
    new: bool
    recipients: int
    already_had_it: int = 0  # in the segment, but got this source in another mailing



# --- creating: the mailing, its frozen content, its recipients --------------------------------

def find_mailing(session: Session, kind: str, key: str, segment: str) -> Mailing | None:
    return session.scalar(select(Mailing).where(
        Mailing.kind == kind, Mailing.source == key, Mailing.segment == segment))


def get_mailing(session: Session, mailing_id: int) -> Mailing:
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise NotFound(_("no mailing {id} (newsletter send status lists them)").format(
            id=mailing_id))
    return mailing


def row_by_message_id(session: Session, message_id: str | None) -> OutboxRow | None:
    """The outbox row of the message with MESSAGE_ID (with or without its angle brackets)."""
    if not message_id:
        return None
    bare = message_id.strip().strip("<>")
    return session.scalars(
        select(OutboxRow).where(OutboxRow.message_id.in_([bare, f"<{bare}>"]))).first()


def mailing_ids_like(session: Session, kind: str, prefix: str) -> list[int]:
    """Ids of the KIND mailings whose source key starts with PREFIX, oldest first."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(session.scalars(select(Mailing.id).where(
        Mailing.kind == kind, Mailing.source.like(escaped + "%", escape="\\"))
        .order_by(Mailing.id)))


def unfinished_like(session: Session, kind: str, prefix: str, *,
                    statuses: Iterable[MailingStatus] = (MailingStatus.SENDING,)) -> list[int]:
    """Ids of the KIND mailings whose source key starts with PREFIX, in one of STATUSES (by
    default: sending, i.e. created and not finished: interrupted, or still going), oldest first."""
    ids = mailing_ids_like(session, kind, prefix)
    return list(session.scalars(select(Mailing.id).where(
        Mailing.id.in_(ids), Mailing.status.in_(tuple(statuses))).order_by(Mailing.id)))


def create_mailing(session: Session, settings: Settings, source: Source, segment: str, *,
                   persons: Sequence[Person] | None = None) -> Created:
    """The mailing of SOURCE to SEGMENT: the existing one (to resume, as frozen), or a new one
    with its content frozen and its recipients fixed.

    PERSONS, if given, are the recipients instead of the segment's; SEGMENT is then only the
    mailing's label (e.g. "person:PUBLIC_ID"). Nothing is published (see kinds/issue.py).
    """
    existing = find_mailing(session, source.kind, source.key, segment)
    if existing is not None:
        n = session.scalar(select(func.count()).where(OutboxRow.mailing_id == existing.id))
        return Created(existing, False, n or 0)
    mailing = open_mailing(session, settings, source, segment, label=persons is not None)
    return add_recipients(session, settings, mailing, source, persons=persons)


def open_mailing(session: Session, settings: Settings, source: Source, segment: str, *,
                 label: bool = False, status: MailingStatus = MailingStatus.SENDING,
                 meta: dict[str, Any] | None = None,
                 scheduled_at: datetime | None = None) -> Mailing:
    """A new mailing of SOURCE to SEGMENT (a name or expression, checked now; with LABEL only
    a label), with no content or recipients yet; SCHEDULED_AT for a scheduled one."""
    expr = segment if label else segments.resolve_segment(settings, segment)
    mailing = Mailing(kind=source.kind, source=source.key, segment=segment,
                      subject=source.subject, status=status, scheduled_at=scheduled_at,
                      meta={**(meta or {}), "segment_expr": expr,
                            "transactional": source.transactional})
    session.add(mailing)
    session.flush()
    return mailing


def freeze(session: Session, mailing: Mailing, content: Content) -> Content:
    """Store CONTENT as MAILING's variant CONTENT.key, exactly as it will be sent."""
    session.add(MailingVariant(
        mailing_id=mailing.id, key=content.key, subject=content.subject,
        preheader=content.preheader, html=content.html, text=content.text,
        attachments=[dict(a) for a in content.attachments]))
    return content


def frozen(session: Session, mailing_id: int, key: str) -> Content:
    """MAILING_ID's frozen variant KEY; SendError if there is none."""
    v = session.scalar(select(MailingVariant).where(MailingVariant.mailing_id == mailing_id,
                                                    MailingVariant.key == key))
    if v is None:
        raise SendError(_("mailing {id} has no frozen variant “{key}”").format(id=mailing_id,
                                                                               key=key))
    return Content(subject=v.subject, preheader=v.preheader, html=v.html, text=v.text,
                   attachments=tuple(v.attachments or ()), key=v.key)


def frozen_keys(session: Session, mailing_id: int) -> set[str]:
    """The keys of MAILING_ID's frozen variants."""
    return set(session.scalars(select(MailingVariant.key).where(
        MailingVariant.mailing_id == mailing_id)))


def frozen_contents(session: Session, mailing_id: int) -> list[Content]:
    """Every frozen variant of MAILING_ID (e.g. for sources.fingerprint)."""
    keys = session.scalars(select(MailingVariant.key).where(
        MailingVariant.mailing_id == mailing_id).order_by(MailingVariant.key))
    return [frozen(session, mailing_id, key) for key in keys]


def _had_it(kind: str, key: str) -> Select[tuple[int | None]]:
    """The persons who got (or are getting) KIND/KEY in some mailing."""
    return (select(OutboxRow.person_id).join(Mailing, Mailing.id == OutboxRow.mailing_id)
            .where(Mailing.kind == kind, Mailing.source == key,
                   OutboxRow.status.not_in((OutboxStatus.FAILED, OutboxStatus.SUPPRESSED))))


def add_recipients(session: Session, settings: Settings, mailing: Mailing, source: Source, *,
                   persons: Sequence[Person] | None = None, today: date | None = None
                   ) -> Created:
    """Fix MAILING's recipients: the persons of its segment now (or PERSONS), one pending row
    each, leaving out the suppressed and those who got this source in another mailing; each
    variant they need is frozen on first use. A mailing left with nobody is done at once.

    The segment is the expression it meant when the mailing was opened (what was approved);
    positions count when held on TODAY (default: today).

    In bulk, memory flat however large the segment: BATCH persons at a time are read as plain
    values (`sources.Profile`, areas and roles aggregated in the same query), checked against
    the other mailings and the suppression list with one query each, and written with one
    multi-row INSERT (outbox/bulk.py).
    """
    today = today or date.today()
    earlier = list(session.scalars(select(Mailing.id).where(
        Mailing.kind == mailing.kind, Mailing.source == mailing.source, Mailing.id != mailing.id)))
    done = set(session.scalars(select(MailingVariant.key).where(
        MailingVariant.mailing_id == mailing.id)))
    digest = address_hasher(settings.secret_key)
    total = skipped = 0
    segment = (mailing.meta or {}).get("segment_expr") or mailing.segment
    confirmation = mailing.kind == MailingKind.SIGNUP  # reaches whom events.may_confirm says
    if persons is not None:
        batches = bulk.batches([profile_of(p, today) for p in sorted(persons, key=lambda p: p.id)
                            if p.status == "active"
                            or (confirmation and may_confirm(p.status, None))])
    else:
        batches = bulk.profiles(session, settings, segment, today, source.transactional)
    for profiles in batches:
        had = bulk.had(session, earlier, [p.id for p in profiles])
        fresh = [p for p in profiles if p.id not in had]
        skipped += len(profiles) - len(fresh)
        hashes = [digest(p.email) for p in fresh]
        barred = bulk.suppressed(session, hashes)
        if confirmation and barred:  # one who unsubscribed confirms to come back
            barred = {h for h, p in zip(hashes, fresh, strict=True) if h in barred and not
                      may_confirm(None, suppression_reason(session, settings.secret_key, p.email))}
        rows = []
        for profile, h in zip(fresh, hashes, strict=True):
            if h in barred:
                continue
            key = source.variant_of(profile)
            if key not in done:
                content = source.render(key)
                freeze(session, mailing, content if content.key == key else
                       replace(content, key=key))
                done.add(key)
            rows.append((profile.id, key, message_id(settings, mailing.id, profile.public_id)))
        if rows:
            bulk.insert_rows(session, mailing.id, rows)
            total += len(rows)
    if settings.tracking.clicks and total >= tracking.MIN_RECIPIENTS:
        _track(session, settings, mailing)  # links via /l/TOKEN, no person
    if total == 0:
        mailing.status, mailing.finished_at = MailingStatus.DONE, datetime.now(UTC)
    session.flush()
    return Created(mailing, True, total, skipped)




def create_test_mailings(session: Session, settings: Settings, source: Source,
                         addresses: Iterable[str]) -> list[Mailing]:
    """A one-off mailing of SOURCE to each of ADDRESSES (normalised: contacts.normalise_email;
    contacts or not), subject marked [TEST]: the variant the address's contact would get, or
    the plain one.

    Each is a new mailing: it never touches, and is never mistaken for, the real one. Who may
    get one is testcopies.refusal's to say, before this is called.
    """
    return [_test_mailing(session, settings, source, address) for address in addresses]


def _track(session: Session, settings: Settings, mailing: Mailing) -> None:
    """Count MAILING's links (tracking.py): its frozen variants, rewritten in place once its
    recipients are fixed. Never a test copy or a one-person message: below
    tracking.MIN_RECIPIENTS a count would describe a person."""
    variants = list(session.scalars(select(MailingVariant)
                                    .where(MailingVariant.mailing_id == mailing.id)
                                    .order_by(MailingVariant.id)))
    pages = [(v.html, v.text) for v in variants]
    numbered, rewritten = tracking.track(session, settings, mailing.id, mailing.kind,
                                         mailing.source, pages)
    for variant, (html, text) in zip(variants, rewritten, strict=True):
        variant.html, variant.text = html, text
    mailing.meta = {**(mailing.meta or {}), "tracked_links": numbered}
    session.flush()



def _test_mailing(session: Session, settings: Settings, source: Source, address: str) -> Mailing:
    person = session.scalar(select(Person).where(Person.email == address).options(
        selectinload(Person.areas), selectinload(Person.positions)))
    probe = person or Person(email=address, name="", public_id="test", areas=[], positions=[])
    key = source.variant_of(profile_of(probe))
    content = replace(source.render(key), key=key)
    token = secrets.token_hex(6)
    subject = f"[TEST] {content.subject}"
    mailing = Mailing(kind=source.kind, source=f"test:{source.key}:{token}",
                      segment=f"test:{address}", subject=subject, status=MailingStatus.SENDING,
                      meta={"test_to": address, "test_of": source.key})
    session.add(mailing)
    session.flush()
    freeze(session, mailing, content.with_subject(subject))
    session.add(OutboxRow(
        mailing_id=mailing.id, person_id=person.id if person else None, variant_key=key,
        message_id=message_id(settings, mailing.id, person.public_id if person else token),
        status=OutboxStatus.PENDING, attempts=0))
    session.flush()
    return mailing


@dataclass(frozen=True)
class Plan:
    """What a send would do (--dry-run): nothing is created."""

    subject: str
    recipients: int
    sample: list[tuple[str, str]]  # (name, email)
    message_bytes: int
    existing: Mailing | None
    already_had_it: int = 0  # in the segment, but got this source in another mailing


def plan(session: Session, settings: Settings, source: Source, segment: str) -> Plan:
    """What `create_mailing(session, settings, SOURCE, SEGMENT)` would do, and a message's size."""
    existing = find_mailing(session, source.kind, source.key, segment)
    people = segments.sample(session, settings, segment, 5)
    size = 0
    if people:
        person = people[0]
        template = MessageTemplate(settings, source.render(source.variant_of(profile_of(person))))
        size = len(template.build(recipient_for(settings, person, message_id(
            settings, 0, person.public_id))))
    in_segment = segments.recipients_query(settings, segment).with_only_columns(Person.id)
    already = 0 if existing else session.scalar(select(func.count()).select_from(
        in_segment.where(Person.id.in_(_had_it(source.kind, source.key))).subquery()))
    return Plan(subject=source.subject, recipients=segments.count(session, settings, segment),
                sample=[(p.name, p.email) for p in people], message_bytes=size,
                existing=existing, already_had_it=already or 0)



def create_message_to(session: Session, settings: Settings, source: Source, address: str, *,
                      label: str) -> Mailing:
    """A one-off mailing of SOURCE to ADDRESS, who need not be a contact (a staff member: a
    remiss reminder), labelled LABEL; the same as a test copy without the [TEST] mark."""
    key = source.variant_of(Person(email=address, name="", public_id="staff", areas=[],
                                   positions=[]))
    content = replace(source.render(key), key=key)
    token = secrets.token_hex(6)
    mailing = Mailing(kind=source.kind, source=f"{label}:{source.key}:{token}",
                      segment=f"{label}:{address}", subject=content.subject,
                      status=MailingStatus.SENDING,
                      meta={"test_to": address, "transactional": True})
    session.add(mailing)
    session.flush()
    freeze(session, mailing, content)
    session.add(OutboxRow(mailing_id=mailing.id, person_id=None, variant_key=key,
                          message_id=message_id(settings, mailing.id, token),
                          status=OutboxStatus.PENDING, attempts=0))
    session.flush()
    return mailing

