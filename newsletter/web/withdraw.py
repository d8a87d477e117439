"""Cancelling one's own webinar registration: /webinar/SLUG/avanmal/TOKEN.

The link is in every message to those registered or waiting (kinds/webinar.py); TOKEN
(links.registration_token) names the person, so nobody else can cancel for them. GET only
shows the page and asks (mail scanners open every link); the cancellation is a POST with a form
token, after which the person gets the withdrawal message with a calendar cancellation and the
first on the waiting list gets the place (webinars.unregister), sent in the background.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, redirect, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from .. import links, webinars
from ..models import Person, Registration, Webinar
from ..signing import read_token
from .csrf import FIELD, make_form_token, require_form_token
from .pages import check_sending, page, send_later, session, web_context

blueprint = Blueprint("withdraw", __name__)


def _found(slug: str, token: str) -> tuple[Webinar, Person]:
    """The webinar and the person TOKEN names; any bad slug or token is the same 404."""
    public_id = read_token(web_context().settings.secret_key, links.REGISTRATION, token)
    webinar = session().scalar(select(Webinar).where(Webinar.slug == slug))
    if public_id is None or webinar is None:
        raise NotFound()
    person = session().scalar(select(Person).where(Person.public_id == public_id))
    if person is None or person.status == "erased":
        raise NotFound()
    return webinar, person


def _status(webinar: Webinar, person: Person) -> str:
    """cancelled (the webinar) | ended | registered | waitlisted | none (nothing to cancel)."""
    if webinar.status == "cancelled":
        return "cancelled"
    if webinar.starts_at + timedelta(minutes=webinar.duration_minutes) <= datetime.now(UTC):
        return "ended"
    registration = session().scalar(select(Registration.status).where(
        Registration.webinar_id == webinar.id, Registration.person_id == person.id))
    return registration if registration in ("registered", "waitlisted") else "none"


def _subject(webinar: Webinar, person: Person) -> str:
    return f"avanmal:{webinar.slug}:{person.public_id}"


@blueprint.get("/webinar/<slug>/avanmal/<token>")
def ask(slug: str, token: str) -> Response:
    webinar, person = _found(slug, token)
    secret = web_context().settings.secret_key
    return page("webinar_withdraw.html", webinar=webinar, state=_status(webinar, person),
                done=request.args.get("klart") == "1",
                ends_at=webinar.starts_at + timedelta(minutes=webinar.duration_minutes),
                page_url=links.webinar_url(web_context().settings, slug), csrf_field=FIELD,
                csrf=make_form_token(secret, _subject(webinar, person)))


@blueprint.post("/webinar/<slug>/avanmal/<token>")
def withdraw(slug: str, token: str) -> Response:
    webinar, person = _found(slug, token)
    settings = web_context().settings
    require_form_token(settings.secret_key, _subject(webinar, person),
                       settings.organisation.base_url)
    if _status(webinar, person) in ("registered", "waitlisted"):
        check_sending()  # a site that cannot send: 500 before anything is recorded
        outcome = webinars.unregister(session(), settings, webinar, person)
        session().commit()
        send_later(outcome.mailings)
    return redirect(url_for(".ask", slug=slug, token=token, klart="1"), code=303)
