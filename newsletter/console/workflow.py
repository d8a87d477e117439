"""The review-and-send panel of the issue page and of a webinar's page, and the worker's
heartbeat as the console shows it.

Read only: `panel` asks review.py where a mail stands (its review against what it would send
now, its mailings), and says what the signed-in staff member may do next. The actions
themselves are console/review_pages.py's. Nothing here renders a page, so that compose.py and
webinar_pages.py can build the panel without importing the views that post to it.

Failure mode: a mail that cannot be rendered now (a broken item file, a webinar removed) still
gets a panel, with the reason instead of a state, so the page that shows it keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import request
from sqlalchemy.orm import Session

from .. import dates, heartbeat, review, schedule
from ..errors import NewsletterError
from ..i18n import _
from ..models import Mailing, MailingStatus
from ..staff import GRANSKARE, allows
from . import context as ctx


@dataclass
class Panel:
    """What the workflow panel shows of REF, and what the form posts to (ACTION: a path)."""

    ref: review.Ref
    action: str
    state: str = review.Shown.DRAFT
    label: str = ""
    status: review.ReviewStatus | None = None
    error: str | None = None  # it cannot be rendered now, or the last action was refused
    segments: list[str] = field(default_factory=list)
    segment: str = ""
    may_review: bool = False  # a granskare or an admin: approves, sends back, sends
    submitted_by_me: bool = False
    approval_required: bool = True
    scheduled: list[Mailing] = field(default_factory=list)
    earliest: str = ""  # the datetime-local input's min (local time, minutes)
    form: dict = field(default_factory=dict)  # what was posted, shown again after a refusal
    notice: str | None = None  # the confirmation of the last step (?steg=KEY)

    @property
    def review(self):
        return self.status.review if self.status else None

    @property
    def can_send(self) -> bool:
        """Whether the send form is offered (preflight decides when it is posted)."""
        return self.may_review and not self.scheduled and self.state in (
            review.Shown.APPROVED, review.Shown.DRAFT, review.Shown.IN_REVIEW,
            review.Shown.CHANGED, review.Shown.CHANGED_IN_REVIEW)


def _notice(key: str) -> str | None:
    """The confirmation a redirect's ?steg=KEY asks for (looked up per request)."""
    return {"inskickat": _("Submitted for review."), "godkant": _("Approved."),
            "tillbaka": _("Sent back to its author with your comment."),
            "skickas": _("The mailing is created and is being sent: follow it under Mailings."),
            "schemalagt": _("The mailing is scheduled: the worker sends it at that time.")}.get(
        key)


def _local_minute(moment: datetime) -> str:
    return moment.astimezone(dates.zone(ctx.settings())).strftime("%Y-%m-%dT%H:%M")


def panel(session: Session, ref: review.Ref, action: str, *, error: str | None = None,
          form: dict | None = None) -> Panel:
    """REF's panel for the signed-in staff member (see the module)."""
    settings = ctx.settings()
    me = ctx.signed_in().staff
    result = Panel(ref, action, error=error, form=form or {},
                   notice=None if error else _notice(request.args.get("steg", "")),
                   segments=sorted(settings.segments),
                   may_review=allows(me.role, GRANSKARE),
                   approval_required=review.approval_required(settings),
                   earliest=_local_minute(ctx.now() + timedelta(minutes=1)))
    try:
        source = review.source_for(session, settings, ref, now=ctx.now())
        result.status = review.status(session, settings, source)
    except NewsletterError as exc:
        result.error = result.error or str(exc)
        result.label = _("cannot be shown now")
        return result
    found = result.status.review
    result.state = result.status.state
    result.label = review.state_label(result.state)
    result.segment = (found.segment if found else "") or settings.workflow.issue_segment
    if result.segment not in result.segments:
        result.segments.append(result.segment)
    result.submitted_by_me = bool(found and found.submitted_by == me.email)
    result.scheduled = [m for m in result.status.mailings
                        if m.status == MailingStatus.SCHEDULED]
    return result


def scheduled_local(mailing: Mailing) -> str:
    """A scheduled mailing's time in the organisation's zone, for people."""
    return schedule.scheduled_at_local(ctx.settings(), mailing)


# --- the worker's heartbeat ---------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerNote:
    """When a worker last ran a round, and whether that is too long ago."""

    seen: datetime | None
    ago: str  # "12 s", "3 min", "2 h", "4 d"; "" when never seen
    stale: bool


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return _("{n} s").format(n=seconds)
    if seconds < 3600:
        return _("{n} min").format(n=seconds // 60)
    if seconds < 86400:
        return _("{n} h").format(n=seconds // 3600)
    return _("{n} d").format(n=seconds // 86400)


def worker_note(session: Session) -> WorkerNote:
    """The worker's heartbeat (heartbeat.last_seen) at the console's time."""
    now = ctx.now()
    seen = heartbeat.last_seen(session)
    return WorkerNote(seen, _ago(now - seen) if seen else "", heartbeat.is_stale(seen, now))
