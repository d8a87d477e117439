"""List health: how many are on the list, who came, who left, by role and county, per period.

Worked out from what is already stored, no snapshots: persons (`created_at`, `status`), their
positions, and the event log (`unsubscribed`, `bounced`, `resubscribed`, `erased`). The size of
the list at a moment is the persons then in the register and active: created by then, and not
unsubscribed or bounced by then (a later `resubscribed` puts them back). Paused persons are on
the list.

Erasure really erases (GDPR): a person erased since leaves nothing but an `erased` event, so
past figures are recomputed without them, and the erasures of a period are counted as a total
only. A person with positions in two roles or two counties counts once in each row of that
breakdown, so its rows may add up to more than the total; a person without a position is
counted under "no role" and "no county".

Positions are read through `positions_at` alone, so that when positions get start and end
dates, only that function needs to learn which positions were held at a given moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .events import EventKind
from .i18n import _
from .models import Event, Municipality, Person, Position
from .settings import Settings

LEAVING = (EventKind.UNSUBSCRIBED, EventKind.BOUNCED)
RETURNING = (EventKind.RESUBSCRIBED,)


def no_role() -> str:
    return _("no role")


def no_county() -> str:
    return _("no county")


@dataclass(frozen=True)
class Flow:
    """One period's figures for one group: the size at its end and what changed during it."""

    size: int = 0
    new: int = 0
    unsubscribed: int = 0
    bounced: int = 0


@dataclass(frozen=True)
class Health:
    """A period's figures: in total, by role (slug) and by county (name)."""

    start: datetime
    end: datetime
    total: Flow
    erased: int
    by_role: dict[str, Flow] = field(default_factory=dict)
    by_county: dict[str, Flow] = field(default_factory=dict)


def month_bounds(settings: Settings, year: int, month: int) -> tuple[datetime, datetime]:
    """The start and end (exclusive) of a calendar month in the organisation's time zone."""
    tz = ZoneInfo(settings.organisation.timezone)
    start = datetime.combine(date(year, month, 1), time(), tz)
    after = date(year + month // 12, month % 12 + 1, 1)
    return start, datetime.combine(after, time(), tz)


def positions_at(session: Session, moment: datetime) -> dict[int, list[tuple[str, str]]]:
    """Person id -> the (role, county) of each position held at MOMENT.

    Today positions have no dates, so every stored position counts at any moment; this is the
    one place to change when they get a start and an end.
    """
    held: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for person_id, role, county in session.execute(
            select(Position.person_id, Position.role, Municipality.county)
            .outerjoin(Municipality, Municipality.id == Position.municipality_id)):
        held[person_id].append((role, county or no_county()))
    return held


class _Register:
    """The persons and their status changes, loaded once for any number of periods."""

    def __init__(self, session: Session) -> None:
        self.created: dict[int, datetime] = {}
        self.fallback: dict[int, datetime] = {}  # inactive without an event: since updated_at
        for pid, created, status, updated in session.execute(
                select(Person.id, Person.created_at, Person.status, Person.updated_at)
                .where(Person.status != "pending")):  # not confirmed: not on the list yet
            self.created[pid] = created
            if status != "active":
                self.fallback[pid] = updated
        self.changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        for pid, at, kind in session.execute(
                select(Event.person_id, Event.at, Event.kind)
                .where(Event.kind.in_(LEAVING + RETURNING), Event.person_id.is_not(None))
                .order_by(Event.at, Event.id)):
            self.changes[pid].append((at, kind))
        self.erasures = [at for (at,) in session.execute(
            select(Event.at).where(Event.kind == EventKind.ERASED))]

    def active_at(self, pid: int, moment: datetime) -> bool:
        if self.created[pid] >= moment:
            return False
        events = [kind for at, kind in self.changes.get(pid, ()) if at < moment]
        if events:
            return events[-1] in RETURNING
        if pid in self.fallback and not self.changes.get(pid):
            return self.fallback[pid] >= moment
        return True

    def left(self, kind: str, start: datetime, end: datetime) -> set[int]:
        return {pid for pid, changes in self.changes.items()
                if any(k == kind and start <= at < end for at, k in changes)}


def _flow(register: _Register, people: Iterable[int], start: datetime, end: datetime,
          unsubscribed: set[int], bounced: set[int], at: datetime) -> Flow:
    people = [p for p in people if p in register.created]
    return Flow(size=sum(register.active_at(p, at) for p in people),
                new=sum(start <= register.created[p] < end for p in people),
                unsubscribed=sum(p in unsubscribed for p in people),
                bounced=sum(p in bounced for p in people))


def _groups(held: Mapping[int, list[tuple[str, str]]], people: Iterable[int],
            index: int, none: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for pid in people:
        for key in sorted({pos[index] for pos in held.get(pid, ())} or {none}):
            groups[key].append(pid)
    return groups


def health(session: Session, periods: Iterable[tuple[datetime, datetime]], *,
           breakdown: bool = True, now: datetime | None = None) -> list[Health]:
    """The figures of each (start, end) period, with the breakdowns if BREAKDOWN; the size is
    the one at the end, or NOW for a period not yet over."""
    register = _Register(session)
    everyone = list(register.created)
    now = now or datetime.now(UTC)
    out = []
    for start, end in periods:
        at = min(end, now)
        unsubscribed = register.left(EventKind.UNSUBSCRIBED, start, end)
        bounced = register.left(EventKind.BOUNCED, start, end)
        total = _flow(register, everyone, start, end, unsubscribed, bounced, at)
        erased = sum(start <= at < end for at in register.erasures)
        by_role: dict[str, Flow] = {}
        by_county: dict[str, Flow] = {}
        if breakdown:
            held = positions_at(session, at)
            for key, people in _groups(held, everyone, 0, no_role()).items():
                by_role[key] = _flow(register, people, start, end, unsubscribed, bounced, at)
            for key, people in _groups(held, everyone, 1, no_county()).items():
                by_county[key] = _flow(register, people, start, end, unsubscribed, bounced,
                                       at)
        out.append(Health(start, end, total, erased, by_role, by_county))
    return out


def drop_empty(groups: Mapping[str, Flow]) -> dict[str, Flow]:
    """The groups that had anyone on the list or any change: the others say nothing."""
    return {k: f for k, f in groups.items() if f != Flow()}
