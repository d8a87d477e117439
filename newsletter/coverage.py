"""Coverage of the member municipalities: vacancies in the register, and whom a mailing misses.

`vacancies` lists the member municipalities where a role has no holder, several holders, or only
a holder who cannot be mailed (unsubscribed, bounced). The roles checked by default are the
ones each municipality has exactly one of (`[register] vacancy_roles`: kommunchef and kso).

`unreached` answers, before a mailing to a role segment goes out, which member municipalities it
will not reach: those where no recipient of the segment holds one of the roles it asks for (on
the day it is judged by). The roles and places come from segments.targets, which reads the
conditions of the expression that are not negated: good for `role:kommunchef and member` and
`role:kso and county:Jämtland`, an approximation for unusual expressions, and never used to
pick recipients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import segments
from .contact_fields import FieldReader
from .models import Municipality, Person, Position
from .municipalities import Resolver
from .settings import Settings

NONE = "none"
SEVERAL = "several"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Holder:
    email: str
    name: str
    status: str  # the person's: active, unsubscribed, bounced


@dataclass(frozen=True)
class Vacancy:
    """A member municipality whose ROLE has no holder, several, or only one who is not active."""

    municipality: str
    kommunkod: str
    role: str
    holders: tuple[Holder, ...]

    @property
    def problem(self) -> str:
        """NONE, SEVERAL or UNREACHABLE."""
        if not self.holders:
            return NONE
        return SEVERAL if len(self.holders) > 1 else UNREACHABLE


def vacancies(session: Session, settings: Settings, *, role: str | None = None,
              today: date | None = None) -> list[Vacancy]:
    """The member municipalities where ROLE (default: each of `[register] vacancy_roles`) has
    no holder on TODAY, several, or one who cannot be mailed; by municipality, then role."""
    today = today or date.today()
    if role:
        roles = [FieldReader(settings, Resolver.from_session(session)).role(role)]
    else:
        roles = list(settings.vacancy_roles)
    members = list(session.execute(select(Municipality.id, Municipality.name,
                                          Municipality.kommunkod)
                                   .where(Municipality.member.is_(True))
                                   .order_by(Municipality.name)))
    held: dict[tuple[int, str], list[Holder]] = {}
    for muni_id, slug, email, name, status in session.execute(
            select(Position.municipality_id, Position.role, Person.email, Person.name,
                   Person.status)
            .join(Person, Person.id == Position.person_id)
            .join(Municipality, Municipality.id == Position.municipality_id)
            .where(Municipality.member.is_(True), Position.role.in_(roles),
                   Position.held_on(today))
            .order_by(Person.email)):
        held.setdefault((muni_id, slug), []).append(Holder(email, name, status))
    out = []
    for muni_id, name, kommunkod in members:
        for slug in roles:
            holders = held.get((muni_id, slug), [])
            if len(holders) != 1 or holders[0].status != "active":
                out.append(Vacancy(name, kommunkod, slug, tuple(holders)))
    return out


def unreached(session: Session, settings: Settings, segment_expr: str, *,
              today: date | None = None) -> list[Municipality]:
    """The member municipalities a mailing to SEGMENT_EXPR (a name or an expression) will not
    reach: none of its recipients holds, on TODAY, a role the segment asks for there. Empty for
    a segment that asks for no role (`medlemmar`, `area:bostad`)."""
    today = today or date.today()
    aims = segments.targets(settings, segment_expr)
    if not aims.roles:
        return []
    recipients = (segments.recipients_query(settings, segment_expr, today=today)
                  .with_only_columns(Person.id).order_by(None))
    reached = (select(Position.municipality_id)
               .where(Position.role.in_(aims.roles), Position.held_on(today),
                      Position.municipality_id.is_not(None), Position.person_id.in_(recipients)))
    query = select(Municipality).where(Municipality.member.is_(True),
                                       Municipality.id.not_in(reached))
    if aims.places is not None:
        query = query.where(aims.places)
    return list(session.scalars(query.order_by(Municipality.name)))
