"""Review, approval and sending from the console: the forms of the workflow panel on the issue
page (/nummer/YYYY-MM/...) and on a webinar's page (/webbinarier/SLUG/..., its announcement).

Each POST makes one call to the core with the signed-in staff member as `by`, so the rules are
review.py's and preflight.py's, not this module's: any staff member submits; a granskare or an
admin who did not submit it approves or sends it back; only they send, and a send passes
preflight first. A refusal shows the page again with the core's one-line reason (and 409 for
a refusal, the author's own approval included: the page answers, the request conflicts with
where the mail stands).

A request never sends. "Send now" creates the mailing (schedule.send_now, or
webinars.announce) and commits; the console's background sender then sends it (context.
send_later), and a running worker would too. "Schedule" freezes the content in a scheduled
mailing (schedule.schedule) that the worker starts when its time comes. The time is a
<input type="datetime-local"> in the organisation's time zone, read like `send issue --at`:
a time the clocks skip is refused, a repeated hour is its first occurrence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, redirect, request

from .. import preflight, review, schedule, webinars
from ..errors import InputError, NewsletterError, Refused
from ..events import EventKind
from ..i18n import _
from ..kinds import webinar as webinar_kind
from ..models import MailingKind
from ..outbox import creating
from ..staff import GRANSKARE, REDAKTOR
from . import access, compose, webinar_pages
from . import context as ctx

blueprint = Blueprint("review", __name__)


@dataclass(frozen=True)
class _Target:
    """What a workflow form acts on: the mail, where its page is, and how to show it again."""

    ref: review.Ref
    path: str
    page: Callable[..., Response]  # page(status=, workflow_error=, workflow_form=)


def _issue(month: str) -> _Target:
    month = compose.checked_month(month)
    return _Target(review.Ref(MailingKind.ISSUE, month), f"/nummer/{month}",
                   lambda **kw: compose.issue_page(month, **kw))


def _webinar(slug: str) -> _Target:
    webinar = webinars.get_webinar(ctx.db(), slug)
    return _Target(review.Ref(MailingKind.WEBINAR, f"{webinar.slug}:announce"),
                   f"/webbinarier/{webinar.slug}",
                   lambda **kw: webinar_pages.webinar_page(webinar.slug, **kw))


def _refused(target: _Target, exc: NewsletterError) -> Response:
    """The page again with the core's reason; nothing of the request is kept."""
    ctx.db().rollback()
    form = {key: request.form.get(key, "") for key in ("segment", "comment", "when", "at")}
    return target.page(status=_status_of(exc), workflow_error=str(exc), workflow_form=form)


def _status_of(exc: NewsletterError) -> int:
    """409 for a refusal (also the author's own approval: the page says why), else the
    error's own (400 for bad input, 404 for what does not exist, 500 for a site that cannot
    send: background.check)."""
    return 409 if isinstance(exc, Refused) else exc.http_status


def _done(target: _Target, step: str) -> Response:
    return redirect(f"{target.path}?steg={step}#arbetsflode", code=303)


def _me() -> str:
    return ctx.signed_in().staff.email


def _source(target: _Target):
    return review.source_for(ctx.db(), ctx.settings(), target.ref, now=ctx.now())


# --- the four steps, for any target ---------------------------------------------------------------

def _submit(target: _Target) -> Response:
    settings, session = ctx.settings(), ctx.db()
    segment = request.form.get("segment", "").strip() or settings.workflow.issue_segment
    try:
        review.submit(session, settings, _source(target), segment, by=_me(), now=ctx.now())
    except NewsletterError as exc:
        return _refused(target, exc)
    ctx.audit(EventKind.CONSOLE_REVIEW_SUBMITTED, ref=str(target.ref), segment=segment)
    return _done(target, "inskickat")


def _approve(target: _Target) -> Response:
    try:
        review.approve(ctx.db(), ctx.settings(), _source(target), by=_me(), now=ctx.now())
    except NewsletterError as exc:
        return _refused(target, exc)
    ctx.audit(EventKind.CONSOLE_REVIEW_APPROVED, ref=str(target.ref))
    return _done(target, "godkant")


def _send_back(target: _Target) -> Response:
    try:
        review.send_back(ctx.db(), ctx.settings(), target.ref, by=_me(),
                         comment=request.form.get("comment", ""), now=ctx.now())
    except InputError as exc:
        return _refused(target, InputError(_("Say what should change."), field="comment")
                        if exc.field == "--comment" else exc)
    except NewsletterError as exc:
        return _refused(target, exc)
    ctx.audit(EventKind.CONSOLE_REVIEW_SENT_BACK, ref=str(target.ref))
    return _done(target, "tillbaka")


def _send(target: _Target) -> Response:
    """Send now, or schedule (`when=at` with `at`, a datetime-local value)."""
    settings, session = ctx.settings(), ctx.db()
    segment = request.form.get("segment", "").strip()
    try:
        if not segment:
            raise InputError(_("Choose a segment."), field="segment")
        ctx.context().background.check()  # a site that cannot send: refused before recording
        source = _source(target)
        if request.form.get("when") == "at":
            at = schedule.parse_at(settings, request.form.get("at", ""), now=ctx.now())
            mailing = schedule.schedule(session, settings, source, segment, at, by=_me(),
                                        now=ctx.now())
            ctx.audit(EventKind.CONSOLE_MAILING_SCHEDULED, ref=str(target.ref),
                      mailing=mailing.id, at=at.isoformat())
            return _done(target, "schemalagt")
        ids = _create_now(source, segment)
    except NewsletterError as exc:
        return _refused(target, exc)
    ctx.audit(EventKind.CONSOLE_MAILING_CREATED, ref=str(target.ref), mailings=ids)
    session.commit()  # before the background sender looks for it
    ctx.send_later(ids)
    return _done(target, "skickas")


def _create_now(source, segment: str) -> list[int]:
    """Create the mailing to send now (or find the one to resume); its ids."""
    settings, session = ctx.settings(), ctx.db()
    if isinstance(source, webinar_kind.WebinarMessage):
        if creating.find_mailing(session, source.kind, source.key, segment) is None:
            preflight.check_send(session, settings, source, segment, by=_me())
        outcome = webinars.announce(session, settings, source.key.removesuffix(":announce"),
                                    segment, now=ctx.now())
        return outcome.mailings
    created = schedule.send_now(session, settings, source, segment, by=_me())
    return [created.mailing.id]


# --- the issue ----------------------------------------------------------------------------------

@blueprint.post("/nummer/<month>/granskning")
@access.requires(REDAKTOR)
def issue_submit(month: str) -> Response:
    return _submit(_issue(month))


@blueprint.post("/nummer/<month>/godkann")
@access.requires(GRANSKARE)
def issue_approve(month: str) -> Response:
    return _approve(_issue(month))


@blueprint.post("/nummer/<month>/skicka-tillbaka")
@access.requires(GRANSKARE)
def issue_send_back(month: str) -> Response:
    return _send_back(_issue(month))


@blueprint.post("/nummer/<month>/skicka")
@access.requires(GRANSKARE)
def issue_send(month: str) -> Response:
    return _send(_issue(month))


# --- a webinar's announcement -------------------------------------------------------------------

@blueprint.post("/webbinarier/<slug>/granskning")
@access.requires(REDAKTOR)
def webinar_submit(slug: str) -> Response:
    return _submit(_webinar(slug))


@blueprint.post("/webbinarier/<slug>/godkann")
@access.requires(GRANSKARE)
def webinar_approve(slug: str) -> Response:
    return _approve(_webinar(slug))


@blueprint.post("/webbinarier/<slug>/skicka-tillbaka")
@access.requires(GRANSKARE)
def webinar_send_back(slug: str) -> Response:
    return _send_back(_webinar(slug))


@blueprint.post("/webbinarier/<slug>/skicka")
@access.requires(GRANSKARE)
def webinar_send(slug: str) -> Response:
    return _send(_webinar(slug))
