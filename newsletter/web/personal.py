"""The personal pages behind signed tokens: /u/TOKEN (unsubscribe) and /p/TOKEN (preferences).

GET and HEAD never change anything (mail scanners open every link). Changes are POSTs with a
form token, except the RFC 8058 one-click unsubscribe, which by design has none.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import BadRequest, NotFound

from .. import links, preferences
from ..contacts import unsubscribe
from ..errors import InputError, SuppressedAddress
from ..i18n import _
from ..models import Person
from ..signing import make_token, read_token
from .csrf import FIELD, make_form_token, require_form_token
from .pages import error_page, local_now, page, session, web_context

blueprint = Blueprint("personal", __name__)

ONE_CLICK = "One-Click"


def _notice(action: str) -> str | None:
    """The line that tells the reader that ACTION (the redirect's ?sparat=) was done."""
    notices = {
        "omraden": _("Your choice of areas is saved."),
        "paus": _("The mailings are paused."),
        "aterupptaget": _("The pause is over. You get the next newsletter as usual."),
        "avregistrerad": _("You are unsubscribed and get no more mailings from us."),
        "prenumererar": _("Welcome back! You are subscribed again."),
    }
    return notices.get(action)


def _person(purpose: str, token: str) -> Person:
    """The person TOKEN was made for; every kind of bad token is the same 404."""
    public_id = read_token(web_context().settings.secret_key, purpose, token)
    if public_id is None:
        raise NotFound()
    person = session().scalar(select(Person).where(Person.public_id == public_id))
    if person is None or person.status == "erased":
        raise NotFound()
    return person


def _form_subject(kind: str, person: Person) -> str:
    return f"{kind}:{person.public_id}"


def _form_token(kind: str, person: Person) -> str:
    return make_form_token(web_context().settings.secret_key, _form_subject(kind, person))


def _require_form(kind: str, person: Person) -> None:
    settings = web_context().settings
    require_form_token(settings.secret_key, _form_subject(kind, person),
                       settings.organisation.base_url)


# --- unsubscribe -------------------------------------------------------------------------------

@blueprint.get("/u/<token>")
def unsubscribe_page(token: str) -> Response:
    person = _person(links.UNSUBSCRIBE, token)
    return page("unsubscribe.html", person=person, done=person.status == "unsubscribed",
                csrf_field=FIELD, csrf=_form_token("u", person),
                preferences_path=_preferences_path(person))


@blueprint.post("/u/<token>")
def unsubscribe_post(token: str) -> Response:
    person = _person(links.UNSUBSCRIBE, token)
    secret = web_context().settings.secret_key
    if request.form.get("List-Unsubscribe") == ONE_CLICK:
        # RFC 8058: the mailbox provider posts this without cookies or a form token; answer 200.
        unsubscribe(session(), secret, person, source="one-click")
        return page("unsubscribed_one_click.html")
    _require_form("u", person)
    unsubscribe(session(), secret, person, source="web")
    return redirect(url_for(".unsubscribe_page", token=token), code=303)


def _preferences_path(person: Person) -> str:
    token = make_token(web_context().settings.secret_key, links.PREFERENCES, person.public_id)
    return url_for(".preferences_page", token=token)


# --- preferences -------------------------------------------------------------------------------

def _preferences(person: Person, *, status: int = 200, error: str | None = None,
                 chosen: list[str] | None = None) -> Response:
    settings = web_context().settings
    today = local_now().date()
    notice = _notice(request.args.get("sparat", "")) if request.method == "GET" else None
    return page(
        "preferences.html", status=status, person=person, areas=settings.areas,
        chosen=chosen if chosen is not None else preferences.chosen_areas(
            session(), settings, person),
        paused=preferences.is_paused(person, today=today), pause_months=preferences.PAUSE_MONTHS,
        notice=notice, error=error, csrf_field=FIELD, csrf=_form_token("p", person),
        unsubscribed=person.status == "unsubscribed", bounced=person.status == "bounced")


@blueprint.get("/p/<token>")
def preferences_page(token: str) -> Response:
    return _preferences(_person(links.PREFERENCES, token))


@blueprint.post("/p/<token>")
def preferences_post(token: str) -> Response:
    person = _person(links.PREFERENCES, token)
    _require_form("p", person)
    settings = web_context().settings
    action = request.form.get("action", "")
    if action == "omraden":
        chosen = request.form.getlist("area")
        if not chosen:
            return _preferences(person, status=400, chosen=[], error=_(
                "Choose at least one area. If you want nothing at all, you can unsubscribe "
                "further down the page."))
        try:
            preferences.set_areas(session(), settings, person, chosen)
        except InputError:
            raise BadRequest() from None
    elif action == "paus":
        months = request.form.get("months", "")
        if months not in {str(n) for n in preferences.PAUSE_MONTHS}:  # "³" is a digit too
            raise BadRequest()
        preferences.pause(session(), person, int(months), today=local_now().date())
    elif action == "aterupptaget":
        preferences.resume(session(), person)
    elif action == "avregistrerad":
        unsubscribe(session(), settings.secret_key, person, source="preferences")
    elif action == "prenumererar":
        try:
            preferences.resubscribe(session(), settings.secret_key, person, source="preferences")
        except SuppressedAddress:
            return error_page(409)
    else:
        raise BadRequest()
    return redirect(url_for(".preferences_page", token=token, sparat=action), code=303)
