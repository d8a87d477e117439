"""Webinar registration: /webinar/SLUG shows the webinar and takes an address.

The answer is the same whether or not the address is in the register, and so is the work the
request does (it records a sign-up, signups.py, and the background sender does the rest), so
the page cannot be used to find out who is a contact, not even by timing; the confirmation goes
by email: a contact's registration with its calendar invite, anyone else's link to confirm the
address first (open registration, double opt-in; web/signup.py has the link's pages and the
form's rate limits and honeypot).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, redirect, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from .. import signups, webinars
from ..contacts import normalise_email
from ..errors import InputError, InvalidAddress
from ..markdown import to_html
from ..models import Webinar
from .csrf import FIELD, make_form_token, require_form_token
from .pages import check_sending, error_page, page, send_later, session, web_context
from .signup import HONEYPOT, consent_texts, gate, webinar_details

blueprint = Blueprint("webinar", __name__)


def _webinar(slug: str) -> Webinar:
    found = session().scalar(select(Webinar).where(Webinar.slug == slug))
    if found is None:
        raise NotFound()
    return found


def _state(webinar: Webinar) -> str:
    """cancelled | ended | started | full | open: registration is open only before the start."""
    if webinar.status == "cancelled":
        return "cancelled"
    now = datetime.now(UTC)
    if webinar.starts_at + timedelta(minutes=webinar.duration_minutes) <= now:
        return "ended"
    if webinar.starts_at <= now:
        return "started"
    full = (webinar.capacity is not None
            and webinars.counts(session(), webinar).registered >= webinar.capacity)
    return "full" if full else "open"


def _page(webinar: Webinar, *, status: int = 200, error: str | None = None,
          email: str = "") -> Response:
    secret = web_context().settings.secret_key
    response = page(
        "webinar.html", status=status, webinar=webinar, state=_state(webinar),
        description=Markup(to_html(webinar.description or "")),
        ends_at=webinar.starts_at + timedelta(minutes=webinar.duration_minutes),
        thanks=request.method == "GET" and request.args.get("anmald") == "1",
        error=error, email=email, csrf_field=FIELD,
        csrf=make_form_token(secret, f"w:{webinar.slug}"), honeypot=HONEYPOT,
        texts=consent_texts("webinar", "webinar_newsletter"))
    return response


@blueprint.get("/webinar/<slug>")
def registration_page(slug: str) -> Response:
    return _page(_webinar(slug))


@blueprint.post("/webinar/<slug>")
def register(slug: str) -> Response:
    """Record the sign-up and answer, the same way for every well-formed address: whether it
    is a contact is found out in the background (signups.py), so that neither the answer nor
    its timing tells."""
    webinar = _webinar(slug)
    settings = web_context().settings
    require_form_token(settings.secret_key, f"w:{slug}", settings.organisation.base_url)
    if _state(webinar) not in ("open", "full"):
        return _page(webinar, status=409)
    check_sending()  # a site that cannot send: 500 before anything is recorded
    raw = request.form.get("email", "")
    try:
        email = normalise_email(raw)
    except InvalidAddress:
        return _page(webinar, status=400, email=raw[:320], error=(
            "Skriv en giltig e-postadress, till exempel fornamn.efternamn@kommun.se."))
    try:
        details = webinar_details(slug)
    except InputError as exc:
        return _page(webinar, status=400, email=email, error=exc.reason)
    verdict = gate(email, details.page)  # rate limits and the honeypot (web/signup.py)
    if verdict == "refuse":
        return error_page(429)
    if verdict == "record":
        signups.record(session(), webinar, email, details=details)
    session().commit()
    send_later()
    return redirect(url_for(".registration_page", slug=slug, anmald="1"), code=303)
