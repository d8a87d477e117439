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
import re
import secrets
import socket
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    Select,
    String,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from . import segments, tracking
from .errors import NotFound, SendError
from .events import may_confirm, suppression_reason
from .i18n import _
from .messages import MessageTemplate, message_id
from .models import (
    CLAIMABLE,
    UNFINISHED,
    Mailing,
    MailingKind,
    MailingStatus,
    MailingVariant,
    OutboxRow,
    OutboxStatus,
    Person,
    PersonArea,
    Position,
    Suppression,
)
from .settings import Settings
from .signing import address_hasher
from .sources import Content, Profile, Source, profile_of, recipient_for

BATCH = 2000  # persons read, and outbox rows written, per statement when fixing recipients
CLAIM_BATCH = 25  # the most rows a sending worker takes at a time
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
        raise SendError(f"mailing {mailing_id} has no frozen variant {key!r}")
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
    multi-row INSERT.
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
        batches = _batches([profile_of(p, today) for p in sorted(persons, key=lambda p: p.id)
                            if p.status == "active"
                            or (confirmation and may_confirm(p.status, None))])
    else:
        batches = _segment(session, settings, segment, today, source.transactional)
    for profiles in batches:
        had = _had(session, earlier, [p.id for p in profiles])
        fresh = [p for p in profiles if p.id not in had]
        skipped += len(profiles) - len(fresh)
        hashes = [digest(p.email) for p in fresh]
        barred = _select_in(session, _SUPPRESSED, hashes)
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
            _insert_rows(session, mailing.id, rows)
            total += len(rows)
    if settings.tracking.clicks and total >= tracking.MIN_RECIPIENTS:
        _track(session, settings, mailing)  # links via /l/TOKEN, no person
    if total == 0:
        mailing.status, mailing.finished_at = MailingStatus.DONE, datetime.now(UTC)
    session.flush()
    return Created(mailing, True, total, skipped)


def _batches(profiles: list[Profile]) -> Iterator[list[Profile]]:
    for start in range(0, len(profiles), BATCH):
        yield profiles[start:start + BATCH]


def _segment(session: Session, settings: Settings, segment: str, today: date,
             transactional: bool) -> Iterator[list[Profile]]:
    """The persons of SEGMENT on TODAY as Profiles, BATCH at a time in id order (keyset
    pagination: one query a batch, nothing held but the batch)."""
    areas = (select(func.aggregate_strings(PersonArea.area, ","))
             .where(PersonArea.person_id == Person.id).scalar_subquery())
    roles = (select(func.aggregate_strings(Position.role, ","))
             .where(Position.person_id == Person.id, Position.held_on(today)).scalar_subquery())
    query = (segments.recipients_query(settings, segment, today=today,
                                       include_paused=transactional)
             .with_only_columns(Person.id, Person.public_id, Person.email, Person.name,
                                areas, roles)
             .where(Person.id > bindparam("after")).limit(BATCH))
    conn, after, nothing = session.connection(), 0, frozenset()
    while rows := conn.execute(query, {"after": after}).all():
        yield [Profile(pid, public_id, email, name or "",
                       frozenset(chosen.split(",")) if chosen else None,
                       frozenset(held.split(",")) if held else nothing)
               for pid, public_id, email, name, chosen, held in rows]
        after = rows[-1][0]


def _had(session: Session, earlier: list[int], ids: list[int]) -> set[int]:
    """Those of IDS who got (or are getting) the same source in one of the EARLIER mailings."""
    if not earlier:
        return set()
    ours = ", ".join(str(int(m)) for m in earlier)
    return _select_in(session, (
        f"SELECT person_id FROM {OutboxRow.__tablename__} WHERE mailing_id IN ({ours}) "
        f"AND status NOT IN ('{OutboxStatus.FAILED.value}', '{OutboxStatus.SUPPRESSED.value}') "
        "AND person_id IN "), ids)


# Driver-level statements of the bulk path: SQLAlchemy compiles each of thousands of bound
# parameters anew for every statement, which costs more than running it.
_SUPPRESSED = f"SELECT email_hash FROM {Suppression.__tablename__} WHERE email_hash IN "
_ROW_COLUMNS = ("person_id", "variant_key", "message_id")  # besides mailing, status, attempts


def _driver_params(session: Session, values: Sequence[Any]) -> tuple[list[str], Any]:
    """Placeholders for VALUES in the driver's parameter style (PEP 249's five), and the
    parameters to pass with them."""
    style, n = session.connection().dialect.paramstyle, len(values)
    if style == "named":
        return [f":p{i}" for i in range(n)], {f"p{i}": v for i, v in enumerate(values)}
    marks = {"qmark": ["?"] * n, "format": ["%s"] * n, "pyformat": ["%s"] * n,
             "numeric": [f":{i + 1}" for i in range(n)],
             "numeric_dollar": [f"${i + 1}" for i in range(n)]}[style]
    return marks, tuple(values)


def _select_in(session: Session, sql: str, values: list[Any]) -> set[Any]:
    """The first column of SQL ending in "... IN " followed by the VALUES, as a set."""
    if not values:
        return set()
    marks, params = _driver_params(session, values)
    return {r[0] for r in session.connection().exec_driver_sql(f"{sql}({', '.join(marks)})",
                                                               params)}


def _insert_rows(session: Session, mailing_id: int, rows: list[tuple[int, str, str]]) -> None:
    """ROWS (person id, variant key, Message-ID) as pending outbox rows of MAILING_ID: one
    multi-row INSERT."""
    marks, params = _driver_params(session, [value for row in rows for value in row])
    constant = f"'{OutboxStatus.PENDING.value}', 0"
    values = ", ".join(f"({int(mailing_id)}, {a}, {b}, {c}, {constant})"
                       for a, b, c in zip(*[iter(marks)] * 3, strict=True))
    session.connection().exec_driver_sql(
        f"INSERT INTO {OutboxRow.__tablename__} (mailing_id, {', '.join(_ROW_COLUMNS)}, "
        f"status, attempts) VALUES {values}", params)


def create_test_mailings(session: Session, settings: Settings, source: Source,
                         addresses: Iterable[str]) -> list[Mailing]:
    """A one-off mailing of SOURCE to each of ADDRESSES (normalised: contacts.normalise_email;
    contacts or not), subject marked [TEST]: the variant the address's contact would get, or
    the plain one.

    Each is a new mailing: it never touches, and is never mistaken for, the real one. Which
    addresses may get one is testcopies.py's rule (testcopies.create checks, then calls this).
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
