"""/utskick: every mailing with its state and progress; one mailing's recipients per state and
its failures with the reasons the servers gave; pause, resume, and cancel a scheduled one.

The counts are read from the outbox (lifecycle.mailing_status) at every request, so the page is
the ledger, not a copy of it. While a mailing is under way the progress region carries
`data-live`; console.js then fetches the page again every few seconds and swaps the region in
(without script the "Update" link does the same).

Pause and cancel are single statements of the ledger (lifecycle.pause; schedule.cancel is a
compare-and-set, so a worker that has just started the mailing wins and the cancel is refused
with the reason). Resume (lifecycle.unpause, deferred messages due at once) hands the mailing to
the console's background sender, as `send resume` does; a running worker takes its share too,
the claims keep everyone to one copy.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request

from .. import labels, schedule
from ..errors import NewsletterError
from ..events import EventKind
from ..i18n import _
from ..models import MailingStatus, OutboxStatus
from ..outbox import lifecycle, sending
from ..staff import GRANSKARE, REDAKTOR
from . import access, workflow
from . import context as ctx

blueprint = Blueprint("mailings", __name__)
LIST_LIMIT = 100
FAILURES_SHOWN = 200
LIVE = (MailingStatus.SENDING, MailingStatus.SCHEDULED)


def _notice(key: str) -> str | None:
    return {"pausat": _("The mailing is paused."),
            "fortsatt": _("The mailing goes on: what is left is being sent."),
            "avbrutet": _("The scheduled mailing is cancelled; nothing was sent.")}.get(key)


def counts(progress: lifecycle.MailingProgress) -> list[tuple[str, str, int]]:
    """(css key, label, count) of a mailing's recipients per state, in the order people read."""
    c = progress.counts
    return [("sent", labels.outbox_status(OutboxStatus.SENT), c[OutboxStatus.SENT]),
            ("waiting", labels.outbox_status(OutboxStatus.PENDING),
             c[OutboxStatus.PENDING] + c[OutboxStatus.SENDING]),
            ("deferred", labels.outbox_status(OutboxStatus.DEFERRED), c[OutboxStatus.DEFERRED]),
            ("bounced", labels.bounced(), progress.bounced),
            ("failed", labels.outbox_status(OutboxStatus.FAILED), progress.failed),
            ("suppressed", labels.outbox_status(OutboxStatus.SUPPRESSED),
             c[OutboxStatus.SUPPRESSED])]


@blueprint.get("/utskick")
@access.requires(REDAKTOR)
def index() -> Response:
    session = ctx.db()
    mailings = lifecycle.list_mailings(session, limit=LIST_LIMIT)
    rows = [(p, lifecycle.audience(session, p.mailing), counts(p)) for p in mailings]
    return ctx.page("mailings.html", rows=rows, worker=workflow.worker_note(session),
                    live=any(p.mailing.status in LIVE for p in mailings),
                    scheduled=any(p.mailing.status == MailingStatus.SCHEDULED
                                  for p in mailings))


def mailing_page(mailing_id: int, *, status: int = 200, error: str | None = None) -> Response:
    session = ctx.db()
    progress = lifecycle.mailing_status(session, mailing_id, failures=FAILURES_SHOWN)
    m = progress.mailing
    return ctx.page("mailing.html", status=status, p=progress, m=m, counts=counts(progress),
                    audience=lifecycle.audience(session, m), worker=workflow.worker_note(session),
                    live=m.status in LIVE, error=error,
                    problems=[(p, labels.bounced() if p.error.startswith(sending.HARD_BOUNCE)
                               else labels.outbox_status(p.state)) for p in progress.problems],
                    notice=_notice(request.args.get("meddelande", "")))


@blueprint.get("/utskick/<int:mailing_id>")
@access.requires(REDAKTOR)
def show(mailing_id: int) -> Response:
    return mailing_page(mailing_id)


def _act(mailing_id: int, step: str, kind: EventKind, action) -> Response:
    try:
        action()
    except NewsletterError as exc:
        ctx.db().rollback()
        return mailing_page(mailing_id, status=409 if exc.http_status < 500 else 500,
                            error=str(exc))  # SendError (400): the state forbids it
    ctx.audit(kind, mailing=mailing_id)
    return redirect(f"/utskick/{mailing_id}?meddelande={step}", code=303)


@blueprint.post("/utskick/<int:mailing_id>/pausa")
@access.requires(GRANSKARE)
def pause(mailing_id: int) -> Response:
    who = ctx.signed_in().staff.email
    return _act(mailing_id, "pausat", EventKind.CONSOLE_MAILING_PAUSED,
                lambda: lifecycle.pause(ctx.db(), mailing_id,
                                     _("paused in the console by {who}").format(who=who)))


@blueprint.post("/utskick/<int:mailing_id>/fortsatt")
@access.requires(GRANSKARE)
def resume(mailing_id: int) -> Response:
    def go() -> None:
        ctx.context().background.check()
        lifecycle.unpause(ctx.db(), mailing_id)
    response = _act(mailing_id, "fortsatt", EventKind.CONSOLE_MAILING_RESUMED, go)
    if response.status_code == 303:
        ctx.db().commit()  # before the background sender looks for it
        ctx.send_later([mailing_id])
    return response


@blueprint.post("/utskick/<int:mailing_id>/avbryt")
@access.requires(GRANSKARE)
def cancel(mailing_id: int) -> Response:
    who = ctx.signed_in().staff.email
    return _act(mailing_id, "avbrutet", EventKind.CONSOLE_MAILING_CANCELLED,
                lambda: schedule.cancel(ctx.db(), mailing_id, by=who))
