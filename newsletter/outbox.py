"""The ledger: mailings, their frozen content and their recipients, and every statement on the
three tables that hold them (`mailings`, `mailing_variants`, `outbox`).

Creating a mailing is two steps, which a caller may also take apart (a scheduled mailing freezes
its content when it is scheduled and fixes its recipients when its time comes):

1. `open_mailing`, then `freeze` for each content variant: the mailing's row, and each variant's
   `sources.Content` stored exactly as it will be sent. `freeze` is the one door every variant
   passes before it is stored: the place to rewrite it first (e.g. tracked links).
2. `add_recipients`: one `outbox` row per person (unique per mailing) with a deterministic
   Message-ID and status pending, nobody who already got the same source in another mailing;
   a variant not frozen yet is rendered (once) and frozen on first use.

`create_mailing` takes both steps and is idempotent per (kind, source key, segment): asked again,
it returns the mailing it made the first time, which is what makes "the same command again"
resume instead of re-send. Test copies (`create_test_mailings`) are mailings of their own.

The send engine (sender.py) moves outbox rows through `OutboxStatus` with the claim, record and
release statements below; it runs each in a short transaction of its own and explains the
exactly-once window. A mailing is scheduled -> sending <-> paused -> done, or cancelled.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    Select,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from . import segments, tracking
from .errors import NotFound, SendError
from .events import is_suppressed
from .messages import MessageTemplate, message_id
from .models import (
    CLAIMABLE,
    UNFINISHED,
    Mailing,
    MailingStatus,
    MailingVariant,
    OutboxRow,
    OutboxStatus,
    Person,
    Suppression,
)
from .settings import Settings
from .sources import Content, Source, recipient_for

BATCH = 500  # persons read per query when fixing the recipients
CLAIM_BATCH = 25  # rows a sending worker takes at a time
STALE_AFTER = timedelta(minutes=10)  # a claim older than this is taken to be a dead sender's
RECLAIMED = "reclaimed after a crashed sender: possibly sent twice"
# How the sender's last_error of a failed row that hard-bounced begins (labels.py: "studsade").
HARD_BOUNCE = "hard bounce: "
Executor = Session | Connection  # runs a statement in the caller's transaction


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
        raise NotFound(f"no mailing {mailing_id} (newsletter send status lists them)")
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
                 meta: dict[str, Any] | None = None) -> Mailing:
    """A new mailing of SOURCE to SEGMENT (a name or expression, checked now; with LABEL only
    a label), with no content or recipients yet."""
    expr = segment if label else segments.resolve_segment(settings, segment)
    mailing = Mailing(kind=source.kind, source=source.key, segment=segment,
                      subject=source.subject, status=status,
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
        raise SendError(f"mailing {mailing_id} has no frozen variant {key!r}")
    return Content(subject=v.subject, preheader=v.preheader, html=v.html, text=v.text,
                   attachments=tuple(v.attachments or ()), key=v.key)


def frozen_contents(session: Session, mailing_id: int) -> list[Content]:
    """Every frozen variant of MAILING_ID (e.g. for sources.fingerprint)."""
    keys = session.scalars(select(MailingVariant.key).where(
        MailingVariant.mailing_id == mailing_id).order_by(MailingVariant.key))
    return [frozen(session, mailing_id, key) for key in keys]


def _people(session: Session, settings: Settings, segment: str, *, transactional: bool,
            only: Sequence[Person] | None) -> Iterator[list[Person]]:
    """The segment's persons (or ONLY these) in batches of BATCH, areas and positions loaded."""
    if only is not None:
        ids = [p.id for p in only if p.status == "active"]
    else:
        ids = session.scalars(segments.recipients_query(
            settings, segment, include_paused=transactional).with_only_columns(Person.id)).all()
    for start in range(0, len(ids), BATCH):
        yield list(session.scalars(
            select(Person).where(Person.id.in_(ids[start:start + BATCH])).order_by(Person.id)
            .options(selectinload(Person.areas), selectinload(Person.positions))))


def _had_it(kind: str, key: str) -> Select[tuple[int | None]]:
    """The persons who got (or are getting) KIND/KEY in some mailing."""
    return (select(OutboxRow.person_id).join(Mailing, Mailing.id == OutboxRow.mailing_id)
            .where(Mailing.kind == kind, Mailing.source == key,
                   OutboxRow.status.not_in((OutboxStatus.FAILED, OutboxStatus.SUPPRESSED))))


def add_recipients(session: Session, settings: Settings, mailing: Mailing, source: Source, *,
                   persons: Sequence[Person] | None = None) -> Created:
    """Fix MAILING's recipients: the persons of its segment now (or PERSONS), one pending row
    each, leaving out the suppressed and those who got this source in another mailing; each
    variant they need is frozen on first use. A mailing left with nobody is done at once."""
    already = set(session.scalars(_had_it(mailing.kind, mailing.source)
                                  .where(Mailing.id != mailing.id)))
    done = set(session.scalars(select(MailingVariant.key).where(
        MailingVariant.mailing_id == mailing.id)))
    total = skipped = 0
    for people in _people(session, settings, mailing.segment, only=persons,
                          transactional=source.transactional):
        rows = []
        for person in people:
            if person.id in already:
                skipped += 1
                continue
            if is_suppressed(session, settings.secret_key, person.email):
                continue
            key = source.variant_of(person)
            if key not in done:
                content = source.render(key)
                freeze(session, mailing, content if content.key == key else
                       replace(content, key=key))
                done.add(key)
            rows.append({"mailing_id": mailing.id, "person_id": person.id, "variant_key": key,
                         "message_id": message_id(settings, mailing.id, person.public_id),
                         "status": OutboxStatus.PENDING, "attempts": 0})
        if rows:
            session.execute(insert(OutboxRow), rows)
            total += len(rows)
        for person in people:  # keep memory flat however large the segment
            session.expunge(person)
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

    Each is a new mailing: it never touches, and is never mistaken for, the real one.
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
    key = source.variant_of(probe)
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
        template = MessageTemplate(settings, source.render(source.variant_of(person)))
        size = len(template.build(recipient_for(settings, person, message_id(
            settings, 0, person.public_id))))
    in_segment = segments.recipients_query(settings, segment).with_only_columns(Person.id)
    already = 0 if existing else session.scalar(select(func.count()).select_from(
        in_segment.where(Person.id.in_(_had_it(source.kind, source.key))).subquery()))
    return Plan(subject=source.subject, recipients=segments.count(session, settings, segment),
                sample=[(p.name, p.email) for p in people], message_bytes=size,
                existing=existing, already_had_it=already or 0)


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
_CLAIM = (update(OutboxRow)
          .where(OutboxRow.id.in_(select(OutboxRow.id)
                                  .where(OutboxRow.mailing_id == bindparam("mailing"),
                                         OutboxRow.status.in_(CLAIMABLE), _DUE)
                                  .order_by(OutboxRow.id).limit(CLAIM_BATCH)),
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
                     .exists().label("suppressed"))
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


def claim(db: Executor, mailing_id: int, me: str, now: datetime) -> list[Claimed]:
    """Take up to CLAIM_BATCH due rows of a sending mailing for claimant ME (compare-and-set:
    a second sender takes other rows), and return them."""
    params = {"mailing": mailing_id, "me": me, "now": now}
    db.execute(_CLAIM, params)
    return [Claimed(*r) for r in db.execute(_CLAIMED, params)]


def mailing_state(db: Executor, mailing_id: int) -> tuple[str, str | None]:
    """(status, paused reason) of MAILING_ID."""
    status, reason = db.execute(select(Mailing.status, Mailing.paused_reason)
                                .where(Mailing.id == mailing_id)).one()
    return status, reason


def recipient_now(db: Executor, person_id: int, digest: str | None) -> Row | None:
    """The person of a row as they are now: name, email, status, paused_until, and whether the
    address with suppression key DIGEST is suppressed; None if they were erased."""
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
    """The sending mailings with a row to send now (pending, deferred and due, or left in
    'sending' by a dead sender) that are transactional (a message someone asked for, such as a
    webinar confirmation) or among ALSO; oldest first. What a background sender retries by
    itself (background.py)."""
    sending = (select(OutboxRow.mailing_id).join(Mailing, Mailing.id == OutboxRow.mailing_id)
               .where(Mailing.status == MailingStatus.SENDING))
    due = set(session.scalars(sending.where(
        OutboxRow.status.in_(CLAIMABLE),
        or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now)).distinct()))
    left = sending.add_columns(OutboxRow.claimed_by, OutboxRow.claimed_at).where(
        OutboxRow.status == OutboxStatus.SENDING)
    due.update(mailing_id for mailing_id, by, at in session.execute(left)
               if claim_is_dead(by, at, now))
    also = set(also)
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
        raise SendError(f"mailing {mailing_id} is already done: nothing to pause")
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


# --- what the ledger forgets: erasure, retention; what it tells about a person -----------------

def forget_address(session: Session, email: str) -> None:
    """Erasure of EMAIL (contacts.forget): the test copies sent to it (`--test-to`) name it in
    their label and meta; they lose it. A pending test row is then a row without a person,
    which the engine marks suppressed."""
    for mailing in session.scalars(select(Mailing).where(Mailing.segment == f"test:{email}")):
        _forget_test_address(mailing, "erased")


def forget_person(session: Session, person: Person) -> None:
    """Erasure of PERSON (contacts.forget, before the person is deleted): error texts that quote
    the address go, and so does content frozen for this person alone (a calendar invite names
    its attendee); the rows keep their states and lose their person by the foreign key."""
    session.execute(update(OutboxRow).where(
        OutboxRow.person_id == person.id,
        OutboxRow.last_error.icontains(person.email, autoescape=True)).values(last_error=None))
    session.execute(delete(MailingVariant).where(MailingVariant.key == person.public_id))


def _forget_test_address(mailing: Mailing, why: str) -> None:
    """Take the address out of a test mailing: its label becomes "test:WHY:ID" and its meta
    loses test_to."""
    mailing.segment = f"test:{why}:{mailing.id}"
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
