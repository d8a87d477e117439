"""The tables. Schema changes go through Alembic migrations in newsletter/migrations."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    func,
    or_,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id() -> str:
    """An opaque random id for personal links: never the email address, never a sequential id."""
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator):
    """A point in time, stored as naive UTC (portable to every database), read back tz-aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}


# --- members and contacts -------------------------------------------------------------------

class Municipality(Base):
    __tablename__ = "municipalities"

    id: Mapped[int] = mapped_column(primary_key=True)
    kommunkod: Mapped[str] = mapped_column(String(4), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    county_code: Mapped[str] = mapped_column(String(2))
    county: Mapped[str] = mapped_column(String(100))
    member: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    member_since: Mapped[date | None] = mapped_column(Date)


# pending: signed up on a public page, address not confirmed yet (signups.py): such a person
# gets the confirmation and nothing else, and is deleted when the link expires.
PERSON_STATUSES = ("active", "pending", "unsubscribed", "bounced", "erased")


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    language: Mapped[str] = mapped_column(String(8), default="sv")
    # GDPR: why we may mail this person, where the data came from and when.
    lawful_basis: Mapped[str] = mapped_column(String(40), default="legitimate_interest")
    basis_source: Mapped[str] = mapped_column(Text, default="")  # e.g. an import file's name
    basis_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Gets the newsletter and other mailings to segments. False: a contact only for the
    # webinars they registered for (open registration without ticking the newsletter): such a
    # person gets what they asked for (transactional mail) and nothing else.
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Preferences: mailings are held back until this date ("pause for a while").
    paused_until: Mapped[date | None] = mapped_column(Date)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    # When the last counted soft-bounced message was sent (bounces.py): a message delivered
    # after it, and before the next one that soft-bounces, starts the count again.
    soft_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                 onupdate=utcnow)

    positions: Mapped[list[Position]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True)
    areas: Mapped[list[PersonArea]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)

    def positions_on(self, day: date | None = None) -> list[Position]:
        """The positions the person holds on DAY (default today); `positions` is the history."""
        day = day or date.today()
        return [p for p in self.positions if p.holds_on(day)]

    def roles(self, day: date | None = None) -> frozenset[str]:
        """The roles the person holds on DAY (default today): what unlocks role-restricted items."""
        return frozenset(p.role for p in self.positions_on(day))


class Position(Base):
    """A role a person holds, in a municipality or (municipality NULL) in the association itself,
    from STARTED_ON until the day before ENDED_ON (NULL: still held).

    The interval is half-open: a hand-over on a date ends the old holder's position and starts
    the new holder's on that same date, and on that date only the new holder holds it. An ended
    position is history: it is kept, and a person may hold the same role again later (a new
    row). At most one row per person, municipality and role is open (ended_on NULL).
    """

    __tablename__ = "positions"
    __table_args__ = (
        # NULL municipalities (the association's own roles) compare equal through the COALESCE.
        Index("uq_positions_open", "person_id", func.coalesce(text("municipality_id"), 0),
              "role", unique=True, sqlite_where=text("ended_on IS NULL"),
              postgresql_where=text("ended_on IS NULL")),
        # "Does this person hold this role on that day, and where?" from the index alone: what
        # every segment with a position condition asks once per person (revision 0009).
        Index("ix_positions_person_held", "person_id", "role", "started_on", "ended_on",
              "municipality_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("municipalities.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(String(40), index=True)
    started_on: Mapped[date] = mapped_column(Date, default=date.today)
    ended_on: Mapped[date | None] = mapped_column(Date)

    person: Mapped[Person] = relationship(back_populates="positions")
    municipality: Mapped[Municipality | None] = relationship()

    def holds_on(self, day: date) -> bool:
        return self.started_on <= day and not self.ended_by(day)

    def ended_by(self, day: date) -> bool:
        """Whether the position is history on DAY (one that starts later is not)."""
        return self.ended_on is not None and self.ended_on <= day

    @classmethod
    def held_on(cls, day: date):
        """The SQL condition "the position is held on DAY" (see holds_on)."""
        return and_(cls.started_on <= day, cls.not_ended_by(day))

    @classmethod
    def not_ended_by(cls, day: date):
        """The SQL condition "held on DAY or starting later": what adding it again would
        duplicate."""
        return or_(cls.ended_on.is_(None), cls.ended_on > day)


class PersonArea(Base):
    """A priority area a person chose. A person with no rows here wants every area."""

    __tablename__ = "person_areas"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                           primary_key=True)
    area: Mapped[str] = mapped_column(String(40), primary_key=True)


class Suppression(Base):
    """Addresses never to be mailed, keyed by a keyed hash (HMAC) of the normalised address."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(20))  # unsubscribed | bounced | erased | complaint
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """Append-only log: imported, updated, unsubscribed, erased, bounced, preferences, sent..."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


# --- mailings and the outbox ----------------------------------------------------------------

class MailingKind(StrEnum):
    """What a mailing is; each kind has its Source (sources.py, kinds/)."""

    ISSUE = "issue"
    TARGETED = "targeted"
    WEBINAR = "webinar"
    SIGNUP = "signup"  # the confirmation of a sign-up on a public page (kinds/signup.py)


class MailingStatus(StrEnum):
    """A mailing's life: scheduled (content frozen, waiting for its time) -> sending <-> paused
    -> done; cancelled before it went out."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class OutboxStatus(StrEnum):
    """One recipient's row: pending -> sending (claimed) -> sent | deferred | failed |
    suppressed; deferred rows are claimed again when due (see sender.py)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


CLAIMABLE = (OutboxStatus.PENDING, OutboxStatus.DEFERRED)
UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.DEFERRED, OutboxStatus.SENDING)


class Mailing(Base):
    """One mailing of one source to one segment, its content frozen when it is created."""

    __tablename__ = "mailings"
    __table_args__ = (UniqueConstraint("kind", "source", "segment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # What was sent: "2026-12" for an issue, a content hash for a targeted mailing,
    # "SLUG:announce" / "SLUG:remind-1d" / ... for webinar messages.
    source: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MailingStatus.SENDING, index=True)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a scheduled mailing is due: a worker starts it then (schedule.py). NULL: sent at once.
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Frozen extras (e.g. an iCalendar attachment, headers, manifest), as JSON.
    meta: Mapped[dict] = mapped_column(JSON, default=dict)

    variants: Mapped[list[MailingVariant]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)


class MailingVariant(Base):
    """The rendered content of one content variant of a mailing (areas chosen, roles)."""

    __tablename__ = "mailing_variants"
    __table_args__ = (UniqueConstraint("mailing_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    # Also inside the HTML; kept so that the frozen variant is the whole sources.Content.
    preheader: Mapped[str] = mapped_column(Text, default="", server_default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # Attachments, e.g. an iCalendar invite: [{"filename", "content_type", "data"}], data as text.
    attachments: Mapped[list] = mapped_column(JSON, default=list)


class OutboxRow(Base):
    """One recipient of one mailing. Unique (mailing, person): nobody gets a mailing twice."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("mailing_id", "person_id"),
        Index("ix_outbox_mailing_status", "mailing_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    # NULL once the person is erased (GDPR): the row then only counts.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"),
                                                  index=True)
    variant_key: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- engagement (click counting without people) ----------------------------------------------

class TrackedLink(Base):
    """One link of a mailing sent with click tracking on: where /l/TOKEN leads, and its counts.

    Only counts. Nothing here names a person or could single one out: the token is the same for
    every recipient, and the counters are bare numbers (see tracking.py and click_filter.py).
    """

    __tablename__ = "tracked_links"
    __table_args__ = (UniqueConstraint("mailing_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in order of first appearance
    url: Mapped[str] = mapped_column(Text)  # the only place the redirect may go
    item: Mapped[str | None] = mapped_column(Text)  # an issue item's id (file name), if any
    title: Mapped[str | None] = mapped_column(Text)  # that item's title when it was sent
    area: Mapped[str | None] = mapped_column(String(40))  # the item's priority area
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # by readers, scanners left out
    unique_clicks: Mapped[int] = mapped_column(Integer, default=0)  # first on this link a day
    readers: Mapped[int] = mapped_column(Integer, default=0)  # first in this mailing a day
    area_readers: Mapped[int] = mapped_column(Integer, default=0)  # first in this area a day
    scanner_hits: Mapped[int] = mapped_column(Integer, default=0)  # filtered out


# --- the archive ----------------------------------------------------------------------------

class ArchivedIssue(Base):
    """The public web version of a sent issue: no personal tokens, the area names as used then."""

    __tablename__ = "archived_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)  # YYYY-MM
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict] = mapped_column(JSON, default=dict)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Withdrawn from the public archive and the feed (`newsletter archive remove`); what was
    # sent is untouched, and a later mailing of the month does not publish it again.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- review and approval --------------------------------------------------------------------

class ReviewState(StrEnum):
    """Where a mail's review stands (review.py). What comes after approval (scheduled, sending,
    sent) is the state of its mailing, not of the review."""

    DRAFT = "draft"  # never submitted, or sent back with a comment
    IN_REVIEW = "in_review"
    APPROVED = "approved"


class Review(Base):
    """The review of one mail, keyed like its mailings by kind and source key ("issue",
    "2026-12"; "targeted", "sha256:..."; "webinar", "SLUG:announce"): who submitted what, who
    approved it, and the fingerprint (sources.fingerprint) of what the approval covers."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=ReviewState.DRAFT)
    subject: Mapped[str] = mapped_column(Text, default="")
    segment: Mapped[str] = mapped_column(Text, default="")  # as given: a name or an expression
    segment_expr: Mapped[str] = mapped_column(Text, default="")  # what it meant then
    # What is needed to render it again without its files (a targeted mailing's subject and
    # Markdown body); {} for an issue or a webinar, which are read from their files and rows.
    source_data: Mapped[dict] = mapped_column(JSON, default=dict)
    submitted_by: Mapped[str | None] = mapped_column(String(320))  # a staff address, or NULL
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_fingerprint: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The approved version as review text (review.review_text), for the diff since approval.
    approved_text: Mapped[str | None] = mapped_column(Text)
    returned_by: Mapped[str | None] = mapped_column(String(320))
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)  # the send-back comment
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- webinars -------------------------------------------------------------------------------

class Webinar(Base):
    __tablename__ = "webinars"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    uid: Mapped[str] = mapped_column(String(200), unique=True)  # the iCalendar UID, stable
    title: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)  # stored in UTC
    duration_minutes: Mapped[int] = mapped_column(Integer)
    join_url: Mapped[str] = mapped_column(Text)
    area: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled | cancelled
    recording_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                 onupdate=utcnow)


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("webinar_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webinar_id: Mapped[int] = mapped_column(ForeignKey("webinars.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                           index=True)
    # registered | waitlisted | cancelled
    status: Mapped[str] = mapped_column(String(16), default="registered")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                 onupdate=utcnow)


class Signup(Base):
    """A sign-up asked for on a public page (`/prenumerera`, or a webinar's page): recorded by
    the request, handled by the background sender, confirmed by the person (signups.py).

    The request records one row whoever asked: the person's id if the address is a contact's,
    else the address itself (EMAIL, until the row is handled: then a pending person holds it).
    A webinar registration of an active contact is handled at once and the row deleted; any
    other row gets a confirmation mail (PUBLIC_ID is in its signed link, MAILED_AT set) and
    waits for the person, at most `[register] confirm_days` from CREATED_AT.
    """

    __tablename__ = "signups"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: a sign-up for the newsletter (/prenumerera).
    webinar_id: Mapped[int | None] = mapped_column(ForeignKey("webinars.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                                  index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    public_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the form said (applied when the person confirms).
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("municipalities.id", ondelete="SET NULL"))
    role: Mapped[str | None] = mapped_column(String(40))
    areas: Mapped[list | None] = mapped_column(JSON)  # None or empty: not chosen
    subscribe: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    page: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The consent texts shown: the page's, and the newsletter box's when it was ticked.
    consent_text_id: Mapped[int | None] = mapped_column(
        ForeignKey("consent_texts.id", ondelete="RESTRICT"))
    newsletter_text_id: Mapped[int | None] = mapped_column(
        ForeignKey("consent_texts.id", ondelete="RESTRICT"))


class ConsentText(Base):
    """A consent text as a page showed it, stored once per version (consent.py)."""

    __tablename__ = "consent_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(80), unique=True)  # PURPOSE-SHA256[:12]
    purpose: Mapped[str] = mapped_column(String(20))  # newsletter | webinar
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """A consent a person gave on a public page: which text (its version), where, when they
    sent the form and when they confirmed the address. Erasure deletes it with the person."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                           index=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("consent_texts.id", ondelete="RESTRICT"))
    purpose: Mapped[str] = mapped_column(String(20))  # newsletter | webinar
    page: Mapped[str] = mapped_column(String(200))  # e.g. /prenumerera, /webinar/SLUG
    webinar_id: Mapped[int | None] = mapped_column(ForeignKey("webinars.id",
                                                              ondelete="SET NULL"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the form was sent
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the link was followed

    text: Mapped[ConsentText] = relationship()


class RoleClaim(Base):
    """A role someone declared on a public page that unlocks role-restricted content or
    role-targeted mailings (`[register] verified_roles`): it waits for staff (role_claims.py).
    Until it is verified the person holds no such position, only `ovrig` there."""

    __tablename__ = "role_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                           index=True)
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("municipalities.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(40))
    page: Mapped[str] = mapped_column(String(200), default="")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(320))  # a staff address, or "cli"
    outcome: Mapped[str | None] = mapped_column(String(16))  # verified | rejected

    person: Mapped[Person] = relationship()
    municipality: Mapped[Municipality | None] = relationship()


# --- the site itself ------------------------------------------------------------------------

class SiteMeta(Base):
    """Facts about the database itself, e.g. the fingerprint of the secret key it was made with."""

    __tablename__ = "site_meta"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- bounces --------------------------------------------------------------------------------

class ProcessedReport(Base):
    """A delivery report already read, so that reading the same mailbox twice changes nothing."""

    __tablename__ = "processed_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    outcome: Mapped[str] = mapped_column(String(20))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the staff console ------------------------------------------------------------------------

STAFF_ROLES = ("redaktor", "granskare", "admin")


class Staff(Base):
    """Someone who may sign in to the staff console. Nobody has a password here."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))  # one of STAFF_ROLES
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInToken(Base):
    """A one-time sign-in link, kept only as the SHA-256 of its secret.

    staff_id is NULL for a link asked for an address that is no staff member's: the row is made
    all the same (the same work for both answers) and can never sign anyone in.
    """

    __tablename__ = "console_sign_in_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"),
                                                 index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in browser; the cookie holds a random id, the table only its SHA-256."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(10))  # link | oidc


class OidcFlow(Base):
    """A sign-in with the identity provider under way: state, nonce and PKCE verifier, bound
    to the browser that started it (the SHA-256 of its pre-sign-in cookie); used once."""

    __tablename__ = "console_oidc_flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    next_path: Mapped[str] = mapped_column(Text, default="/")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RateCounter(Base):
    """Requests counted per key (an address's keyed hash, a client) in a fixed time window."""

    __tablename__ = "console_rate_counters"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
# --- omvärldsbevakning: feeds, their entries, remisser --------------------------------------

class EntryStatus(StrEnum):
    """Where an intake entry is in triage."""

    NEW = "new"
    ACCEPTED = "accepted"  # written as an item into an issue
    REJECTED = "rejected"


class RemissState(StrEnum):
    """What the association does with a remiss."""

    TO_ANSWER = "to_answer"
    ANSWERED = "answered"
    DECLINED = "declined"


class IntakeFeed(Base):
    """What we remember of a configured feed between fetches (by its name in newsletter.toml):
    the validators for a conditional GET and how the last fetch went."""

    __tablename__ = "intake_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)  # the validators belong to this URL
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last attempt
    ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last success
    last_error: Mapped[str | None] = mapped_column(Text)


class IntakeEntry(Base):
    """One document from a feed, once: unique by its GUID and by its canonical URL (hashed)."""

    __tablename__ = "intake_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed: Mapped[str] = mapped_column(String(100), index=True)  # where it was first seen
    kind: Mapped[str] = mapped_column(String(20))  # the item kind it becomes (feed's kind)
    guid_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    url_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")  # plain text, sanitised
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=EntryStatus.NEW, index=True)
    # The suggestion: an area slug (None: okategoriserad), its score and why.
    suggested_area: Mapped[str | None] = mapped_column(String(40), index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[dict] = mapped_column(JSON, default=dict)  # classify.Suggestion.reason
    # Triage: the area chosen, the issue (YYYY-MM) and item file it became.
    area: Mapped[str | None] = mapped_column(String(40))
    issue: Mapped[str | None] = mapped_column(String(7))
    item_path: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Remiss(Base):
    """A remiss entry (from a feed of kind remiss): its answer date and what we do about it."""

    __tablename__ = "remisser"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("intake_entries.id", ondelete="CASCADE"), primary_key=True)
    answer_by: Mapped[date | None] = mapped_column(Date, index=True)
    answer_by_source: Mapped[str | None] = mapped_column(String(10))  # entry | page | hand
    page_attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=RemissState.TO_ANSWER, index=True)
    answer_url: Mapped[str | None] = mapped_column(Text)
    answer_item: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    entry: Mapped[IntakeEntry] = relationship()


class RemissReminder(Base):
    """A reminder handed out for sending: one per remiss, answer date and address, ever."""

    __tablename__ = "remiss_reminders"
    __table_args__ = (UniqueConstraint("entry_id", "answer_by", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("remisser.entry_id", ondelete="CASCADE"), index=True)
    answer_by: Mapped[date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
