"""Staff accounts of the console and what each role may do.

Roles form a ladder: a redaktör composes, previews, test-sends and asks for review; a granskare
may also approve and send; an admin may also manage the staff. `allows(role, needed)` is the one
place that knows the ladder; the console asks it for every request.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .contacts import normalise_email
from .errors import InputError, NotFound
from .events import EventKind, log_event
from .i18n import _
from .models import STAFF_ROLES, Staff

REDAKTOR, GRANSKARE, ADMIN = STAFF_ROLES
_RANK = {role: rank for rank, role in enumerate(STAFF_ROLES)}


def role_label(role: str) -> str:
    """The role's name for people."""
    return {REDAKTOR: _("Editor"), GRANSKARE: _("Reviewer"), ADMIN: _("Administrator")}[role]


def allows(role: str, needed: str) -> bool:
    """True if a staff member with ROLE may do what NEEDED (a role) may do."""
    return _RANK.get(role, -1) >= _RANK[needed]


def find_staff(session: Session, email: str) -> Staff | None:
    """The staff member with EMAIL (any case), or None; never raises for a bad address."""
    try:
        address = normalise_email(email)
    except InputError:
        return None
    return session.scalar(select(Staff).where(Staff.email == address))


def add_staff(session: Session, email: str, *, name: str, role: str, by: str = "cli") -> Staff:
    """Add a staff member, or change the name and role of an existing one."""
    if role not in STAFF_ROLES:
        raise InputError(_("unknown role “{role}” (valid: {valid})").format(
            role=role, valid=", ".join(STAFF_ROLES)), field="role")
    name = " ".join((name or "").split())
    if len(name) > 200:
        raise InputError(_("the name is longer than 200 characters"), field="name")
    address = normalise_email(email)
    staff = session.scalar(select(Staff).where(Staff.email == address))
    if staff is None:
        staff = Staff(email=address, name=name, role=role)
        session.add(staff)
    else:
        staff.name, staff.role = name or staff.name, role
    session.flush()
    log_event(session, EventKind.STAFF_SAVED, staff=address, role=role, by=by)
    return staff


def list_staff(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).order_by(Staff.email)))


def remove_staff(session: Session, email: str, *, by: str = "cli") -> None:
    """Remove a staff member (their sessions and sign-in links go with them). The last admin
    cannot be removed: then nobody could manage the staff from the console."""
    staff = find_staff(session, email)
    if staff is None:
        raise NotFound(_("no staff member {email} (newsletter staff list)").format(email=email))
    if staff.role == ADMIN:
        admins = session.scalar(select(func.count()).select_from(Staff).where(
            Staff.role == ADMIN))
        if admins == 1:
            raise InputError(_("{email} is the last administrator: add another one first").format(
                email=staff.email), field="email")
    session.delete(staff)
    log_event(session, EventKind.STAFF_REMOVED, staff=staff.email, by=by)
