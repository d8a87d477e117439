"""Contacts: addresses; add, list, show, export, unsubscribe, forget.

The CSV import is in contacts_import.py; the fields of a contact (municipality, role, areas) are
validated in contact_fields.py; the event log and the suppression list are in events.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from sqlalchemy import and_, case, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from . import labels
from .addresses import needs_smtputf8
from .contact_fields import CONTACT_COLUMNS, FieldReader, contact_name, merge_contact
from .csvfiles import write_csv
from .errors import InputError, InvalidAddress, NotFound, SuppressedAddress
from .events import EventKind, SuppressionReason, log_event, suppress, suppression_reason
from .i18n import _, shown
from .models import (
    PERSON_STATUSES,
    Event,
    Municipality,
    Person,
    PersonArea,
    Position,
    Signup,
    Suppression,
    utcnow,
)
from .municipalities import Resolver
from .outbox import forgetting
from .segments import recipients_query
from .settings import Settings
from .signing import address_hash

# The everyday shape of an address (checked lower-cased): plain dot-atom local part, ASCII
# hostname labels without "--", an alphabetic TLD. email-validator accepts every such address
# unchanged (bar the length and special-use domains checked below), so the import need not pay
# ~40 us an address for it; anything else goes through email-validator.
_EVERYDAY = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@"
                       r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _everyday(text: str) -> bool:
    if len(text) > 254 or "--" in text or not _EVERYDAY.fullmatch(text):
        return False
    domain = text.partition("@")[2]
    return not any(domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES)


def normalise_email(raw: str, *, field: str = "email") -> str:
    """The address in canonical form, validated without DNS.

    The whole address is lower-cased: in practice mailboxes ignore case, and "Anna@x.se" and
    "anna@x.se" must merge into one person and share one suppression entry.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress(_("empty email address"), field=field)
    lowered = text.lower()
    if _everyday(lowered):
        return lowered
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        shown = repr(text)[1:-1]  # control characters escaped: the error stays one line
        raise InvalidAddress(_("invalid email address “{address}”: {reason}").format(
            address=shown, reason=exc), field=field) from None
    return result.normalized.lower()


def smtputf8_warning(address: str) -> str | None:
    """The warning for an address that only a server offering SMTPUTF8 can deliver (its local
    part is not ASCII, addresses.py), or None. Such an address is kept, not rejected."""
    if not needs_smtputf8(address):
        return None
    return _("{address} has non-ASCII letters before the @: only a mail server that offers "
             "SMTPUTF8 can deliver to it; through one that does not, its messages fail").format(
        address=address)


def unsubscribe(session: Session, secret: bytes, person: Person, *, source: str) -> bool:
    """Unsubscribe PERSON from everything; returns False if they already were."""
    suppress(session, secret, person.email, SuppressionReason.UNSUBSCRIBED)
    if person.status == "unsubscribed":
        return False
    person.status = "unsubscribed"
    log_event(session, EventKind.UNSUBSCRIBED, person, source=source)
    return True


def unsubscribe_address(session: Session, secret: bytes, email: str, *, source: str) -> str:
    """Unsubscribe EMAIL: "unsubscribed", "already" (it was), or "blocked" (no such contact,
    but the address is now on the suppression list all the same)."""
    email = normalise_email(email)
    person = find_person(session, email)
    if person is None:
        suppress(session, secret, email, SuppressionReason.UNSUBSCRIBED)
        return "blocked"
    return "unsubscribed" if unsubscribe(session, secret, person, source=source) else "already"


def find_person(session: Session, email: str) -> Person | None:
    return session.scalar(select(Person).where(Person.email == normalise_email(email)))


def _refuse_suppressed(session: Session, secret: bytes, email: str,
                       person: Person | None) -> None:
    reason = suppression_reason(session, secret, email)
    if reason is None and person is not None and person.status not in ("active", "pending"):
        reason = person.status
    if reason == SuppressionReason.ERASED:
        raise SuppressedAddress(_("{email}: this address was erased (GDPR) and may not be "
                                  "added again; it is kept only as a hashed suppression entry"
                                  ).format(email=email))
    if reason:
        raise SuppressedAddress(_("{email}: the address is {reason} and is never re-subscribed "
                                  "by add or import").format(
                                      email=email, reason=labels.contact_status(reason)))


def add_contact(session: Session, settings: Settings, email: str, *, name: str = "",
                municipality: str = "", role: str = "", areas: Iterable[str] = (),
                source: str = "cli", lawful_basis: str = "legitimate_interest",
                today: date | None = None) -> tuple[Person, str]:
    """Add a contact, or add the position and areas to an existing one (merge_contact says
    how); a new position starts TODAY (default: today); one the person holds, or will hold
    from a later day, is not added again.

    Returns the person and "added", "updated" or "unchanged". A suppressed address (unsubscribed,
    bounced, erased) raises SuppressedAddress.
    """
    today = today or date.today()
    email = normalise_email(email)
    person = session.scalar(select(Person).where(Person.email == email))
    _refuse_suppressed(session, settings.secret_key, email, person)
    fields = FieldReader(settings, Resolver.from_session(session))
    position = fields.position(municipality.strip(), role.strip())
    areas = list(areas)
    given = dict(name=contact_name(name), positions={position} if position else set(),
                 areas=fields.areas(areas) if areas else None)
    new = person is None
    if person is None:
        merge = merge_contact(fields, **given)
        person = Person(email=email, name=given["name"], lawful_basis=lawful_basis,
                        basis_source=source, basis_at=utcnow())
        session.add(person)
    else:
        merge = merge_contact(fields, **given, have_name=person.name,
                              have_positions={(p.municipality_id, p.role)
                                              for p in person.positions
                                              if not p.ended_by(today)},
                              have_areas={a.area for a in person.areas})
        if not merge.changes and person.status != "pending":
            return person, "unchanged"
        if person.status == "pending":  # signed up, not confirmed: staff's contact from now on
            person.status, person.lawful_basis = "active", lawful_basis
            person.basis_source, person.basis_at = source, utcnow()
    if merge.name is not None:
        person.name = merge.name
    person.positions.extend(Position(municipality_id=m, role=r, started_on=today)
                            for m, r in sorted(merge.positions, key=str))
    if merge.areas is not None:
        person.areas[:] = [a for a in person.areas if a.area in merge.areas]
        have = {a.area for a in person.areas}
        person.areas.extend(PersonArea(area=a) for a in sorted(merge.areas - have))
    session.flush()
    if new:
        log_event(session, EventKind.ADDED, person, source=source)
    else:
        log_event(session, EventKind.UPDATED, person, source=source, changes=merge.changes)
    session.flush()
    return person, "added" if new else "updated"


def list_contacts(session: Session, settings: Settings, *, status: str | None = None,
                  segment: str | None = None, municipality: str | None = None,
                  role: str | None = None) -> list[Person]:
    """Contacts by address, with positions loaded; SEGMENT (a name or an expression) yields
    only the active, unpaused persons it reaches; MUNICIPALITY and ROLE match positions held
    today."""
    query = (recipients_query(settings, segment) if segment else select(Person))
    if status:
        if status not in PERSON_STATUSES:
            raise InputError(_("unknown state “{state}” (valid: {valid})").format(
                state=shown(status), valid=", ".join(PERSON_STATUSES)), field="status")
        query = query.where(Person.status == status)
    fields = FieldReader(settings, Resolver.from_session(session))
    held = Position.held_on(date.today())
    if municipality:
        muni = fields.municipality(municipality)
        query = query.where(Person.positions.any(and_(held, Position.municipality_id == muni.id)))
    if role:
        query = query.where(Person.positions.any(and_(held, Position.role == fields.role(role))))
    query = query.order_by(None).order_by(Person.email).options(
        selectinload(Person.positions).selectinload(Position.municipality))
    return list(session.scalars(query))


@dataclass
class ContactDetails:
    person: Person
    areas: list[str]  # the slugs the person gets (every area if they chose none)
    suppression: str | None
    events: list[Event]


def contact_details(session: Session, settings: Settings, email: str, *,
                    events: int = 10) -> ContactDetails:
    """Everything about one contact: person, positions, areas, suppression, recent events."""
    email = normalise_email(email)
    person = session.scalar(select(Person).where(Person.email == email).options(
        selectinload(Person.positions).selectinload(Position.municipality)))
    reason = suppression_reason(session, settings.secret_key, email)
    if person is None:
        if reason:
            raise NotFound(_("no contact {email} (the address is on the suppression list: "
                             "{reason})").format(email=email, reason=labels.contact_status(reason)))
        raise NotFound(_("no contact {email}").format(email=email))
    chosen = {a.area for a in person.areas}
    recent = list(session.scalars(select(Event).where(Event.person_id == person.id)
                                  .order_by(Event.id.desc()).limit(events)))
    return ContactDetails(person=person,
                          areas=[s for s in settings.area_slugs if not chosen or s in chosen],
                          suppression=reason, events=recent)


def _export_rows(session: Session, status: str | None) -> Iterator[list[str]]:
    query = select(Person.id, Person.email, Person.name).order_by(Person.email)
    if status:
        query = query.where(Person.status == status)
    positions: dict[int, list[tuple[str, str, str]]] = {}
    for pid, role, muni, county in session.execute(
            select(Position.person_id, Position.role, Municipality.name, Municipality.county)
            .outerjoin(Municipality, Position.municipality_id == Municipality.id)
            .where(Position.held_on(date.today()))
            # The association's own roles (no municipality) first: SQLite sorts NULL first,
            # PostgreSQL last.
            .order_by(Position.person_id, case((Municipality.name.is_(None), 0), else_=1),
                      Municipality.name, Position.role)):
        positions.setdefault(pid, []).append((muni or "", role, county or ""))
    areas: dict[int, list[str]] = {}
    for pid, area in session.execute(select(PersonArea.person_id, PersonArea.area)
                                     .order_by(PersonArea.person_id, PersonArea.area)):
        areas.setdefault(pid, []).append(area)
    for pid, email, name in session.execute(query):
        chosen = "|".join(areas.get(pid, ()))
        for muni, role, county in positions.get(pid) or [("", "", "")]:
            yield [email, name, muni, role, county, chosen]


def export_contacts(session: Session, target: Path | str, *, status: str | None = "active",
                    delimiter: str = ",", bom: bool = False) -> int:
    """Write the contacts (of STATUS; None = all) as CSV with the import's columns, one row per
    position held today, formula-safe for Excel, to TARGET ("-" = stdout, with a BOM only with
    BOM; a file always has one); returns the rows written."""
    return write_csv(target, CONTACT_COLUMNS, _export_rows(session, status), delimiter=delimiter,
                     bom=bom)


def forget(session: Session, secret: bytes, email: str) -> bool:
    """GDPR erasure: delete the person and everything that names them (also the test copies
    sent to the address); keep only the hashed suppression entry (reason "erased") so the
    address is never mailed or added again.

    On SQLite the old page images stay in the -wal file until a checkpoint: after the commit,
    call db.checkpoint(engine), as `contacts forget` does.

    Returns False if there was no such person (the address is blocked all the same).
    """
    email = normalise_email(email)
    digest = address_hash(secret, email)
    entry = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if entry is None:
        session.add(Suppression(email_hash=digest, reason=SuppressionReason.ERASED))
    else:
        entry.reason = SuppressionReason.ERASED
    forgetting.forget_address(session, email)
    # A sign-up not handled yet keeps the address of one who is not a contact (signups.py).
    session.execute(delete(Signup).where(Signup.email == email))
    person = session.scalar(select(Person).where(Person.email == email))
    if person is not None:
        # Positions, areas and registrations go by cascade; outbox rows and events keep only
        # a NULL person. Scrub free text that may quote the address (an SMTP error, say), and
        # content frozen for this person alone (outbox.forgetting.forget_person).
        forgetting.forget_person(session, person)
        for event in session.scalars(select(Event).where(Event.person_id == person.id)):
            if email in json.dumps(event.detail, ensure_ascii=False).casefold():
                event.detail = {"redacted": True}
        session.delete(person)
        session.flush()
    log_event(session, EventKind.ERASED)
    return person is not None


def change_email(session: Session, settings: Settings, old: str, new: str, *,
                 source: str = "cli") -> Person:
    """Give the contact OLD the address NEW: the same person (public id, so the links already
    sent keep working), positions, areas, history and pending mailings.

    NEW is refused if another contact has it or it is on the suppression list. Someone
    unsubscribed stays unsubscribed (NEW is suppressed too: the choice was the person's, not the
    address's); someone whose old address bounced is active again at the new one, which is the
    usual reason for the change (the old address stays suppressed).
    """
    old_address = normalise_email(old, field="old")
    new_address = normalise_email(new, field="new")
    person = find_person(session, old_address)
    if person is None:
        raise NotFound(_("no contact {email}").format(email=old_address))
    if new_address == old_address:
        raise InputError(_("{email} is already the contact's address").format(
            email=new_address), field="new")
    if find_person(session, new_address) is not None:
        raise InputError(_("{email} is already another contact's address").format(
            email=new_address), field="new")
    reason = suppression_reason(session, settings.secret_key, new_address)
    if reason is not None:
        raise SuppressedAddress(_("{email} is on the suppression list ({reason}) and cannot "
                                  "become a contact's address").format(email=new_address,
                                                                         reason=reason))
    person.email = new_address
    if person.status == "unsubscribed":
        suppress(session, settings.secret_key, new_address, SuppressionReason.UNSUBSCRIBED)
    elif person.status == "bounced":
        person.status = "active"
        person.soft_bounces, person.soft_bounced_at = 0, None
    log_event(session, EventKind.EMAIL_CHANGED, person, source=source)
    session.flush()
    return person


def search_contacts(session: Session, text: str, *, limit: int = 50) -> list[Person]:
    """Contacts whose address or name contains TEXT, or who hold a position in a municipality
    whose name starts with it; by address, positions loaded. For the console's search box.

    Case is ignored; for å, ä, ö (which SQLite's LIKE compares by case) the usual spellings
    are tried: as typed, lower case, Capitalised and UPPER.
    """
    words = " ".join(text.split())
    if not words:
        return []
    forms = {words, words.lower(), words.capitalize(), words.title(), words.upper()}
    muni = (select(Position.person_id).join(Municipality,
                                            Municipality.id == Position.municipality_id)
            .where(or_(*(Municipality.name.istartswith(f, autoescape=True) for f in forms))))
    query = (select(Person)
             .where(or_(Person.email.contains(words.lower(), autoescape=True),
                        *(Person.name.icontains(f, autoescape=True) for f in forms),
                        Person.id.in_(muni)))
             .order_by(Person.email).limit(limit)
             .options(selectinload(Person.positions).selectinload(Position.municipality)))
    return list(session.scalars(query))
