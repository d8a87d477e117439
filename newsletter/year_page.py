"""The printable year page for the autumn meeting: the year report as charts beside tables.

`figures(report)` gives each chart with its table (what a console page can mount as it is);
`render_year_page(settings, report)` puts them in `templates/reports/year.html`, one
self-contained HTML file (its CSS inline, no script, no external file) that prints on A4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from . import charts, i18n
from .files import atomic_write
from .i18n import _, pgettext
from .list_health import Flow
from .report_tables import (
    Table,
    area_slugs,
    areas_table,
    growth_table,
    health_tables,
    issues_table,
    mailings_table,
    top_items_table,
)
from .reports import SMALL, YearReport, small
from .settings import Settings

LOCALE = "sv_SE"


@dataclass(frozen=True)
class Figure:
    """A chart (one or more SVGs) and the table with the same figures, under one heading."""

    id: str
    title: str
    text: str
    svgs: list[Markup]
    table: Table
    panels: list[str] = field(default_factory=list)  # a heading per SVG, for small multiples


def _month_label(month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return format_date(date(year, mon, 1), "LLL", locale=LOCALE).rstrip(".")


def _month_bar(month: str, n: int) -> charts.Bar:
    """A breakdown's column: under SMALL it has no height and says "<5"."""
    return charts.Bar(_month_label(month), n if n >= SMALL else 0, small(n), hint=month)


def _same_figures() -> str:
    return _("The same figures are in the table beside the chart.")


def figures(report: YearReport) -> list[Figure]:
    """The year's charts, each with its table."""
    out = []
    tracked = [i for i in report.issues if i.engagement.tracked]
    if tracked:
        slugs = area_slugs(report)
        top = max([i.areas.get(s, 0) for i in tracked for s in slugs] + [SMALL])
        svgs, panels = [], []
        for n, slug in enumerate(slugs):
            name = report.area_names.get(slug, slug)
            data = [_month_bar(i.month, i.areas.get(slug, 0)) for i in tracked]
            svgs.append(Markup(charts.columns(
                f"area-{n}", _("Clicks on {area}, per issue").format(area=name),
                _same_figures(), data, scale_max=top)))
            panels.append(name)
        out.append(Figure("areas", _("Clicks per priority area and issue"),
                          _("What the members opened in each priority area, issue by issue "
                            "(clicks by readers, link scanners left out)."),
                          svgs, areas_table(report), panels))
    if report.top_items:
        data = [charts.Bar(c.label, c.clicks if c.clicks >= SMALL else 0, small(c.clicks),
                           hint=f"{c.month} · {c.area}: {c.label}") for c in report.top_items]
        out.append(Figure("items", _("The items most read"),
                          _("The items whose links were clicked most, over the year."),
                          [Markup(charts.bars("items-chart", _("The items most read"),
                                              _same_figures(), data))],
                          top_items_table(report)))
    if report.months:
        sizes = [charts.Bar(_month_label(h.start.strftime("%Y-%m")), h.total.size,
                            str(h.total.size)) for h in report.months]
        flows = [(_month_label(h.start.strftime("%Y-%m")), h.total.new,
                  h.total.unsubscribed + h.total.bounced) for h in report.months]
        out.append(Figure(
            "growth", _("The list over the year"),
            _("How many were on the list at the end of each month, and how many came and "
              "left (unsubscribed or bounced)."),
            [Markup(charts.columns("growth-size", _("On the list at the end of each month"),
                                   _same_figures(), sizes)),
             Markup(charts.diverging("growth-flow", _("New and left, per month"),
                                     _same_figures(), flows, up_label=_("New"),
                                     down_label=pgettext("left the list", "Left")))],
            growth_table(report), [_("On the list"), _("New and left")]))
    return out


def _environment(settings: Settings) -> Environment:
    env = Environment(loader=FileSystemLoader([str(d) for d in settings.templates_dirs]),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    i18n.install(env)
    return env


def render_year_page(settings: Settings, report: YearReport,
                     now: datetime | None = None) -> str:
    """The year page as one HTML document."""
    now = now or datetime.now(UTC)
    issues = issues_table(report)
    more = [mailings_table(_("Other mailings, {year}").format(year=report.year), report.others),
            *health_tables(settings, report.whole, str(report.year))]
    totals = report.whole.total
    return _environment(settings).get_template("reports/year.html").render(
        org=settings.organisation, year=report.year, figures=figures(report), issues=issues,
        more=more, made=format_date(now.date(), "d MMMM y", locale=LOCALE),
        totals=totals if totals != Flow() else None, small=SMALL)


def write_year_page(settings: Settings, report: YearReport, path: Path) -> None:
    """Write the year page to PATH atomically (counts only: no personal data in it)."""
    html = render_year_page(settings, report)
    with atomic_write(path) as fh:
        fh.write(html)
