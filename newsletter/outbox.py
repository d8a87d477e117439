"""Mailings and their recipients: created once, content frozen, one outbox row per person.

`create_mailing` is idempotent per (kind, source, segment): asked again, it returns the mailing it
made the first time, which is what makes "the same command again" resume instead of re-send.
When it does create one, it renders each distinct content variant once and freezes it in
`mailing_variants`, and fixes the recipients: one `outbox` row per person (unique per mailing)
with a deterministic Message-ID, status `pending`. The sender (sender.py) works through them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from . import segments, tracking
from .contacts import is_suppressed, normalise_email
from .errors import NotFound, SendError
from .messages import message_id
from .models import ArchivedIssue, Mailing, MailingVariant, OutboxRow, Person
from .settings import Settings

BATCH = 500
STALE_AFTER = timedelta(minutes=10)  # a claim older than this is taken to be a dead sender's


class RenderedLike(Protocol):
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Created:
    mailing: Mailing
    new: bool
    recipients: int
    already_had_it: int = 0  # in the segment, but got this source in another mailing


# --- creating ----------------------------------------------------------------------------------

def find_mailing(session: Session, kind: str, source: str, segment: str) -> Mailing | None:
    return session.scalar(select(Mailing).where(
        Mailing.kind == kind, Mailing.source == source, Mailing.segment == segment))


def get_mailing(session: Session, mailing_id: int) -> Mailing:
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise NotFound(f"no mailing {mailing_id} (newsletter send status lists them)")
    return mailing


def _freeze(session: Session, mailing: Mailing, key: str, rendered: RenderedLike) -> None:
    session.add(MailingVariant(
        mailing_id=mailing.id, key=key, subject=rendered.subject, html=rendered.html,
        text=rendered.text, attachments=list(getattr(rendered, "attachments", None) or [])))


def _people(session: Session, settings: Settings, segment_expr: str, *,
            transactional: bool = False, only: Sequence[Person] | None = None
            ) -> Iterator[list[Person]]:
    """The segment's persons (or ONLY these) in batches of BATCH, areas and positions loaded."""
    if only is not None:
        ids = [p.id for p in only if p.status == "active"]
    else:
        ids = session.scalars(segments.recipients_query(
            settings, segment_expr, include_paused=transactional)
            .with_only_columns(Person.id)).all()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        yield list(session.scalars(
            select(Person).where(Person.id.in_(chunk)).order_by(Person.id)
            .options(selectinload(Person.areas), selectinload(Person.positions))))


def _existing(session: Session, mailing: Mailing) -> Created:
    n = session.scalar(select(func.count()).where(OutboxRow.mailing_id == mailing.id))
    return Created(mailing, False, n or 0)


def _had_it(kind: str, source: str) -> Select[tuple[int | None]]:
    """The persons who got (or are getting) KIND/SOURCE in some mailing."""
    return (select(OutboxRow.person_id).join(Mailing, Mailing.id == OutboxRow.mailing_id)
            .where(Mailing.kind == kind, Mailing.source == source,
                   OutboxRow.status.not_in(("failed", "suppressed"))))


def create_mailing(session: Session, settings: Settings, *, kind: str, source: str,
                   segment_expr: str, variant_of: Callable[[Person], str],
                   render: Callable[[str], RenderedLike], meta: dict[str, Any] | None = None,
                   subject: str | None = None, transactional: bool = False,
                   recipients: Sequence[Person] | None = None) -> Mailing:
    """The mailing of SOURCE to SEGMENT_EXPR: the existing one, or a new one with its content
    frozen (RENDER(key) once per distinct VARIANT_OF(person)) and its recipients fixed.

    TRANSACTIONAL mailings answer something the person asked for (a webinar registration): they
    reach persons who paused the newsletter. RECIPIENTS, if given, are the persons instead of
    the segment's; SEGMENT_EXPR is then only the mailing's label (e.g. "person:PUBLIC_ID").
    """
    return create(session, settings, kind=kind, source=source, segment_expr=segment_expr,
                  variant_of=variant_of, render=render, meta=meta, subject=subject,
                  transactional=transactional, recipients=recipients).mailing


def create(session: Session, settings: Settings, *, kind: str, source: str, segment_expr: str,
           variant_of: Callable[[Person], str], render: Callable[[str], RenderedLike],
           meta: dict[str, Any] | None = None, subject: str | None = None,
           transactional: bool = False, recipients: Sequence[Person] | None = None) -> Created:
    """Like create_mailing, but also says whether it was new and how many recipients it has."""
    existing = find_mailing(session, kind, source, segment_expr)
    if existing is not None:
        return _existing(session, existing)
    expr = segment_expr if recipients is not None else segments.resolve_segment(
        settings, segment_expr)
    mailing = Mailing(kind=kind, source=source, segment=segment_expr, subject=subject or "",
                      status="sending", meta={**(meta or {}), "segment_expr": expr,
                                              "transactional": transactional})
    session.add(mailing)
    session.flush()
    # Nobody gets the same source twice, whichever segments it went to.
    already = set(session.scalars(_had_it(kind, source).where(Mailing.id != mailing.id)))
    frozen: set[str] = set()
    total = skipped = 0
    for people in _people(session, settings, segment_expr, transactional=transactional,
                          only=recipients):
        rows = []
        for person in people:
            if person.id in already:
                skipped += 1
                continue
            if is_suppressed(session, settings.secret_key, person.email):
                continue
            key = variant_of(person)
            if key not in frozen:
                rendered = render(key)
                _freeze(session, mailing, key, rendered)
                if not mailing.subject:
                    mailing.subject = rendered.subject
                frozen.add(key)
            rows.append({"mailing_id": mailing.id, "person_id": person.id, "variant_key": key,
                         "message_id": message_id(settings, mailing.id, person.public_id),
                         "status": "pending", "attempts": 0})
        if rows:
            session.execute(insert(OutboxRow), rows)
            total += len(rows)
        for person in people:  # keep memory flat however large the segment
            session.expunge(person)
    if settings.tracking.clicks and total >= tracking.MIN_RECIPIENTS:
        tracking.track_mailing(session, settings, mailing)  # links via /l/TOKEN, no person
    if not mailing.subject:
        mailing.subject = subject or source
    if total == 0:
        mailing.status, mailing.finished_at = "done", datetime.now(UTC)
    session.flush()
    return Created(mailing, True, total, skipped)


def person_variant(renderer: Any) -> Callable[[Person], str]:
    """variant_of for an IssueRenderer: the person's chosen areas (none = all) and the roles
    they hold today (an ended position unlocks nothing)."""
    def variant_of(person: Person) -> str:
        areas = frozenset(a.area for a in person.areas) or None
        return renderer.variant_key(areas, person.roles())
    return variant_of


@dataclass(frozen=True)
class Source:
    """What a mailing sends: its kind and source key, and how to render and pick variants."""

    kind: str
    key: str
    subject: str
    variant_of: Callable[[Person], str]
    render: Callable[[str], RenderedLike]
    web: Any = None  # an issue's public web version, for the archive


def issue_source(session: Session, settings: Settings, month: str) -> Source:
    """Issue MONTH as a mailing source (the files are read and checked now)."""
    from .content import load_issue
    from .render import IssueRenderer
    from .webinars import upcoming

    issue = load_issue(settings, month)
    renderer = IssueRenderer(settings, issue, upcoming(session, settings))
    return Source("issue", month, issue.subject, person_variant(renderer), renderer.render,
                  web=renderer.web_version)


def targeted_source(settings: Settings, subject: str, body_markdown: str) -> Source:
    """A targeted mailing: the same subject and body are the same mailing (a content hash)."""
    from .render import render_message

    digest = hashlib.sha256(f"{subject}\0{body_markdown}".encode()).hexdigest()
    rendered: list[Any] = []

    def render(_key: str) -> Any:
        if not rendered:
            rendered.append(render_message(settings, subject=subject,
                                           body_markdown=body_markdown))
        return rendered[0]

    return Source("targeted", f"sha256:{digest[:32]}", subject, lambda _p: "message", render)


def create_from(session: Session, settings: Settings, make_source: Callable[[], Source],
                segment: str, *, kind: str, key: str) -> Created:
    """The mailing of KIND/KEY to SEGMENT. Only a new one calls MAKE_SOURCE (reads the files):
    an existing one resumes with its frozen content even if the files changed or are gone."""
    existing = find_mailing(session, kind, key, segment)
    if existing is not None:
        return _existing(session, existing)
    src = make_source()
    created = create(session, settings, kind=src.kind, source=src.key, segment_expr=segment,
                     variant_of=src.variant_of, render=src.render, subject=src.subject)
    if src.web is not None:
        archive_issue(session, src.key, src.web(),
                      area_names={a.slug: a.name for a in settings.areas})
    return created


def archive_issue(session: Session, month: str, web: Any, *,
                  area_names: dict[str, str]) -> None:
    """Publish the web version of MONTH in the archive (the first mailing of a month wins)."""
    if session.scalar(select(ArchivedIssue.id).where(ArchivedIssue.month == month)) is None:
        manifest = {**dict(getattr(web, "manifest", {}) or {}), "area_names": area_names}
        session.add(ArchivedIssue(month=month, subject=web.subject, preheader=web.preheader,
                                  html=web.html, text=web.text, manifest=manifest))


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
    from .messages import Content, MessageTemplate, recipient_for

    existing = find_mailing(session, source.kind, source.key, segment)
    people = segments.sample(session, settings, segment, 5)
    size = 0
    if people:
        person = people[0]
        rendered = source.render(source.variant_of(person))
        template = MessageTemplate(settings, Content(
            subject=rendered.subject, html=rendered.html, text=rendered.text,
            attachments=tuple(getattr(rendered, "attachments", None) or ())))
        size = len(template.build(recipient_for(settings, person, message_id(
            settings, 0, person.public_id))))
    in_segment = segments.recipients_query(settings, segment).with_only_columns(Person.id)
    already = 0 if existing else session.scalar(select(func.count()).select_from(
        in_segment.where(Person.id.in_(_had_it(source.kind, source.key))).subquery()))
    return Plan(subject=source.subject, recipients=segments.count(session, settings, segment),
                sample=[(p.name, p.email) for p in people], message_bytes=size,
                existing=existing, already_had_it=already or 0)


def create_test(session: Session, settings: Settings, source: Source, email: str) -> Mailing:
    """A test mailing of SOURCE to EMAIL (see create_test_mailing)."""
    return create_test_mailing(session, settings, kind=source.kind, source=source.key,
                               email=email, variant_of=source.variant_of, render=source.render)


def create_test_mailing(session: Session, settings: Settings, *, kind: str, source: str,
                        email: str, variant_of: Callable[[Person], str],
                        render: Callable[[str], RenderedLike]) -> Mailing:
    """A one-off mailing of SOURCE to EMAIL (in the database or not), subject marked [TEST].

    Each call is a new mailing: it never touches, and is never mistaken for, the real one.
    """
    address = normalise_email(email)
    person = session.scalar(select(Person).where(Person.email == address).options(
        selectinload(Person.areas), selectinload(Person.positions)))
    probe = person or Person(email=address, name="", public_id="test", areas=[], positions=[])
    key = variant_of(probe)
    rendered = render(key)
    token = secrets.token_hex(6)
    mailing = Mailing(kind=kind, source=f"test:{source}:{token}", segment=f"test:{address}",
                      subject=f"[TEST] {rendered.subject}", status="sending",
                      meta={"test_to": address, "test_of": source})
    session.add(mailing)
    session.flush()
    test_view = _TestRendered(f"[TEST] {rendered.subject}", rendered)
    _freeze(session, mailing, key, test_view)
    session.add(OutboxRow(
        mailing_id=mailing.id, person_id=person.id if person else None, variant_key=key,
        message_id=message_id(settings, mailing.id, person.public_id if person else token),
        status="pending", attempts=0))
    session.flush()
    return mailing


@dataclass(frozen=True)
class _TestRendered:
    subject: str
    inner: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- claims ------------------------------------------------------------------------------------

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


# --- status, pause, resume ---------------------------------------------------------------------

@dataclass
class MailingStatus:
    mailing: Mailing
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, reason)
    possibly_sent: int = 0  # 'sending' rows of a dead sender: sent or not, we cannot know
    reclaimed: int = 0  # rows re-sent after a crash: a second copy is possible

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return self.counts["pending"] + self.counts["deferred"] + self.counts["sending"]


RECLAIMED = "reclaimed after a crashed sender: possibly sent twice"


def mailing_status(session: Session, mailing_id: int, *, failures: int = 20) -> MailingStatus:
    mailing = get_mailing(session, mailing_id)
    status = MailingStatus(mailing)
    for state, n in session.execute(select(OutboxRow.status, func.count())
                                    .where(OutboxRow.mailing_id == mailing_id)
                                    .group_by(OutboxRow.status)):
        status.counts[state] = n
    now = datetime.now(UTC)
    for by, at in session.execute(select(OutboxRow.claimed_by, OutboxRow.claimed_at).where(
            OutboxRow.mailing_id == mailing_id, OutboxRow.status == "sending")):
        status.possibly_sent += claim_is_dead(by, at, now)
    status.reclaimed = session.scalar(select(func.count()).where(
        OutboxRow.mailing_id == mailing_id, OutboxRow.status == "sent",
        OutboxRow.last_error == RECLAIMED)) or 0
    rows = session.execute(
        select(Person.email, OutboxRow.person_id, OutboxRow.status, OutboxRow.last_error)
        .outerjoin(Person, Person.id == OutboxRow.person_id)
        .where(OutboxRow.mailing_id == mailing_id, OutboxRow.status.in_(("failed", "deferred")))
        .order_by(OutboxRow.id).limit(failures))
    for email, person_id, state, error in rows:
        who = email or (mailing.meta or {}).get("test_to") or f"(raderad #{person_id})"
        status.failures.append((who, f"{state}: {error or ''}".strip()))
    return status


def list_mailings(session: Session, limit: int = 50) -> list[MailingStatus]:
    ids = session.scalars(select(Mailing.id).order_by(Mailing.id.desc()).limit(limit)).all()
    return [mailing_status(session, i, failures=0) for i in ids]


def pause(session: Session, mailing_id: int, reason: str) -> Mailing:
    mailing = get_mailing(session, mailing_id)
    if mailing.status == "done":
        raise SendError(f"mailing {mailing_id} is already done: nothing to pause")
    mailing.status, mailing.paused_reason = "paused", reason
    return mailing


def unpause(session: Session, mailing_id: int) -> Mailing:
    """Let a paused mailing go on, its deferred rows due at once: someone who resumes a mailing
    has usually mended what held it up and wants it sent now, not at the next backoff step."""
    mailing = get_mailing(session, mailing_id)
    if mailing.status == "paused":
        mailing.status, mailing.paused_reason = "sending", None
    session.execute(update(OutboxRow)
                    .where(OutboxRow.mailing_id == mailing_id, OutboxRow.status == "deferred")
                    .values(next_attempt_at=None)
                    .execution_options(synchronize_session=False))
    return mailing


def finish_if_done(session: Session, mailing_id: int) -> None:
    """Mark the mailing done when no row is left to send (one statement: safe under concurrency)."""
    left = select(OutboxRow.id).where(OutboxRow.mailing_id == mailing_id,
                                      OutboxRow.status.in_(("pending", "deferred", "sending")))
    session.execute(update(Mailing).where(Mailing.id == mailing_id, Mailing.status == "sending",
                                          ~left.exists())
                    .values(status="done", finished_at=datetime.now(UTC))
                    .execution_options(synchronize_session=False))


def set_paused(session: Session, mailing_id: int, reason: str) -> None:
    """Pause a sending mailing (one statement, so a sender may call it at any moment)."""
    session.execute(update(Mailing).where(Mailing.id == mailing_id, Mailing.status == "sending")
                    .values(status="paused", paused_reason=reason)
                    .execution_options(synchronize_session=False))
