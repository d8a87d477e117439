"""Everything held about one person (GDPR art. 15), as data, JSON and readable text.

`person_record` gathers it: the person's own row (address, name, status, language, public id,
lawful basis and its source, whether they get the newsletter, pause, soft bounces), the
suppression entry of the address, every position with its dates (ended ones too: the history),
the roles they declared that wait for staff (or were decided), the chosen priority areas, the
consents they gave (when, where, and the text itself), webinar registrations, the event log and
the mailings they were sent, with dates and subjects. The
staff console's page of a person shows the same record; `contacts export-person` writes it.

The file written holds personal data: it is created 0600 and written whole, then renamed into
place (files.atomic_write), so that nobody reads half of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .consent import consents_of, purpose_label
from .contacts import normalise_email
from .errors import InputError, NotFound
from .events import suppression_reason
from .files import atomic_write
from .i18n import _
from .models import Event, Person, Position, Registration, Webinar
from .outbox import forgetting
from .role_claims import claims_of
from .settings import Settings

FORMATS = ("text", "json")


@dataclass(frozen=True)
class PositionRecord:
    role: str
    role_name: str
    municipality: str | None  # None: the association itself
    kommunkod: str | None
    county: str | None
    started_on: date
    ended_on: date | None  # None: held


@dataclass(frozen=True)
class ConsentRecord:
    purpose: str  # newsletter | webinar
    page: str  # where: /prenumerera, /webinar/SLUG
    given_at: datetime  # the form was sent
    confirmed_at: datetime  # the address was confirmed
    version: str  # the consent text's version id
    text: str  # the text itself, as the page showed it


@dataclass(frozen=True)
class ClaimRecord:
    role: str
    role_name: str
    municipality: str | None
    claimed_at: datetime
    outcome: str | None  # None: waits for staff; verified | rejected
    decided_at: datetime | None


@dataclass(frozen=True)
class RegistrationRecord:
    webinar: str  # the slug
    title: str
    starts_at: datetime
    status: str
    registered_at: datetime


@dataclass(frozen=True)
class MailingRecord:
    mailing_id: int
    kind: str
    subject: str
    status: str  # the person's row: sent, pending, failed, ...
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class PersonRecord:
    email: str
    name: str
    status: str
    language: str
    public_id: str
    created_at: datetime
    updated_at: datetime
    lawful_basis: str
    basis_source: str
    basis_at: datetime
    subscribed: bool  # gets the newsletter (False: a contact only for their webinars)
    paused_until: date | None
    soft_bounces: int
    suppression: str | None  # why the address is on the suppression list, if it is
    areas: list[str]  # chosen priority areas; empty: every area
    positions: list[PositionRecord]  # the history: current and ended, oldest first
    claims: list[ClaimRecord]  # roles declared on a public page, oldest first
    consents: list[ConsentRecord]  # oldest first
    registrations: list[RegistrationRecord]
    mailings: list[MailingRecord]  # oldest first
    events: list[EventRecord]  # oldest first

    def current_positions(self, day: date | None = None) -> list[PositionRecord]:
        day = day or date.today()
        return [p for p in self.positions
                if p.started_on <= day and (p.ended_on is None or p.ended_on > day)]


def person_record(session: Session, settings: Settings, email: str) -> PersonRecord:
    """Everything held about the person with EMAIL; NotFound if there is none."""
    address = normalise_email(email)
    person = session.scalar(select(Person).where(Person.email == address).options(
        selectinload(Person.positions).selectinload(Position.municipality),
        selectinload(Person.areas)))
    if person is None:
        raise NotFound(_("no contact {email}").format(email=address))
    positions = sorted(person.positions, key=lambda p: (p.started_on, p.id))
    registrations = session.execute(
        select(Webinar.slug, Webinar.title, Webinar.starts_at, Registration.status,
               Registration.created_at)
        .join(Webinar, Webinar.id == Registration.webinar_id)
        .where(Registration.person_id == person.id).order_by(Registration.created_at))
    mailings = forgetting.mailings_of(session, person.id)
    events = session.scalars(select(Event).where(Event.person_id == person.id)
                             .order_by(Event.at, Event.id))
    return PersonRecord(
        email=person.email, name=person.name, status=person.status, language=person.language,
        public_id=person.public_id, created_at=person.created_at,
        updated_at=person.updated_at, lawful_basis=person.lawful_basis,
        basis_source=person.basis_source, basis_at=person.basis_at,
        subscribed=person.subscribed,
        paused_until=person.paused_until, soft_bounces=person.soft_bounces or 0,
        suppression=suppression_reason(session, settings.secret_key, person.email),
        areas=sorted(a.area for a in person.areas),
        positions=[PositionRecord(
            role=p.role, role_name=settings.roles.get(p.role, p.role),
            municipality=p.municipality.name if p.municipality else None,
            kommunkod=p.municipality.kommunkod if p.municipality else None,
            county=p.municipality.county if p.municipality else None,
            started_on=p.started_on, ended_on=p.ended_on) for p in positions],
        claims=[ClaimRecord(
            role=c.role, role_name=settings.roles.get(c.role, c.role),
            municipality=c.municipality.name if c.municipality else None,
            claimed_at=c.claimed_at, outcome=c.outcome, decided_at=c.decided_at)
            for c in claims_of(session, person.id)],
        consents=[ConsentRecord(
            purpose=c.purpose, page=c.page, given_at=c.given_at, confirmed_at=c.confirmed_at,
            version=c.text.version, text=c.text.text) for c in consents_of(session, person.id)],
        registrations=[RegistrationRecord(*row) for row in registrations],
        mailings=[MailingRecord(*row) for row in mailings],
        events=[EventRecord(e.at, e.kind, dict(e.detail or {})) for e in events])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def record_json(record: PersonRecord) -> str:
    """RECORD as indented JSON (dates and times in ISO 8601, times in UTC)."""
    return json.dumps({"exported_at": datetime.now(UTC), **asdict(record)}, default=_plain,
                      ensure_ascii=False, indent=2) + "\n"


def _day(value: date | datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d")


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def record_text(record: PersonRecord, settings: Settings) -> str:
    """RECORD as a text a person can read."""
    lines = [_("Everything held about {email}, {day}").format(
                 email=record.email, day=date.today().isoformat()), ""]
    rows = [(_("Address"), record.email), (_("Name"), record.name or "-"),
            (_("Status"), record.status), (_("Language"), record.language),
            (_("Id in personal links"), record.public_id),
            (_("Added"), _time(record.created_at)),
            (_("Last changed"), _time(record.updated_at)),
            (_("Lawful basis"), _("{basis} (source: {source}, {at})").format(
                basis=record.lawful_basis, source=record.basis_source or "-",
                at=_time(record.basis_at))),
            (_("Newsletter"), _("yes") if record.subscribed else
             _("no (a contact only for the webinars registered for)")),
            (_("Suppression list"), record.suppression or _("no")),
            (_("Paused until"), _day(record.paused_until)),
            (_("Soft bounces"), str(record.soft_bounces)),
            (_("Priority areas"), ", ".join(settings.area_name(a) if a in settings.area_slugs
                                            else a for a in record.areas) or _("all"))]
    width = max(len(label) for label, _value in rows) + 2
    lines += [f"{label + ':':<{width}}{value}" for label, value in rows]
    lines += ["", _("Positions:")]
    for p in record.positions:
        place = (f"{p.municipality} ({p.county})" if p.municipality
                 else _("the association"))
        until = p.ended_on.isoformat() if p.ended_on else _("now")
        lines.append(f"  {p.role_name}, {place}: {p.started_on.isoformat()} – {until}")
    if not record.positions:
        lines.append("  -")
    lines += ["", _("Roles waiting for staff or decided:")]
    for c in record.claims:
        place = c.municipality or _("the association")
        state = (_("waits for staff") if c.outcome is None else
                 _("verified {day}") if c.outcome == "verified" else _("rejected {day}"))
        state = state.format(day=_day(c.decided_at))
        lines.append(f"  {c.role_name}, {place}: {_day(c.claimed_at)} ({state})")
    if not record.claims:
        lines.append("  -")
    lines += ["", _("Consents:")]
    for c in record.consents:
        lines.append("  " + _("{purpose} on {page}: sent {given}, confirmed {confirmed} "
                              "(text {version}):").format(
            purpose=purpose_label(c.purpose), page=c.page, given=_time(c.given_at),
            confirmed=_time(c.confirmed_at), version=c.version))
        lines += [f"    {paragraph}" for paragraph in c.text.split("\n\n")]
    if not record.consents:
        lines.append("  -")
    lines += ["", _("Webinar registrations:")]
    lines += [f"  {_time(r.starts_at)}  {r.title} ({r.status}, {_day(r.registered_at)})"
              for r in record.registrations] or ["  -"]
    lines += ["", _("Mailings:")]
    lines += [f"  {_day(m.sent_at or m.created_at)}  {m.subject}  ({m.kind}, {m.status})"
              for m in record.mailings] or ["  -"]
    lines += ["", _("Events:")]
    lines += [f"  {_time(e.at)}  {e.kind}" + (f"  {json.dumps(e.detail, ensure_ascii=False)}"
                                              if e.detail else "")
              for e in record.events] or ["  -"]
    return "\n".join(lines) + "\n"


def format_for(target: Path | None, fmt: str | None) -> str:
    """FMT if given, else "json" for a TARGET ending in .json, else "text"."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(_("unknown format {format} (one of: text, json)").format(
                format=fmt), field="format")
        return fmt
    return "json" if target is not None and target.suffix.lower() == ".json" else "text"


def export_person(session: Session, settings: Settings, email: str, target: Path | None, *,
                  fmt: str | None = None) -> tuple[PersonRecord, str]:
    """The record of EMAIL in FMT (see format_for); written to TARGET (mode 0600, whole or
    not at all) if given. Returns the record and the text."""
    record = person_record(session, settings, email)
    fmt = format_for(target, fmt)
    text = record_json(record) if fmt == "json" else record_text(record, settings)
    if target is not None:
        if target.is_dir():
            raise InputError(_("is a folder: give a file name"), source=str(target))
        with atomic_write(target, mode=0o600) as fh:
            fh.write(text)
    return record, text
