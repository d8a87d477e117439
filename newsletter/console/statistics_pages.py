"""/statistik: engagement and delivery for staff: the year's charts, each with its table beside
it (year_page.figures: server-rendered SVG, no script), each mailing's delivery, the list's
health; a mailing's own report; the printable year page for the autumn meeting.

Everything comes from reports.py and report_tables.py, the same figures `newsletter report`
prints: a breakdown below the mailing under reports.SMALL is "<5" here too. Read only.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Blueprint, Response, request

from .. import report_tables, reports, year_page
from ..i18n import _
from ..staff import REDAKTOR
from . import access
from . import context as ctx

blueprint = Blueprint("statistics", __name__)
NONE = "'none'"
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _year() -> int:
    year = request.args.get("ar", type=int)
    return year if year is not None else ctx.today().year


@blueprint.get("/statistik")
@access.requires(REDAKTOR)
def index() -> Response:
    settings, session = ctx.settings(), ctx.db()
    year = _year()
    report = reports.year_report(session, settings, year, now=ctx.now())
    mailings = reports.year_mailings(session, settings, year)
    years = sorted({*reports.report_years(session, settings), ctx.today().year, year},
                   reverse=True)
    return ctx.page(
        "statistics.html", year=year, years=years, report=report,
        figures=year_page.figures(report), issues=report_tables.issues_table(report),
        delivery=report_tables.delivery_table(
            _("Each mailing of {year}").format(year=year), mailings),
        health=report_tables.health_tables(settings, report.whole, str(year)),
        growth=report_tables.growth_table(report), tracking=settings.tracking.clicks,
        totals=report.whole.total, small=reports.SMALL)


@blueprint.get("/statistik/utskick/<int:mailing_id>")
@access.requires(REDAKTOR)
def mailing(mailing_id: int) -> Response:
    report = reports.mailing_report(ctx.db(), ctx.settings(), mailing_id)
    return ctx.page("statistics_mailing.html", report=report,
                    tables=report_tables.mailing_tables(report), small=reports.SMALL)


@blueprint.get("/statistik/ar/<int:year>")
@access.requires(REDAKTOR)
def year_document(year: int) -> Response:
    """The printable year page (year_page.py) as it is: one document, its CSS inline, which
    the page's Content-Security-Policy allows by its hash alone (no script, no other style)."""
    report = reports.year_report(ctx.db(), ctx.settings(), year, now=ctx.now())
    html = year_page.render_year_page(ctx.settings(), report, now=ctx.now())
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
        for style in _STYLE.findall(html))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {hashes or NONE}; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return response
