"""/webbinarier: the webinars; create and edit one (title, time, link, capacity, description);
its announcement to a segment through review and approval (the workflow panel, posted to
review_pages.py); those registered and the waiting list; cancel it with the staff's own
message; the follow-up with the recording.

Who may do what. Any staff member creates and edits a webinar (composing, like an issue; a new
time or link sends those registered an updated invite, which they must get). Cancelling and
the follow-up mail everyone registered at once: a granskare or an admin does them. The
announcement goes to a segment, so it passes review like the issue.

Like every console page a request records and answers: the mailings an edit, a cancellation
or a follow-up creates (webinars.py's Outcome) are committed and left to the background sender.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, redirect, request

from .. import dates, labels, links, review, webinars
from ..errors import InputError, NewsletterError
from ..events import EventKind
from ..i18n import _
from ..kinds.webinar import when
from ..models import MailingKind, Webinar
from ..staff import GRANSKARE, REDAKTOR
from . import access, workflow
from . import context as ctx

blueprint = Blueprint("webinars", __name__)
FIELDS = ("title", "start", "duration", "join_url", "area", "capacity", "description")


def _notice(key: str) -> str | None:
    return {"ny": _("The webinar is created. Nothing is sent until it is announced."),
            "sparat": _("Saved. Those registered get an updated invitation if the time or "
                        "the link changed."),
            "installt": _("The webinar is cancelled; those registered and on the waiting list "
                          "are told."),
            "uppfoljning": _("The follow-up with the recording is being sent.")}.get(key)


def _local(moment: datetime) -> str:
    return moment.astimezone(dates.zone(ctx.settings())).strftime("%Y-%m-%dT%H:%M")


def _form_of(webinar: Webinar) -> dict[str, str]:
    return {"title": webinar.title, "start": _local(webinar.starts_at),
            "duration": str(webinar.duration_minutes), "join_url": webinar.join_url,
            "area": webinar.area or "", "capacity": str(webinar.capacity or ""),
            "description": webinar.description}


def _posted() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in FIELDS}


def _number(value: str, field: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InputError(_("write a whole number"), field=field)
    return int(value)


def _values(form: dict[str, str]) -> dict:
    """The core's keyword arguments from the posted form (InputError names the field)."""
    if not form["start"]:
        raise InputError(_("give the start time"), field="start")
    return {"title": form["title"],
            "starts_at": webinars.parse_start(ctx.settings(), form["start"], field_name="start"),
            "duration_minutes": _number(form["duration"], "duration"),
            "join_url": form["join_url"], "area": form["area"] or None,
            "capacity": _number(form["capacity"], "capacity"),
            "description": form["description"]}


def _field(exc: InputError) -> str:
    name = (exc.field or "title").lstrip("-").replace("-", "_")
    return {"join_url": "join_url", "duration": "duration"}.get(name, name)


def _new_form() -> dict[str, str]:
    return {"title": "", "start": "", "duration": "60", "join_url": "", "area": "",
            "capacity": "", "description": ""}


def list_page(*, status: int = 200, form: dict | None = None,
              errors: dict | None = None) -> Response:
    return ctx.page("webinars.html", status=status,
                    rows=webinars.list_webinars(ctx.db()), form=form or _new_form(),
                    errors=errors or {}, areas=ctx.settings().areas,
                    status_label=labels.webinar_status,
                    earliest=_local(ctx.now()), notice=_notice(request.args.get("meddelande", "")))


@blueprint.get("/webbinarier")
@access.requires(REDAKTOR)
def index() -> Response:
    return list_page()


@blueprint.post("/webbinarier")
@access.requires(REDAKTOR)
def create() -> Response:
    form = _posted()
    try:
        values = _values(form)
        values["duration_minutes"] = values["duration_minutes"] or 60
        webinar = webinars.create_webinar(ctx.db(), ctx.settings(), now=ctx.now(), **values)
    except InputError as exc:
        ctx.db().rollback()
        return list_page(status=400, form=form, errors={_field(exc): exc.reason})
    ctx.audit(EventKind.CONSOLE_WEBINAR_SAVED, webinar=webinar.slug, new=True)
    return redirect(f"/webbinarier/{webinar.slug}?meddelande=ny", code=303)


def webinar_page(slug: str, *, status: int = 200, form: dict | None = None,
                 errors: dict | None = None, error: str | None = None,
                 workflow_error: str | None = None,
                 workflow_form: dict | None = None) -> Response:
    """A webinar's page; ERROR: why cancel or follow-up was refused; WORKFLOW_ERROR: why a
    review or send step of the announcement was refused."""
    session, settings = ctx.db(), ctx.settings()
    webinar = webinars.get_webinar(session, slug)
    people = {state: webinars.registered_people(session, webinar, state)
              for state in ("registered", "waitlisted")}
    return ctx.page(
        "webinar.html", status=status, w=webinar, when=when(settings, webinar),
        counts=webinars.counts(session, webinar), people=people,
        signup_url=links.webinar_url(settings, webinar.slug),
        form=form or _form_of(webinar), errors=errors or {}, error=error,
        areas=settings.areas, status_label=labels.webinar_status(webinar.status),
        workflow=workflow.panel(session, review.Ref(MailingKind.WEBINAR,
                                                    f"{webinar.slug}:announce"),
                                f"/webbinarier/{webinar.slug}", error=workflow_error,
                                form=workflow_form),
        notice=_notice(request.args.get("meddelande", "")))


@blueprint.get("/webbinarier/<slug>")
@access.requires(REDAKTOR)
def show(slug: str) -> Response:
    return webinar_page(slug)


def _deliver(outcome: webinars.Outcome) -> None:
    ids = outcome.mailings + outcome.resumed
    ctx.db().commit()  # before the background sender looks for them
    if ids:
        ctx.send_later(ids)


@blueprint.post("/webbinarier/<slug>")
@access.requires(REDAKTOR)
def update(slug: str) -> Response:
    form = _posted()
    webinar = webinars.get_webinar(ctx.db(), slug)
    try:
        ctx.context().background.check()
        values = _values(form)
        if values["description"] == webinar.description:
            values["description"] = None
        outcome = webinars.edit_webinar(ctx.db(), ctx.settings(), slug, now=ctx.now(), **values)
    except InputError as exc:
        ctx.db().rollback()
        return webinar_page(slug, status=400, form=form, errors={_field(exc): exc.reason})
    ctx.audit(EventKind.CONSOLE_WEBINAR_SAVED, webinar=slug, changed=outcome.changed,
              mailings=outcome.mailings)
    _deliver(outcome)
    return redirect(f"/webbinarier/{slug}?meddelande=sparat", code=303)


@blueprint.post("/webbinarier/<slug>/installa")
@access.requires(GRANSKARE)
def cancel(slug: str) -> Response:
    try:
        ctx.context().background.check()
        outcome = webinars.cancel_webinar(ctx.db(), ctx.settings(), slug,
                                          message=request.form.get("message", "").strip())
    except NewsletterError as exc:
        ctx.db().rollback()
        return webinar_page(slug, status=exc.http_status, error=str(exc))
    ctx.audit(EventKind.CONSOLE_WEBINAR_CANCELLED, webinar=slug, mailings=outcome.mailings)
    _deliver(outcome)
    return redirect(f"/webbinarier/{slug}?meddelande=installt", code=303)


@blueprint.post("/webbinarier/<slug>/uppfoljning")
@access.requires(GRANSKARE)
def followup(slug: str) -> Response:
    try:
        ctx.context().background.check()
        outcome = webinars.followup(ctx.db(), ctx.settings(), slug,
                                    request.form.get("recording", "").strip())
    except NewsletterError as exc:
        ctx.db().rollback()
        return webinar_page(slug, status=exc.http_status, error=str(exc))
    ctx.audit(EventKind.CONSOLE_WEBINAR_FOLLOWED_UP, webinar=slug, mailings=outcome.mailings)
    _deliver(outcome)
    return redirect(f"/webbinarier/{slug}?meddelande=uppfoljning", code=303)
