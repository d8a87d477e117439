"""Positions over time: who holds which role where, from when and until when.

A position (person, municipality or the association itself, role) starts on a date and may end
on a later one (models.Position: the interval is half-open, so a hand-over on a date gives the
role to the new holder on that date). Nothing here deletes a position: an ended one is history,
shown by `contacts show` and `contacts export-person`, and counts in no segment.

Someone whose position ends stays a subscriber: they keep their other positions, and if none is
left in that municipality they get the role `ovrig` there (when the site has it) from the same
day, so that `medlemmar` (every contact of a member municipality) still reaches them: a former
kommunchef who also sits on the association's board would otherwise drop out of it. Only an
unsubscribe or an erasure stops their mail; staff end the `ovrig` too if they left altogether.

Every start and end is written to the event log (kinds "position_started", "position_ended"),
with the role, the municipality's kommunkod and the date; never an address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .contact_fields import DEFAULT_ROLE, FieldReader
from .contacts import add_contact, find_person, normalise_email
from .errors import InputError, NotFound
from .events import EventKind, log_event
from .i18n import _
from .models import Municipality, Person, Position
from .municipalities import Resolver
from .settings import Settings


@dataclass(frozen=True)
class Change:
    """One position started or ended, as reports and the CLI show it."""

    email: str
    name: str
    municipality: str | None  # the municipality's name; None: the association itself
    role: str
    on: date
    kind: str  # "started" or "ended"

    @property
    def place(self) -> str:
        return self.municipality or _("the association")


@dataclass
class Changes:
    """What a command did to the register, in order."""

    started: list[Change] = field(default_factory=list)
    ended: list[Change] = field(default_factory=list)

    def extend(self, other: Changes) -> None:
        self.started += other.started
        self.ended += other.ended


def _change(person: Person, position: Position, on: date, kind: str) -> Change:
    muni = position.municipality
    return Change(person.email, person.name, muni.name if muni else None, position.role, on, kind)


def _kommunkod(session: Session, municipality_id: int | None) -> str | None:
    if municipality_id is None:
        return None
    return session.get(Municipality, municipality_id).kommunkod


def start_position(session: Session, person: Person, municipality_id: int | None, role: str,
                   on: date, *, source: str) -> Position:
    """Start PERSON's position (MUNICIPALITY_ID, ROLE) on ON, and log it; InputError if they
    hold it already, or will from a later day."""
    for held in person.positions:
        if (held.municipality_id, held.role) == (municipality_id, role) and not held.ended_by(on):
            raise InputError(_("{email} already holds {role} there from {start}").format(
                email=person.email, role=role, start=held.started_on.isoformat()))
    position = Position(person_id=person.id, municipality_id=municipality_id, role=role,
                        started_on=on)
    person.positions.append(position)
    session.flush()
    log_event(session, EventKind.POSITION_STARTED, person, role=role,
              municipality=_kommunkod(session, municipality_id), on=on.isoformat(),
              source=source)
    return position


def end_position(session: Session, settings: Settings, position: Position, on: date, *,
                 source: str) -> Changes:
    """End POSITION on ON (it was held until the day before), log it, and keep its holder a
    subscriber (see the module docstring). Returns what ended and what started."""
    if on < position.started_on:
        raise InputError(_("the position started on {start}: it cannot end before, on {on}")
                         .format(start=position.started_on.isoformat(), on=on.isoformat()),
                         field="on")
    person = position.person
    position.ended_on = on
    log_event(session, EventKind.POSITION_ENDED, person, role=position.role,
              municipality=_kommunkod(session, position.municipality_id), on=on.isoformat(),
              source=source)
    changes = Changes(ended=[_change(person, position, on, "ended")])
    left = [p for p in person.positions if p.municipality_id == position.municipality_id
            and (p.holds_on(on) or p.started_on > on)]
    if (not left and position.municipality_id is not None and position.role != DEFAULT_ROLE
            and DEFAULT_ROLE in settings.roles):
        kept = start_position(session, person, position.municipality_id, DEFAULT_ROLE, on,
                              source=source)
        changes.started.append(_change(person, kept, on, "started"))
    return changes


def end_placeholder(session: Session, settings: Settings, person: Person,
                    municipality_id: int | None, on: date, *, source: str) -> Changes:
    """End PERSON's `ovrig` in MUNICIPALITY_ID on ON once they hold another role there (it
    only stood for "a contact of this municipality", as settle_positions has it)."""
    changes = Changes()
    held = person.positions_on(on)
    if not any(p.municipality_id == municipality_id and p.role != DEFAULT_ROLE for p in held):
        return changes
    for position in held:
        if position.municipality_id == municipality_id and position.role == DEFAULT_ROLE:
            changes.extend(end_position(session, settings, position,
                                        max(on, position.started_on), source=source))
    return changes


def holders(session: Session, municipality_id: int | None, role: str, on: date
            ) -> list[Position]:
    """The positions (MUNICIPALITY_ID, ROLE) held on ON, with their persons, by address."""
    return list(session.scalars(
        select(Position).join(Person, Person.id == Position.person_id)
        .where(Position.role == role, Position.held_on(on),
               Position.municipality_id.is_(None) if municipality_id is None
               else Position.municipality_id == municipality_id)
        .options(selectinload(Position.person).selectinload(Person.positions))
        .order_by(Person.email)))


def _describe(positions: Iterable[Position], settings: Settings) -> str:
    return ", ".join(f"{settings.roles.get(p.role, p.role)} "
                     f"({p.municipality.name if p.municipality else _('the association')})"
                     for p in positions) or _("none")


def end_role(session: Session, settings: Settings, email: str, *, role: str,
             municipality: str = "", on: date | None = None, source: str = "cli") -> Changes:
    """End the position ROLE (in MUNICIPALITY, if given) that EMAIL holds on ON (default today).

    Without MUNICIPALITY the person must hold ROLE in exactly one place.
    """
    on = on or date.today()
    fields = FieldReader(settings, Resolver.from_session(session))
    slug = fields.role(role)
    muni = fields.municipality(municipality) if municipality.strip() else None
    person = find_person(session, email)
    if person is None:
        raise NotFound(_("no contact {email}").format(email=normalise_email(email)))
    held = person.positions_on(on)
    found = [p for p in held if p.role == slug
             and (muni is None or p.municipality_id == muni.id)]
    if not found:
        where = _(" in {municipality}").format(municipality=muni.name) if muni else ""
        raise NotFound(_("{email} holds no position {role}{where} on {on}; held then: {held}")
                       .format(email=person.email, role=slug, where=where, on=on.isoformat(),
                               held=_describe(held, settings)))
    if len(found) > 1:
        raise InputError(_("{email} holds {role} in several places ({places}): name one "
                           "with --municipality")
                         .format(email=person.email, role=slug,
                                 places=_describe(found, settings)), field="municipality")
    return end_position(session, settings, found[0], on, source=source)


def hand_over(session: Session, settings: Settings, *, role: str, municipality: str, to: str,
              name: str = "", from_: str | None = None, on: date | None = None,
              source: str = "hand-over") -> Changes:
    """Give ROLE in MUNICIPALITY to TO (added as a contact if new, with NAME) on ON (default
    today): the holder's position ends and TO's starts on the same day.

    With several holders, FROM_ names the one who leaves; with none, TO simply starts.
    """
    on = on or date.today()
    fields = FieldReader(settings, Resolver.from_session(session))
    slug = fields.role(role)
    muni = fields.municipality(municipality) if municipality.strip() else None
    muni_id = muni.id if muni else None
    place = muni.name if muni else _("the association")
    to_address = normalise_email(to, field="to")
    current = holders(session, muni_id, slug, on)
    if any(p.person.email == to_address for p in current):
        raise InputError(_("{email} already holds {role} in {place} on {on}")
                         .format(email=to_address, role=slug, place=place, on=on.isoformat()),
                         field="to")
    leaving = current
    if from_ is not None:
        from_address = normalise_email(from_, field="from")
        leaving = [p for p in current if p.person.email == from_address]
        if not leaving:
            raise NotFound(_("{email} does not hold {role} in {place} on {on} (holders: "
                             "{holders})").format(
                email=from_address, role=slug, place=place, on=on.isoformat(),
                holders=", ".join(p.person.email for p in current) or _("none")))
    elif len(current) > 1:
        raise InputError(_("{count} hold {role} in {place} ({holders}): name the one who "
                           "leaves with --from").format(
            count=len(current), role=slug, place=place,
            holders=", ".join(p.person.email for p in current)), field="from")
    # First the new holder (a suppressed address is refused before anything changes).
    person, _outcome = add_contact(session, settings, to_address, name=name, source=source)
    changes = Changes()
    for position in leaving:
        changes.extend(end_position(session, settings, position, on, source=source))
    started = start_position(session, person, muni_id, slug, on, source=source)
    changes.started.append(_change(person, started, on, "started"))
    return changes


def end_unlisted(session: Session, settings: Settings,
                 listed: dict[tuple[int | None, str], set[str]], on: date, *,
                 source: str) -> Changes:
    """For each (municipality id, role) pair of LISTED, end on ON every position of that pair
    held on ON by someone not among its addresses: what `contacts import --sync` does once the
    file's own positions are in. Never deletes; keeps each holder a subscriber."""
    changes = Changes()
    roles = {role for _m, role in listed}
    if not roles:
        return changes
    ending = [p for p in session.scalars(
        select(Position).join(Person, Person.id == Position.person_id)
        .outerjoin(Municipality, Municipality.id == Position.municipality_id)
        .where(Position.role.in_(roles), Position.held_on(on))
        .options(selectinload(Position.person).selectinload(Person.positions),
                 selectinload(Position.municipality))
        .order_by(Municipality.name, Position.role, Person.email))
        if (p.municipality_id, p.role) in listed
        and p.person.email not in listed[(p.municipality_id, p.role)]]
    for position in ending:
        changes.extend(end_position(session, settings, position, on, source=source))
    return changes
