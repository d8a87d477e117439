"""Self-declared roles that wait for staff before they count.

Someone who signs up on a public page names their own role. A role that unlocks
role-restricted items or role-targeted mailings (`[register] verified_roles`: kommunchef, kso,
styrelse by default) is not a position yet: it is a claim (`role_claims`), and the person holds
`ovrig` in that municipality meanwhile, so they get what an ovrig gets. Nothing that asks "who
holds what" (segments, content variants, vacancies) ever sees a claim: a claim is no position.
Staff verify it (`newsletter contacts verify EMAIL`, the console's /kontakter/roller): the
position starts that day through positions.start_position and the placeholder `ovrig` there
ends; or they reject it, and the person stays ovrig. Every step is in the event log
(role-claimed, role-verified, role-rejected) with the role and the municipality's kommunkod,
and the claim keeps who decided and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .contact_fields import DEFAULT_ROLE
from .contacts import find_person, normalise_email
from .errors import NotFound
from .events import EventKind, log_event
from .i18n import _
from .models import Person, RoleClaim
from .positions import end_placeholder, start_position
from .settings import Settings

VERIFIED = "verified"
REJECTED = "rejected"


def needs_verification(settings: Settings, role: str) -> bool:
    return role in settings.signup.verified_roles


def _kommunkod(claim: RoleClaim) -> str | None:
    return claim.municipality.kommunkod if claim.municipality else None


def claim(session: Session, settings: Settings, person: Person, municipality_id: int | None,
          role: str, *, page: str, today: date, now: datetime | None = None) -> RoleClaim | None:
    """PERSON says they hold ROLE in MUNICIPALITY_ID: a claim for staff, unless they hold it
    already or claimed it before; meanwhile they hold `ovrig` there (from TODAY) if they hold
    nothing there. Returns the new claim, or None."""
    if any(p.municipality_id == municipality_id and p.role == role
           for p in person.positions_on(today)):
        return None
    if session.scalar(select(RoleClaim.id).where(
            RoleClaim.person_id == person.id, RoleClaim.role == role,
            RoleClaim.decided_at.is_(None),
            RoleClaim.municipality_id.is_(None) if municipality_id is None
            else RoleClaim.municipality_id == municipality_id)):
        return None
    made = RoleClaim(person_id=person.id, municipality_id=municipality_id, role=role, page=page,
                     claimed_at=now or datetime.now(UTC))
    session.add(made)
    session.flush()
    if (municipality_id is not None and DEFAULT_ROLE in settings.roles
            and not any(p.municipality_id == municipality_id for p in person.positions_on(today))):
        start_position(session, person, municipality_id, DEFAULT_ROLE, today, source=page)
    log_event(session, EventKind.ROLE_CLAIMED, person, role=role,
              municipality=_kommunkod(made) if made.municipality_id else None, source=page)
    return made


def pending(session: Session) -> list[RoleClaim]:
    """The claims staff have not decided, oldest first, with persons and municipalities."""
    return list(session.scalars(
        select(RoleClaim).where(RoleClaim.decided_at.is_(None))
        .order_by(RoleClaim.claimed_at, RoleClaim.id)
        .options(selectinload(RoleClaim.person), selectinload(RoleClaim.municipality))))


def claims_of(session: Session, person_id: int) -> list[RoleClaim]:
    """Every claim of PERSON_ID (decided ones too), oldest first."""
    return list(session.scalars(
        select(RoleClaim).where(RoleClaim.person_id == person_id)
        .order_by(RoleClaim.claimed_at, RoleClaim.id)
        .options(selectinload(RoleClaim.municipality))))


@dataclass(frozen=True)
class Decision:
    """A claim decided: whose, which role where, and how."""

    email: str
    role: str
    municipality: str | None  # the municipality's name; None: the association
    outcome: str  # verified | rejected


def _open_claims(session: Session, email: str, claim_id: int | None) -> tuple[Person, list]:
    address = normalise_email(email)
    person = find_person(session, address)
    if person is None:
        raise NotFound(_("no contact {email}").format(email=address))
    claims = [c for c in claims_of(session, person.id) if c.decided_at is None
              and (claim_id is None or c.id == claim_id)]
    if not claims:
        raise NotFound(_("{email} has no role waiting for verification").format(email=address))
    return person, claims


def decide(session: Session, settings: Settings, email: str, *, by: str, verify: bool = True,
           claim_id: int | None = None, on: date | None = None,
           now: datetime | None = None) -> list[Decision]:
    """Verify (or reject) the claims of EMAIL waiting for staff (CLAIM_ID: only that one); BY
    is who decided (a staff address, or "cli"). A verified role is held from ON (default
    today) and the placeholder `ovrig` in that municipality ends the same day."""
    on = on or date.today()
    now = now or datetime.now(UTC)
    person, claims = _open_claims(session, email, claim_id)
    decisions = []
    for c in claims:
        c.decided_at, c.decided_by = now, by
        c.outcome = VERIFIED if verify else REJECTED
        place = c.municipality.name if c.municipality else None
        if verify:
            _start(session, settings, person, c, on, by)
        log_event(session, EventKind.ROLE_VERIFIED if verify else EventKind.ROLE_REJECTED,
                  person, role=c.role, municipality=_kommunkod(c), by=by)
        decisions.append(Decision(person.email, c.role, place, c.outcome))
    session.flush()
    return decisions


def _start(session: Session, settings: Settings, person: Person, c: RoleClaim, on: date,
           by: str) -> None:
    source = f"verified:{by}"
    # Held already (an import since)? Then the claim is settled all the same.
    if not any(p.municipality_id == c.municipality_id and p.role == c.role
               and not p.ended_by(on) for p in person.positions):
        start_position(session, person, c.municipality_id, c.role, on, source=source)
    end_placeholder(session, settings, person, c.municipality_id, on, source=source)

