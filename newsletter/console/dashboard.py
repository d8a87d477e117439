"""/: the dashboard: this month's issue, upcoming webinars, the last mailings, and whether the
worker runs (its heartbeat; a warning when it has not been seen for a while). Read only."""

from __future__ import annotations

from flask import Blueprint, Response

from .. import content, issue_build, webinars
from ..errors import NewsletterError
from ..outbox import lifecycle
from ..staff import REDAKTOR
from . import access, workflow
from . import context as ctx

blueprint = Blueprint("dashboard", __name__)
RECENT_MAILINGS = 5


def issue_summary(month: str) -> dict | None:
    """Items per area and the check's counts of MONTH, or None if it has no issue yet."""
    settings = ctx.settings()
    if not (settings.issues_dir / month / "issue.md").is_file():
        return None
    try:
        issue, errors = content.scan_issue(settings, month)
        report = issue_build.check_issue(settings, month)
    except NewsletterError as exc:
        return {"month": month, "broken": str(exc)}
    return {"month": month, "broken": None, "subject": issue.subject,
            "areas": [(a, len(issue.items_in(a.slug))) for a in settings.areas],
            "items": len(issue.items), "errors": len(report.errors),
            "warnings": len(report.warnings)}


@blueprint.get("/")
@access.requires(REDAKTOR)
def index() -> Response:
    settings, session = ctx.settings(), ctx.db()
    month = ctx.this_month()
    return ctx.page(
        "dashboard.html", month=month, summary=issue_summary(month),
        months=content.issue_months(settings),
        webinars=webinars.upcoming(session, settings, ctx.now(), limit=5),
        mailings=lifecycle.list_mailings(session, limit=RECENT_MAILINGS),
        worker=workflow.worker_note(session))
