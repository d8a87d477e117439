"""What a person wants: which priority areas, a pause for a while, and coming back.

Used by the public preferences page; every change goes into the event log (no personal data).
A person with no PersonArea rows wants every area, so choosing all areas deletes the rows.
"""

from __future__ import annotations

import calendar
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .errors import InputError, SuppressedAddress
from .events import EventKind, SuppressionReason, log_event
from .i18n import _, shown
from .models import Person, PersonArea, Suppression
from .settings import Settings
from .signing import address_hash

PAUSE_MONTHS = (1, 3, 6)


def chosen_areas(session: Session, settings: Settings, person: Person) -> list[str]:
    """The configured area slugs PERSON gets, in the configured order (all of them if no rows)."""
    rows = set(session.scalars(select(PersonArea.area).where(PersonArea.person_id == person.id)))
    if not rows:
        return settings.area_slugs
    return [slug for slug in settings.area_slugs if slug in rows]


def set_areas(session: Session, settings: Settings, person: Person, slugs: list[str]) -> bool:
    """Set the areas PERSON gets; returns True if that changed anything.

    Every slug must be a configured area and at least one must be chosen (choosing none is
    unsubscribing, which is its own action).
    """
    wanted = set(slugs)
    unknown = wanted - set(settings.area_slugs)
    if unknown:
        raise InputError(_("unknown area “{area}”").format(area=shown(min(unknown))),
                         field="areas")
    if not wanted:
        raise InputError(_("choose at least one area"), field="areas")
    before = chosen_areas(session, settings, person)
    after = [slug for slug in settings.area_slugs if slug in wanted]
    stored = set(session.scalars(select(PersonArea.area).where(PersonArea.person_id == person.id)))
    target = set() if len(after) == len(settings.area_slugs) else set(after)
    if stored == target:
        return False
    session.execute(delete(PersonArea).where(PersonArea.person_id == person.id))
    session.add_all(PersonArea(person_id=person.id, area=slug) for slug in sorted(target))
    session.flush()
    session.expire(person, ["areas"])
    if before == after:
        return False
    log_event(session, EventKind.PREFERENCES, person, change="areas", areas=after)
    return True


def add_months(day: date, months: int) -> date:
    """DAY plus MONTHS calendar months (the 31st becomes the last day of a shorter month)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def pause(session: Session, person: Person, months: int, *, today: date) -> date:
    """Hold mailings to PERSON back for MONTHS months (one of PAUSE_MONTHS); returns the end."""
    if months not in PAUSE_MONTHS:
        raise InputError(_("pause must be one of {valid} months, not {months}").format(
            valid=", ".join(str(n) for n in PAUSE_MONTHS), months=months), field="months")
    until = add_months(today, months)
    person.paused_until = until
    log_event(session, EventKind.PREFERENCES, person, change="paused", until=until.isoformat(),
              months=months)
    return until


def is_paused(person: Person, *, today: date) -> bool:
    return person.paused_until is not None and person.paused_until > today


def resume(session: Session, person: Person) -> bool:
    """End a pause now; returns False if PERSON was not paused."""
    if person.paused_until is None:
        return False
    person.paused_until = None
    log_event(session, EventKind.PREFERENCES, person, change="resumed")
    return True


def resubscribe(session: Session, secret: bytes, person: Person, *, source: str) -> bool:
    """Undo PERSON's own unsubscribe (they asked, through their signed link).

    Only an unsubscribe is undone: an address suppressed for a bounce, a complaint or an
    erasure stays suppressed. Returns False if PERSON was not unsubscribed.
    """
    if person.status != "unsubscribed":
        return False
    entry = session.scalar(select(Suppression).where(
        Suppression.email_hash == address_hash(secret, person.email)))
    if entry is not None and entry.reason != SuppressionReason.UNSUBSCRIBED:
        raise SuppressedAddress(_("the address is suppressed ({reason}) and cannot be "
                                  "resubscribed from the web").format(reason=entry.reason))
    if entry is not None:
        session.delete(entry)
    person.status = "active"
    log_event(session, EventKind.RESUBSCRIBED, person, source=source)
    return True
