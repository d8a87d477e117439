"""/kontakter: the register in the console: search, a person's page (positions with dates, end
or hand over a role, areas, consents, roles waiting for staff, events, mailings), the roles
waiting for verification, and the vacancies.

Who may do what: every staff member reads (a redaktör needs to see who gets what); a
granskare or an admin changes the register (ends or hands over a role, sets areas, verifies
or rejects a declared role), as they also approve and send. Every change goes through the
same core functions as the command line (positions.py, preferences.py, role_claims.py), which
log it on the person with the staff member as its source, and into the console's audit log.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, redirect, request, url_for
from sqlalchemy import func, select

from .. import coverage, positions, preferences, role_claims
from ..consent import purpose_label
from ..contacts import search_contacts
from ..errors import NewsletterError
from ..events import EventKind
from ..i18n import _
from ..models import Municipality, Person, RoleClaim
from ..person_record import person_record
from ..staff import GRANSKARE, REDAKTOR, allows
from . import access
from . import context as ctx

blueprint = Blueprint("contacts", __name__)
SEARCH_LIMIT = 50


def _notice(key: str) -> str | None:
    """The confirmation ?meddelande=KEY asks for, looked up per request."""
    return {"avslutad": _("The role is ended."), "overlamnad": _("The role is handed over."),
            "omraden": _("The areas are saved."), "verifierad": _("The role is verified."),
            "avvisad": _("The role is rejected: the person stays ovrig.")}.get(key)


def _today() -> date:
    return ctx.now().astimezone(ZoneInfo(ctx.settings().organisation.timezone)).date()


def _staff() -> str:
    return ctx.signed_in().staff.email


def _may_change() -> bool:
    return allows(ctx.signed_in().staff.role, GRANSKARE)


def _person(public_id: str) -> Person:
    person = ctx.db().scalar(select(Person).where(Person.public_id == public_id))
    if person is None or person.status == "erased":
        abort(404)
    return person


@blueprint.get("/kontakter")
@access.requires(REDAKTOR)
def index() -> Response:
    query = request.args.get("q", "").strip()[:200]
    found = search_contacts(ctx.db(), query, limit=SEARCH_LIMIT) if query else []
    return ctx.page("contacts.html", query=query, found=found, limit=SEARCH_LIMIT,
                    waiting=len(role_claims.pending(ctx.db())), roles=ctx.settings().roles,
                    today=_today())


def _person_page(person: Person, *, status: int = 200, error: str | None = None) -> Response:
    settings, session = ctx.settings(), ctx.db()
    record = person_record(session, settings, person.email)
    waiting = [c for c in role_claims.claims_of(session, person.id) if c.decided_at is None]
    return ctx.page("contact.html", status=status, person=person, record=record,
                    current=record.current_positions(_today()), waiting=waiting,
                    areas=settings.areas, chosen=set(record.areas or settings.area_slugs),
                    roles=settings.roles, today=_today(), error=error,
                    notice=_notice(request.args.get("meddelande", "")),
                    may_change=_may_change(), purpose_label=purpose_label)


@blueprint.get("/kontakter/person/<public_id>")
@access.requires(REDAKTOR)
def person(public_id: str) -> Response:
    return _person_page(_person(public_id))


def _day(field: str) -> date:
    text = request.form.get(field, "").strip()
    if not text:
        return _today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise NewsletterError(_("write the date as YYYY-MM-DD, not “{text}”").format(
            text=text[:20])) from None


def _position() -> tuple[str, str]:
    """(role, kommunkod or "" for the association) of the form's "position" (ROLE|KOMMUNKOD)."""
    role, _sep, place = request.form.get("position", "").partition("|")
    return role, place


def _back(person: Person, notice: str) -> Response:
    return redirect(url_for(".person", public_id=person.public_id, meddelande=notice), code=303)


@blueprint.post("/kontakter/person/<public_id>/avsluta")
@access.requires(GRANSKARE)
def end_role(public_id: str) -> Response:
    person = _person(public_id)
    role, place = _position()
    try:
        positions.end_role(ctx.db(), ctx.settings(), person.email, role=role,
                           municipality=place, on=_day("on"), source=f"console:{_staff()}")
    except NewsletterError as exc:
        ctx.db().rollback()
        return _person_page(_person(public_id), status=400, error=str(exc))
    ctx.audit(EventKind.CONSOLE_POSITION_ENDED, role=role, municipality=place or None)
    return _back(person, "avslutad")


@blueprint.post("/kontakter/person/<public_id>/overlamna")
@access.requires(GRANSKARE)
def hand_over(public_id: str) -> Response:
    person = _person(public_id)
    role, place = _position()
    try:
        positions.hand_over(ctx.db(), ctx.settings(), role=role, municipality=place,
                            to=request.form.get("to", ""), name=request.form.get("name", ""),
                            from_=person.email, on=_day("on"),
                            source=f"console:{_staff()}")
    except NewsletterError as exc:
        ctx.db().rollback()
        return _person_page(_person(public_id), status=400, error=str(exc))
    ctx.audit(EventKind.CONSOLE_HANDED_OVER, role=role, municipality=place or None)
    return _back(person, "overlamnad")


@blueprint.post("/kontakter/person/<public_id>/omraden")
@access.requires(GRANSKARE)
def save_areas(public_id: str) -> Response:
    person = _person(public_id)
    chosen = request.form.getlist("area")
    if not chosen:
        return _person_page(person, status=400, error=_(
            "Choose at least one area (all of them: every area)."))
    try:
        preferences.set_areas(ctx.db(), ctx.settings(), person, chosen)
    except NewsletterError as exc:
        return _person_page(person, status=400, error=str(exc))
    ctx.audit(EventKind.CONSOLE_AREAS_SAVED, areas=len(chosen))
    return _back(person, "omraden")


@blueprint.get("/kontakter/roller")
@access.requires(REDAKTOR)
def claims() -> Response:
    return ctx.page("contact_claims.html", claims=role_claims.pending(ctx.db()),
                    roles=ctx.settings().roles, notice=_notice(request.args.get("meddelande", "")),
                    may_change=_may_change())


@blueprint.post("/kontakter/roller")
@access.requires(GRANSKARE)
def decide() -> Response:
    claim_id = request.form.get("claim", "")
    action = request.form.get("action", "")
    found = ctx.db().get(RoleClaim, int(claim_id)) if claim_id.isascii() and claim_id.isdigit() \
        else None
    if found is None or action not in ("verifiera", "avvisa"):
        abort(400)
    person = found.person
    try:
        role_claims.decide(ctx.db(), ctx.settings(), person.email, by=_staff(),
                           verify=action == "verifiera", claim_id=found.id, on=_today(),
                           now=ctx.now())
    except NewsletterError as exc:  # decided meanwhile
        return ctx.page("contact_claims.html", status=409, error=str(exc),
                        claims=role_claims.pending(ctx.db()), roles=ctx.settings().roles,
                        may_change=True)
    kommunkod = found.municipality.kommunkod if found.municipality else None
    ctx.audit(EventKind.CONSOLE_ROLE_VERIFIED if action == "verifiera"
              else EventKind.CONSOLE_ROLE_REJECTED, role=found.role, municipality=kommunkod)
    notice = "verifierad" if action == "verifiera" else "avvisad"
    if request.form.get("back") == "person":
        return _back(person, notice)
    return redirect(url_for(".claims", meddelande=notice), code=303)


@blueprint.get("/kontakter/vakanser")
@access.requires(REDAKTOR)
def vacancies() -> Response:
    settings = ctx.settings()
    role = request.args.get("roll", "")
    if role and role not in settings.roles:
        abort(404)
    found = coverage.vacancies(ctx.db(), settings, role=role or None, today=_today())
    members = ctx.db().scalar(select(func.count()).select_from(Municipality)
                              .where(Municipality.member.is_(True)))
    return ctx.page("contact_vacancies.html", vacancies=found, role=role, roles=settings.roles,
                    vacancy_roles=settings.vacancy_roles, members=members, today=_today())
