"""Public sign-up with double opt-in: /prenumerera and the confirmation link.

- `/prenumerera`: first the address, then the details (name, municipality, role, priority
  areas), with the municipality already chosen when the address is at a municipality's own
  domain (municipalities.kommunkod_for_address; no script needed). The second POST records
  the sign-up (signups.py) and answers with `/prenumerera/skickat`, "check your email": the
  same answer, and the same work, whatever the address is (a contact, unsubscribed, bounced,
  erased or unknown); the background sender decides afterwards whom to mail.
- `/prenumerera/bekrafta/TOKEN`: the link in the confirmation mail. A GET shows a button and
  changes nothing (mail scanners follow links); the POST confirms. A forged, expired or used
  token is the same 404 as any other bad token.

`gate` is the check every sign-up form passes before it records (this page and a webinar's):
the rate limits (per client and per address and page, counted the same for every address)
and the honeypot, a field people do not see and bots fill in. No third-party CAPTCHA.
"""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, Response, redirect, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from .. import consent, signups
from ..contact_fields import DEFAULT_ROLE, contact_name
from ..contacts import normalise_email
from ..errors import InputError, InvalidAddress
from ..i18n import _
from ..links import CONFIRM
from ..models import Municipality
from ..municipalities import kommunkod_for_address
from ..signing import read_token
from .csrf import FIELD, make_form_token, require_form_token
from .pages import check_sending, error_page, page, send_later, session, web_context

blueprint = Blueprint("signup", __name__)

PAGE = "/prenumerera"
FORM = "prenumerera"  # what the form token is about
HONEYPOT = "webbplats"  # a field people do not see; a bot fills it in


# --- what the sign-up forms share (this page and a webinar's) -----------------------------------

def gate(email: str, page_path: str) -> str:
    """"record", "drop" (the honeypot was filled in, or the address is over its limit: answer
    as usual, record nothing) or "refuse" (the client is over its limit: 429)."""
    settings = web_context().settings
    over = signups.limited(session(), settings, email, request.remote_addr or "",
                           page=page_path)
    if over == "client":
        return "refuse"
    if request.form.get(HONEYPOT, "") or over == "address":
        return "drop"
    return "record"


def consent_texts(*names: str) -> dict[str, list[str]]:
    """The consent texts NAMES as the page shows them: paragraphs."""
    settings = web_context().settings
    return {name: consent.current_text(settings, name).split("\n\n") for name in names}


def webinar_details(slug: str) -> signups.Details:
    """What a webinar's form says besides the address: a name, the newsletter box, and the
    consent texts it showed. InputError for a name that is too long."""
    try:
        name = contact_name(request.form.get("name", ""))
    except InputError:
        raise InputError(_("The name is too long.")) from None
    subscribe = request.form.get("nyhetsbrev") == "ja"
    return signups.Details(name=name, subscribe=subscribe, page=f"/webinar/{slug}",
                           consent_text_id=stored_text("webinar"),
                           newsletter_text_id=stored_text("webinar_newsletter") if subscribe
                           else None)


def stored_text(name: str) -> int:
    """The id of the stored version of consent text NAME as shown now."""
    settings = web_context().settings
    return consent.stored_text(session(), name, consent.current_text(settings, name)).id


# --- /prenumerera -------------------------------------------------------------------------------

def _municipalities() -> list[tuple[str, list[Municipality]]]:
    rows = session().scalars(select(Municipality).order_by(Municipality.county,
                                                           Municipality.name))
    return [(county, list(group)) for county, group in groupby(rows, lambda m: m.county)]


def _form(step: str, *, status: int = 200, error: str | None = None,
          values: dict | None = None) -> Response:
    settings = web_context().settings
    values = values or {}
    return page("signup.html", status=status, step=step, error=error, csrf_field=FIELD,
                csrf=make_form_token(settings.secret_key, FORM), honeypot=HONEYPOT,
                email=values.get("email", ""), name=values.get("name", ""),
                kommunkod=values.get("kommunkod", ""), role=values.get("role", DEFAULT_ROLE),
                chosen=values.get("areas", []), guessed=values.get("guessed", False),
                counties=_municipalities() if step == "uppgifter" else [],
                roles=settings.roles,
                verified=", ".join(settings.roles[r] for r in settings.signup.verified_roles),
                areas=settings.areas, texts=consent_texts("newsletter"))


@blueprint.get(PAGE)
def start() -> Response:
    return _form("adress")


def _bad_address(raw: str, step: str, values: dict) -> Response:
    return _form(step, status=400, values={**values, "email": raw[:320]}, error=_(
        "Write a valid email address, for example fornamn.efternamn@kommun.se."))


@blueprint.post(PAGE)
def submit() -> Response:
    settings = web_context().settings
    require_form_token(settings.secret_key, FORM, settings.organisation.base_url)
    raw = request.form.get("email", "")
    if request.form.get("steg") != "uppgifter":  # the first step: the address only
        try:
            email = normalise_email(raw)
        except InvalidAddress:
            return _bad_address(raw, "adress", {})
        code = kommunkod_for_address(email)
        return _form("uppgifter", values={"email": email, "kommunkod": code or "",
                                          "guessed": code is not None})
    values = {"email": raw, "name": request.form.get("name", ""),
              "kommunkod": request.form.get("municipality", ""),
              "role": request.form.get("role", ""), "areas": request.form.getlist("area")}
    try:
        email = normalise_email(raw)
    except InvalidAddress:
        return _bad_address(raw, "uppgifter", values)
    try:
        details = _details(values)
    except InputError as exc:
        return _form("uppgifter", status=400, values=values, error=exc.reason)
    check_sending()  # a site that cannot send: 500 before anything is recorded
    verdict = gate(email, PAGE)
    if verdict == "refuse":
        return error_page(429)
    if verdict == "record":
        signups.record(session(), None, email, details=details)
    session().commit()
    send_later()
    return redirect(url_for(".sent"), code=303)


def _details(values: dict) -> signups.Details:
    """The details of the second step, checked; InputError says what is wrong, in words."""
    settings = web_context().settings
    try:
        name = contact_name(values["name"])
    except InputError:
        raise InputError(_("The name is too long.")) from None
    municipality_id = None
    if values["kommunkod"]:
        municipality_id = session().scalar(select(Municipality.id).where(
            Municipality.kommunkod == values["kommunkod"]))
        if municipality_id is None:
            raise InputError(_("Choose your municipality in the list."))
    role = values["role"] or DEFAULT_ROLE
    if role not in settings.roles:
        raise InputError(_("Choose your role in the list."))
    areas = tuple(values["areas"])
    if not set(areas) <= set(settings.area_slugs):
        raise InputError(_("Choose areas in the list."))
    return signups.Details(name=name, municipality_id=municipality_id, role=role, areas=areas,
                           subscribe=True, page=PAGE, consent_text_id=stored_text("newsletter"))


@blueprint.get(f"{PAGE}/skickat")
def sent() -> Response:
    return page("signup_sent.html", days=web_context().settings.signup.confirm_days)


# --- the confirmation link ----------------------------------------------------------------------

def _form_subject(token: str) -> str:
    public_id = read_token(web_context().settings.secret_key, CONFIRM, token)
    if public_id is None:
        raise NotFound()
    return f"bekrafta:{public_id}"


@blueprint.get(f"{PAGE}/bekrafta/<token>")
def confirm_page(token: str) -> Response:
    settings = web_context().settings
    subject = _form_subject(token)
    signup = signups.find(session(), settings, token)
    if signup is None:
        raise NotFound()
    return page("confirm.html", webinar=signup.webinar_id is not None, csrf_field=FIELD,
                csrf=make_form_token(settings.secret_key, subject))


@blueprint.post(f"{PAGE}/bekrafta/<token>")
def confirm(token: str) -> Response:
    settings = web_context().settings
    subject = _form_subject(token)
    if signups.find(session(), settings, token) is None:  # before the form: the same 404
        raise NotFound()
    require_form_token(settings.secret_key, subject, settings.organisation.base_url)
    check_sending()
    done = signups.confirm(session(), settings, token)
    if done is None:
        raise NotFound()
    session().commit()
    send_later(done.mailings or ())
    if done.webinar is not None:
        state = {"registered": "anmald", "waitlisted": "vantelista",
                 "already-registered": "anmald", "already-waitlisted": "vantelista"}
        return redirect(url_for(".confirmed", webbinarium=done.webinar.slug,
                                anmalan=state.get(done.registration or "", "stangd")), code=303)
    return redirect(url_for(".confirmed", roll="vantar" if done.claimed else None), code=303)


@blueprint.get(f"{PAGE}/klart")
def confirmed() -> Response:
    """What a confirmation did, from the query (nothing personal in it)."""
    slug = request.args.get("webbinarium", "")
    return page("confirmed.html", webinar_slug=slug,
                registration=request.args.get("anmalan", "") if slug else "",
                claimed=request.args.get("roll") == "vantar")
