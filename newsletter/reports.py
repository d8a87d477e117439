"""Reports: delivery, engagement and list health per mailing, month and year, from what is stored.

Delivery per mailing comes from its outbox rows: sent (accepted by the receiving server),
deferred (waiting for a retry, or reported delayed afterwards), bounced (a hard bounce during
the SMTP dialogue or reported afterwards), failed (refused for another reason), suppressed (left
out at sending time), and unsubscribed within UNSUBSCRIBE_DAYS of the person's message (their
`unsubscribed` event). Engagement comes from `tracked_links` (tracking.py): clicks by readers,
the reader estimates, and the scanner hits that were left out.

Small counts: a figure broken down below the mailing (per area, item, link, role, county) that
is under SMALL is shown as "<5" (`small`), on every surface (terminal, CSV, pages), so that no
breakdown can point at a few people. Totals per mailing, month and year are shown as they are.
Test copies ("[TEST]") are left out of every report.

The figures are grouped queries on the mailing tables, read only: the outbox package owns those
tables and is the only module that writes them; a report never changes what it reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from . import list_health
from .errors import InputError, NotFound
from .events import EventKind
from .i18n import _
from .list_health import Health
from .models import ArchivedIssue, Event, Mailing, OutboxRow, OutboxStatus, TrackedLink
from .settings import Settings

SMALL = 5
UNSUBSCRIBE_DAYS = 7
TOP_ITEMS = 10


def small(n: int) -> str:
    """N as shown in a breakdown below the mailing: "<5" when it is under SMALL."""
    return "<5" if n < SMALL else str(n)


@dataclass(frozen=True)
class Delivery:
    recipients: int = 0
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    pending: int = 0
    unsubscribed: int = 0  # within UNSUBSCRIBE_DAYS of their message

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(*(getattr(self, f) + getattr(other, f)
                          for f in Delivery.__dataclass_fields__))


@dataclass(frozen=True)
class Engagement:
    tracked: bool = False
    clicks: int = 0
    unique_clicks: int = 0
    readers: int = 0  # estimated: distinct clients a day who clicked anything in the mailing
    scanner_hits: int = 0

    def __add__(self, other: Engagement) -> Engagement:
        return Engagement(self.tracked or other.tracked, self.clicks + other.clicks,
                          self.unique_clicks + other.unique_clicks,
                          self.readers + other.readers, self.scanner_hits + other.scanner_hits)


@dataclass(frozen=True)
class Count:
    """Clicks on one thing below the mailing: an area, an item or a link."""

    key: str  # area slug, item id or link URL
    label: str  # what a reader sees: area name, item title, URL
    clicks: int
    readers: int  # area readers, unique clicks on an item or link
    area: str = ""  # an item's or link's area name
    month: str = ""  # an item's issue


@dataclass(frozen=True)
class MailingReport:
    id: int
    kind: str
    source: str
    segment: str
    subject: str
    created_at: datetime
    delivery: Delivery
    engagement: Engagement
    areas: list[Count] = field(default_factory=list)
    items: list[Count] = field(default_factory=list)
    links: list[Count] = field(default_factory=list)


@dataclass(frozen=True)
class MonthReport:
    month: str  # YYYY-MM
    mailings: list[MailingReport]
    health: Health


@dataclass(frozen=True)
class IssueYear:
    """One issue (all its mailings together) in the year report."""

    month: str
    subject: str
    delivery: Delivery
    engagement: Engagement
    areas: dict[str, int]  # area slug -> clicks


@dataclass(frozen=True)
class YearReport:
    year: int
    area_names: dict[str, str]  # slug -> name, the year's areas in order
    issues: list[IssueYear]
    others: list[MailingReport]  # targeted mailings and webinar messages
    top_items: list[Count]
    months: list[Health]  # January to December
    whole: Health  # the year, with the breakdowns


# --- one mailing -------------------------------------------------------------------------------

def _not_test():
    return ~Mailing.source.startswith("test:")


def _delivery(session: Session, mailing_ids: list[int]) -> dict[int, Delivery]:
    """Delivery per mailing, a handful of grouped queries whatever the number of rows."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for mid, status, n in session.execute(
            select(OutboxRow.mailing_id, OutboxRow.status, func.count())
            .where(OutboxRow.mailing_id.in_(mailing_ids))
            .group_by(OutboxRow.mailing_id, OutboxRow.status)):
        counts[mid][status] += n
    # The sender writes "hard bounce: ..." on a row refused with 5.1.x; a later delivery report
    # writes "bounce hard ..." or "bounce soft ..." (bounces.py). The one place that knows it.
    error = OutboxRow.last_error
    kind_of = func.substr(error, 1, 11).label("kind")
    for mid, kind, n in session.execute(
            select(OutboxRow.mailing_id, kind_of, func.count())
            .where(OutboxRow.mailing_id.in_(mailing_ids),
                   or_(error.like("hard bounce%"), error.like("bounce hard%"),
                       error.like("bounce soft%")))
            .group_by(OutboxRow.mailing_id, kind_of)):
        counts[mid]["soft" if kind.startswith("bounce soft") else "bounced"] += n
        if kind.startswith("hard bounce"):
            counts[mid]["failed_bounce"] += n  # failed as a bounce, not for another reason
    window = timedelta(days=UNSUBSCRIBE_DAYS)
    left: set[tuple[int, int]] = set()
    for mid, pid, sent_at, at in session.execute(
            select(OutboxRow.mailing_id, OutboxRow.person_id, OutboxRow.sent_at, Event.at)
            .join(Event, and_(Event.person_id == OutboxRow.person_id,
                              Event.kind == EventKind.UNSUBSCRIBED, Event.at >= OutboxRow.sent_at))
            .where(OutboxRow.mailing_id.in_(mailing_ids), OutboxRow.sent_at.is_not(None))):
        if at - sent_at <= window:
            left.add((mid, pid))
    for mid, _pid in left:
        counts[mid]["unsubscribed"] += 1
    out = {}
    for mid in mailing_ids:
        c = counts[mid]
        out[mid] = Delivery(
            recipients=sum(c[s] for s in OutboxStatus),
            sent=c["sent"], deferred=c["deferred"] + c["soft"], bounced=c["bounced"],
            failed=c["failed"] - c["failed_bounce"], suppressed=c["suppressed"],
            pending=c["pending"] + c["sending"],
            unsubscribed=c["unsubscribed"])
    return out


def _engagement(session: Session, mailing_ids: list[int]) -> dict[int, Engagement]:
    out = {mid: Engagement() for mid in mailing_ids}
    for mid, clicks, unique, readers, scanners in session.execute(
            select(TrackedLink.mailing_id, func.sum(TrackedLink.clicks),
                   func.sum(TrackedLink.unique_clicks), func.sum(TrackedLink.readers),
                   func.sum(TrackedLink.scanner_hits))
            .where(TrackedLink.mailing_id.in_(mailing_ids))
            .group_by(TrackedLink.mailing_id)):
        out[mid] = Engagement(True, int(clicks or 0), int(unique or 0), int(readers or 0),
                              int(scanners or 0))
    return out


def area_names(session: Session, settings: Settings, month: str | None) -> dict[str, str]:
    """Area slug -> name as the issue of MONTH used them (the archive), else as configured."""
    names = {a.slug: a.name for a in settings.areas}
    if month:
        manifest = session.scalar(select(ArchivedIssue.manifest)
                                  .where(ArchivedIssue.month == month)) or {}
        names.update(manifest.get("area_names") or {})
    return names


def _links(session: Session, mailing_ids: list[int]) -> list[TrackedLink]:
    return list(session.scalars(select(TrackedLink).where(TrackedLink.mailing_id.in_(
        mailing_ids)).order_by(TrackedLink.mailing_id, TrackedLink.number)))


def _area_counts(links: Iterable[TrackedLink], names: dict[str, str]) -> list[Count]:
    clicks: dict[str, int] = defaultdict(int)
    readers: dict[str, int] = defaultdict(int)
    for link in links:
        if link.area:
            clicks[link.area] += link.clicks
            readers[link.area] += link.area_readers
    order = list(names) + sorted(set(clicks) - set(names))
    return [Count(slug, names.get(slug, slug), clicks[slug], readers[slug])
            for slug in order if slug in clicks]


def _item_counts(links: Iterable[TrackedLink], names: dict[str, str],
                 month: str = "") -> list[Count]:
    items: dict[str, list[TrackedLink]] = {}
    for link in links:
        if link.item:
            items.setdefault(link.item, []).append(link)
    return [Count(item, ls[0].title or item, sum(x.clicks for x in ls),
                  sum(x.unique_clicks for x in ls), names.get(ls[0].area or "", ""), month)
            for item, ls in items.items()]


def mailing_report(session: Session, settings: Settings, mailing_id: int) -> MailingReport:
    """Delivery and engagement of one mailing, with its areas, items and links."""
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise NotFound(_("no mailing {id} (newsletter send status lists them)").format(
            id=mailing_id))
    return _mailing_reports(session, settings, [mailing], detail=True)[0]


def _mailing_reports(session: Session, settings: Settings, mailings: list[Mailing], *,
                     detail: bool) -> list[MailingReport]:
    ids = [m.id for m in mailings]
    delivery = _delivery(session, ids)
    engagement = _engagement(session, ids)
    links: dict[int, list[TrackedLink]] = defaultdict(list)
    if detail:
        for link in _links(session, ids):
            links[link.mailing_id].append(link)
    out = []
    for m in mailings:
        month = m.source if m.kind == "issue" else None
        names = area_names(session, settings, month)
        own = links[m.id]
        out.append(MailingReport(
            id=m.id, kind=m.kind, source=m.source, segment=m.segment, subject=m.subject,
            created_at=m.created_at, delivery=delivery[m.id], engagement=engagement[m.id],
            areas=_area_counts(own, names),
            items=sorted(_item_counts(own, names), key=lambda c: -c.clicks),
            links=[Count(x.url, x.title or x.url, x.clicks, x.unique_clicks,
                         names.get(x.area or "", "")) for x in own]))
    return out


# --- a month, a year ---------------------------------------------------------------------------

def _parse_month(month: str) -> tuple[int, int]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        if len(month) == 7 and 1 <= mon <= 12:
            return year, mon
    except ValueError:
        pass
    raise InputError(_("not a month: “{month}” (write YYYY-MM, e.g. 2026-12)").format(
        month=month), field="month")


def month_report(session: Session, settings: Settings, month: str,
                 now: datetime | None = None) -> MonthReport:
    """The mailings of MONTH (an issue by its month, the others by when they were created)
    and the list's health that month, by role and county."""
    year, mon = _parse_month(month)
    start, end = list_health.month_bounds(settings, year, mon)
    mailings = [m for m in session.scalars(select(Mailing).where(_not_test())
                                           .order_by(Mailing.id))
                if (m.source == month if m.kind == "issue"
                    else start <= m.created_at < end)]
    return MonthReport(month, _mailing_reports(session, settings, mailings, detail=True),
                       list_health.health(session, [(start, end)], now=now)[0])


def year_report(session: Session, settings: Settings, year: int,
                now: datetime | None = None) -> YearReport:
    """The year: each issue's delivery and clicks per area, the other mailings, the items
    most read, and the list month by month (months still to come are left out)."""
    if not 2000 <= year <= 2999:
        raise InputError(_("not a year: {year}").format(year=year), field="year")
    now = now or datetime.now(UTC)
    start = list_health.month_bounds(settings, year, 1)[0]
    end = list_health.month_bounds(settings, year, 12)[1]
    mailings = list(session.scalars(select(Mailing).where(_not_test()).order_by(Mailing.id)))
    issues = [m for m in mailings if m.kind == "issue" and m.source.startswith(f"{year}-")]
    others = [m for m in mailings if m.kind != "issue" and start <= m.created_at < end]
    names = {a.slug: a.name for a in settings.areas}
    by_month: dict[str, list[Mailing]] = defaultdict(list)
    for m in issues:
        by_month[m.source].append(m)
    ids = [m.id for m in issues]
    delivery, engagement = _delivery(session, ids), _engagement(session, ids)
    links = _links(session, ids)
    issue_rows, items = [], []
    for month in sorted(by_month):
        ms = by_month[month]
        used = area_names(session, settings, month)
        for slug, name in used.items():
            names.setdefault(slug, name)
        own = [x for x in links if x.mailing_id in {m.id for m in ms}]
        clicks: dict[str, int] = defaultdict(int)
        for x in own:
            if x.area:
                clicks[x.area] += x.clicks
        issue_rows.append(IssueYear(
            month, ms[0].subject, sum((delivery[m.id] for m in ms), Delivery()),
            sum((engagement[m.id] for m in ms), Engagement()), dict(clicks)))
        items += _item_counts(own, used, month)
    top = sorted(items, key=lambda c: (-c.clicks, c.month, c.label))[:TOP_ITEMS]
    periods = [list_health.month_bounds(settings, year, m) for m in range(1, 13)]
    periods = [p for p in periods if p[0] <= now]
    months = list_health.health(session, periods, breakdown=False, now=now)
    whole = list_health.health(session, [(start, end)], now=now)[0]
    return YearReport(year, names, issue_rows,
                      _mailing_reports(session, settings, others, detail=False),
                      top, months, whole)


def _year_of(settings: Settings, mailing: Mailing) -> int:
    """The year a mailing counts in: an issue's by its month, the others' by their creation."""
    if mailing.kind == "issue" and mailing.source[:4].isdigit():
        return int(mailing.source[:4])
    return mailing.created_at.astimezone(ZoneInfo(settings.organisation.timezone)).year


def year_mailings(session: Session, settings: Settings, year: int) -> list[MailingReport]:
    """Delivery and engagement of each mailing of YEAR (issues by their month, the others by
    when they were created), oldest first; test copies left out."""
    mailings = [m for m in session.scalars(select(Mailing).where(_not_test())
                                           .order_by(Mailing.id))
                if _year_of(settings, m) == year]
    return _mailing_reports(session, settings, mailings, detail=False)


def report_years(session: Session, settings: Settings) -> list[int]:
    """The years that have mailings (test copies aside), newest first."""
    return sorted({_year_of(settings, m) for m in session.scalars(
        select(Mailing).where(_not_test()))}, reverse=True)


def parse_target(text: str) -> tuple[str, str]:
    """What `report TARGET` means: ("mailing", "12") or ("month", "2026-12")."""
    if text.isdigit():
        return "mailing", text
    _parse_month(text)
    return "month", text

