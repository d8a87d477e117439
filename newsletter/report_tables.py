"""The reports as tables: one set of rows for the terminal, the CSV file and the year page.

Every breakdown below the mailing goes through `reports.small` here, once, so that no surface
can show a small count that another hides.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from .csvfiles import neutralise
from .files import atomic_write
from .i18n import _, ngettext
from .list_health import Flow, Health, drop_empty, no_county
from .reports import (
    Count,
    Delivery,
    Engagement,
    MailingReport,
    MonthReport,
    YearReport,
    mailing_report,
    month_report,
    parse_target,
    small,
    year_report,
)
from .settings import Settings

ONE_PERSON = "person:"  # the label of a mailing to one person (outbox.creating: persons=)


@dataclass(frozen=True)
class Table:
    """A titled table; NUMERIC says which columns hold figures (aligned right)."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: tuple[bool, ...]
    note: str = ""


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
           numeric: Sequence[bool], note: str = "") -> Table:
    return Table(title, tuple(headers), [tuple(str(c) for c in r) for r in rows],
                 tuple(numeric), note)


def _kind(kind: str) -> str:
    return {"issue": _("issue"), "targeted": _("targeted"), "webinar": _("webinar")}.get(
        kind, kind)


def delivery_rows(d: Delivery) -> list[tuple[str, int]]:
    return [(_("Recipients"), d.recipients), (_("Sent"), d.sent),
            (_("Deferred"), d.deferred), (_("Bounced"), d.bounced), (_("Failed"), d.failed),
            (_("Left out at sending time"), d.suppressed),
            (_("Still to send"), d.pending),
            (_("Unsubscribed within 7 days"), d.unsubscribed)]


def engagement_rows(e: Engagement) -> list[tuple[str, int | str]]:
    if not e.tracked:
        return [(_("Clicks"), _("not counted (tracking was off)"))]
    return [(_("Clicks by readers"), e.clicks), (_("Unique clicks (estimate)"), e.unique_clicks),
            (_("Readers who clicked (estimate)"), e.readers),
            (_("Link scanner requests left out"), e.scanner_hits)]


def _small_note() -> str:
    return _("Counts under 5 are shown as <5.")


def mailing_tables(report: MailingReport) -> list[Table]:
    title = _("Mailing {id}: {subject}").format(id=report.id, subject=report.subject)
    tables = [_table(title, (_("Measure"), _("Count")),
                     delivery_rows(report.delivery) + engagement_rows(report.engagement),
                     (False, True),
                     note=_("{kind} to {segment}, created {when}").format(
                         kind=_kind(report.kind), segment=report.segment,
                         when=report.created_at.strftime("%Y-%m-%d %H:%M UTC")))]
    if not report.engagement.tracked:
        return tables
    if report.areas:
        tables.append(_table(_("Clicks per priority area"),
                             (_("Priority area"), _("Clicks"), _("Readers (estimate)")),
                             [(c.label, small(c.clicks), small(c.readers)) for c in report.areas],
                             (False, True, True), _small_note()))
    if report.items:
        tables.append(_items_table(_("Clicks per item"), report.items, with_month=False))
    tables.append(_table(_("Clicks per link"), ("#", _("Link"), _("Priority area"), _("Clicks")),
                         [(i, c.key, c.area or "–", small(c.clicks))
                          for i, c in enumerate(report.links, 1)],
                         (True, False, False, True), _small_note()))
    return tables


def _items_table(title: str, items: Sequence[Count], *, with_month: bool) -> Table:
    head = ((_("Issue"),) if with_month else ()) + (_("Item"), _("Priority area"), _("Clicks"),
                                                    _("Unique clicks"))
    rows = [((c.month,) if with_month else ()) + (c.label, c.area or "–", small(c.clicks),
                                                  small(c.readers)) for c in items]
    return _table(title, head, rows, (False,) * (len(head) - 2) + (True, True), _small_note())


def mailings_table(title: str, reports: Sequence[MailingReport]) -> Table:
    return _table(title, ("ID", _("Kind"), _("Subject"), _("Recipients"), _("Sent"),
                          _("Bounced"), _("Unsubscribed within 7 days"), _("Clicks"),
                          _("Readers (estimate)")),
                  [(r.id, _kind(r.kind), r.subject, r.delivery.recipients, r.delivery.sent,
                    r.delivery.bounced, r.delivery.unsubscribed,
                    r.engagement.clicks if r.engagement.tracked else "–",
                    r.engagement.readers if r.engagement.tracked else "–") for r in reports],
                  (True, False, False, True, True, True, True, True, True))


def delivery_table(title: str, reports: Sequence[MailingReport]) -> Table:
    """Each mailing's delivery: what became of its messages (totals per mailing, shown as
    they are). Messages to one person each (a webinar confirmation: the segment is the label
    "person:PUBLIC_ID") are one row together: a row each would be one person's delivery."""
    group = [r for r in reports if not r.segment.startswith(ONE_PERSON)]
    alone = [r for r in reports if r.segment.startswith(ONE_PERSON)]
    rows: list[tuple[object, ...]] = [
        (r.id, _kind(r.kind), r.subject, r.segment, *_delivery_cells(r.delivery))
        for r in group]
    if alone:
        rows.append(("–", _kind(alone[0].kind) if len({r.kind for r in alone}) == 1 else "–",
                     ngettext("{n} message to one person (confirmations and the like)",
                              "{n} messages to one person each (confirmations and the like)",
                              len(alone)).format(n=len(alone)), "–",
                     *_delivery_cells(sum((r.delivery for r in alone), Delivery()))))
    return _table(title, ("ID", _("Kind"), _("Subject"), _("To"), _("Recipients"), _("Sent"),
                          _("Deferred"), _("Bounced"), _("Failed"),
                          _("Left out at sending time"), _("Still to send"),
                          _("Unsubscribed within 7 days")),
                  rows, (True, False, False, False) + (True,) * 8)


def _delivery_cells(d: Delivery) -> tuple[int, ...]:
    return (d.recipients, d.sent, d.deferred, d.bounced, d.failed, d.suppressed, d.pending,
            d.unsubscribed)


def _flow_row(f: Flow, shown=str) -> tuple[str, ...]:
    return (shown(f.size), shown(f.new), shown(f.unsubscribed), shown(f.bounced))


def _flow_headers() -> tuple[str, ...]:
    return (_("On the list at the end"), _("New"), _("Unsubscribed"), _("Bounced"))


def health_tables(settings: Settings, health: Health, period: str) -> list[Table]:
    roles = dict(settings.roles)
    tables = [_table(_("The list, {period}").format(period=period),
                     (_("Measure"), _("Count")),
                     list(zip(_flow_headers(), _flow_row(health.total), strict=True))
                     + [(_("Erased (GDPR)"), str(health.erased))], (False, True))]
    by_role = drop_empty(health.by_role)
    order = [r for r in roles if r in by_role] + sorted(set(by_role) - set(roles))
    tables.append(_table(_("The list by role, {period}").format(period=period),
                         (_("Role"),) + _flow_headers(),
                         [(roles.get(r, r),)
                          + _flow_row(by_role[r], small) for r in order],
                         (False, True, True, True, True),
                         _small_note() + " " + _("A person with two roles counts in both.")))
    by_county = drop_empty(health.by_county)
    counties = sorted(c for c in by_county if c != no_county()) + (
        [no_county()] if no_county() in by_county else [])
    tables.append(_table(_("The list by county, {period}").format(period=period),
                         (_("County"),) + _flow_headers(),
                         [(c,) + _flow_row(by_county[c], small) for c in counties],
                         (False, True, True, True, True), _small_note()))
    return tables


def month_tables(settings: Settings, report: MonthReport) -> list[Table]:
    tables = [mailings_table(_("Mailings, {month}").format(month=report.month),
                             report.mailings)]
    for mailing in report.mailings:
        if mailing.engagement.tracked and mailing.areas:
            tables.append(_table(
                _("Clicks per priority area, mailing {id}").format(id=mailing.id),
                (_("Priority area"), _("Clicks"), _("Readers (estimate)")),
                [(c.label, small(c.clicks), small(c.readers)) for c in mailing.areas],
                (False, True, True), _small_note()))
    return tables + health_tables(settings, report.health, report.month)


def year_tables(settings: Settings, report: YearReport) -> list[Table]:
    """The year's tables, in the order the year page shows them."""
    return [issues_table(report), areas_table(report), top_items_table(report),
            growth_table(report),
            mailings_table(_("Other mailings, {year}").format(year=report.year), report.others),
            *health_tables(settings, report.whole, str(report.year))]


def issues_table(report: YearReport) -> Table:
    return _table(_("The issues of {year}").format(year=report.year),
                  (_("Issue"), _("Subject"), _("Recipients"), _("Sent"), _("Bounced"),
                   _("Unsubscribed within 7 days"), _("Clicks"), _("Readers (estimate)"),
                   _("Scanner requests left out")),
                  [(i.month, i.subject, i.delivery.recipients, i.delivery.sent,
                    i.delivery.bounced, i.delivery.unsubscribed,
                    i.engagement.clicks if i.engagement.tracked else "–",
                    i.engagement.readers if i.engagement.tracked else "–",
                    i.engagement.scanner_hits if i.engagement.tracked else "–")
                   for i in report.issues],
                  (False, False, True, True, True, True, True, True, True))


def area_slugs(report: YearReport) -> list[str]:
    """The areas with clicks in some issue, in the order of the year's areas."""
    used = {slug for i in report.issues for slug in i.areas}
    return [s for s in report.area_names if s in used] + sorted(used - set(report.area_names))


def areas_table(report: YearReport) -> Table:
    tracked = [i for i in report.issues if i.engagement.tracked]
    return _table(_("Clicks per priority area and issue, {year}").format(year=report.year),
                  (_("Priority area"),) + tuple(i.month for i in tracked) + (_("Year"),),
                  [(report.area_names.get(s, s),)
                   + tuple(small(i.areas.get(s, 0)) for i in tracked)
                   + (small(sum(i.areas.get(s, 0) for i in tracked)),)
                   for s in area_slugs(report)],
                  (False,) + (True,) * (len(tracked) + 1), _small_note())


def top_items_table(report: YearReport) -> Table:
    return _items_table(_("The items most read, {year}").format(year=report.year),
                        report.top_items, with_month=True)


def growth_table(report: YearReport) -> Table:
    return _table(_("The list month by month, {year}").format(year=report.year),
                  (_("Month"),) + _flow_headers() + (_("Erased (GDPR)"),),
                  [(h.start.strftime("%Y-%m"),) + _flow_row(h.total) + (str(h.erased),)
                   for h in report.months],
                  (False, True, True, True, True, True))


def write_csv(path: Path, tables: Sequence[Table], *, delimiter: str = ",") -> None:
    """TABLES into one CSV file, each as a title row, a header row and its rows, a blank line
    between them; UTF-8 with BOM (Excel), formula-safe, written atomically."""
    with atomic_write(path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n")
        for i, table in enumerate(tables):
            if i:
                writer.writerow([])
            writer.writerow([neutralise(table.title)])
            writer.writerow([neutralise(h) for h in table.headers])
            writer.writerows([neutralise(c) for c in row] for row in table.rows)
            if table.note:
                writer.writerow([neutralise(table.note)])


@dataclass(frozen=True)
class Built:
    """What `newsletter report` shows: the tables, and the year report for the year page."""

    tables: list[Table]
    year: YearReport | None = None


def build(session: Session, settings: Settings, target: str | None = None,
          year: int | None = None, now: datetime | None = None) -> Built:
    """The report of TARGET (a mailing id or YYYY-MM) or of YEAR (default: this year)."""
    if target is not None:
        kind, value = parse_target(target)
        if kind == "mailing":
            return Built(mailing_tables(mailing_report(session, settings, int(value))))
        return Built(month_tables(settings, month_report(session, settings, value, now=now)))
    now = now or datetime.now(UTC)
    if year is None:
        year = now.astimezone(ZoneInfo(settings.organisation.timezone)).year
    report = year_report(session, settings, year, now=now)
    return Built(year_tables(settings, report), report)
