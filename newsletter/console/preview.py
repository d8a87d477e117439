"""/nummer/YYYY-MM/forhandsgranska: the issue as a contact or a variant (areas × roles) gets it,
at 375 and 600 px side by side in sandboxed iframes, its plain text and the web version.

Rendering goes through kinds.issue.IssueSource and sources.personalise, read only; the
personal links in a preview are not the contact's own (a click in a preview must not
unsubscribe anyone): they point to the archive. Images of the site's own media/ are put into the
preview as data: URLs, since a sandboxed frame's requests carry no session cookie.

The test send is on this page too (POST .../testutskick): the variant shown, or each address's
own, to one or several addresses (testcopies.py: [TEST] in the subject, nothing published,
never to a bounced, erased or complaining address). The request records the copies, commits
and answers; the console's background sender sends them, and the page lists what became of
the latest ones when it is shown again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request
from sqlalchemy import or_, select
from werkzeug.datastructures import MultiDict

from .. import issue_build, links, signin, testcopies, webinars
from ..errors import ConfigError, InputError, NotFound, SuppressedAddress
from ..events import EventKind
from ..i18n import _, ngettext
from ..kinds.issue import IssueSource, wants
from ..models import Municipality, Person, Position
from ..sources import Content, Recipient, personalise
from ..staff import REDAKTOR
from . import access
from . import context as ctx
from .compose import checked_month
from .media_view import inline_media

blueprint = Blueprint("preview", __name__)
FRAME_CSP = ("default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
SEARCH_LIMIT = 20
TEST_SENDS_PER_HOUR = 30  # per staff member: a test send is a check, not a mailing


@dataclass(frozen=True)
class Choice:
    """What the preview shows: a contact's variant, or areas (None: all) and roles."""

    areas: frozenset[str] | None
    roles: frozenset[str]
    person: Person | None = None

    def fields(self) -> list[tuple[str, str]]:
        """The (name, value) pairs that ask for this choice again (query or hidden fields)."""
        if self.person is not None:
            return [("kontakt", self.person.public_id)]
        return ([("omrade", a) for a in sorted(self.areas or ())]
                + [("roll", r) for r in sorted(self.roles)])

    def query(self) -> str:
        """The query string that asks for this choice again."""
        return urlencode(self.fields())


def _choice(values: MultiDict | None = None) -> Choice:
    """The choice VALUES (the query, or a posted form) ask for."""
    settings = ctx.settings()
    values = request.args if values is None else values
    public_id = values.get("kontakt", "")
    if public_id:
        person = ctx.db().scalar(select(Person).where(Person.public_id == public_id))
        if person is None:
            raise NotFound(_("no such contact"))
        areas, roles = wants(person)
        return Choice(areas=areas, roles=roles, person=person)
    areas = frozenset(a for a in values.getlist("omrade") if a in settings.area_slugs)
    roles = frozenset(r for r in values.getlist("roll") if r in settings.roles)
    return Choice(areas=areas or None, roles=roles)


def _rendered(month: str, choice: Choice, *, web: bool = False) -> Content:
    settings = ctx.settings()
    source = IssueSource(settings, month, issue_build.upcoming_webinars(settings, ctx.now()))
    if web:
        return source.web_version()
    content = source.render(source.renderer.variant_key(choice.areas, choice.roles))
    person = choice.person
    sample = links.archive_url(settings)
    return personalise(content, Recipient(
        email=person.email if person else "mottagare@example.se",
        name=person.name if person else _("First Last"), message_id="",
        unsubscribe_url=sample, preferences_url=sample))


def _search(query: str) -> list[tuple[Person, str]]:
    """Contacts whose name, address or municipality contains QUERY: (person, municipality)."""
    like = f"%{query.strip().lower()}%"
    rows = ctx.db().execute(
        select(Person, Municipality.name)
        .outerjoin(Position, Position.person_id == Person.id)
        .outerjoin(Municipality, Municipality.id == Position.municipality_id)
        .where(Person.status == "active")
        .where(or_(Person.email.like(like), Person.name.ilike(like),
                   Municipality.name.ilike(like)))
        .order_by(Person.name, Person.email).limit(SEARCH_LIMIT * 3))
    seen: dict[int, tuple[Person, str]] = {}
    for person, municipality in rows:
        seen.setdefault(person.id, (person, municipality or ""))
    return list(seen.values())[:SEARCH_LIMIT]


def _preview_page(month: str, choice: Choice, *, status: int = 200,
                  test_form: dict | None = None, test_error: str | None = None) -> Response:
    query = request.args.get("sok", "").strip()
    text = _rendered(month, choice).text
    return ctx.page("preview.html", status=status, month=month, choice=choice, query=query,
                    found=_search(query) if query else [], text=text,
                    areas=ctx.settings().areas, roles=ctx.settings().roles,
                    test=_test_panel(month, test_form, test_error))


@blueprint.get("/nummer/<month>/forhandsgranska")
@access.requires(REDAKTOR)
def show(month: str) -> Response:
    return _preview_page(checked_month(month), _choice())


# --- the test send -----------------------------------------------------------------------------

def _notice(key: str) -> str | None:
    """The confirmation ?meddelande=KEY asks for (looked up per request, see compose._notice)."""
    if key == "test":
        n = request.args.get("antal", type=int) or 0
        return ngettext("The test copy was recorded and is being sent.",
                        "The {n} test copies were recorded and are being sent.", n).format(n=n)
    return None


def _test_panel(month: str, form: dict | None, error: str | None) -> dict:
    """What the test-send form and the list of the latest test copies show."""
    me = ctx.signed_in()
    problem = None
    try:
        ctx.context().background.check()
    except ConfigError as exc:
        problem = str(exc)
    return {"form": form or {"addresses": me.staff.email if me else "", "variant": "shown"},
            "error": error, "problem": problem, "max": testcopies.MAX_ADDRESSES,
            "copies": testcopies.recent(ctx.db(), IssueSource(ctx.settings(), month)),
            "notice": _notice(request.args.get("meddelande", ""))}


@blueprint.post("/nummer/<month>/testutskick")
@access.requires(REDAKTOR)
def test_send(month: str) -> Response:
    """Record test copies of the issue to the posted addresses and leave them to the
    background sender; the variant shown (`variant=shown`) or each address's own."""
    month = checked_month(month)
    settings, session = ctx.settings(), ctx.db()
    choice = _choice(request.form)
    form = {"addresses": request.form.get("addresses", ""),
            "variant": "own" if request.form.get("variant") == "own" else "shown"}
    ctx.context().background.check()  # a site that cannot send: 500 before anything is recorded
    try:
        addresses = testcopies.parse_addresses(form["addresses"])
    except InputError as exc:
        return _preview_page(month, choice, status=400, test_form=form,
                             test_error=str(exc.reason))
    who = ctx.signed_in().staff
    if signin.over_limit(session, f"test-send:{who.id}", TEST_SENDS_PER_HOUR,
                         timedelta(hours=1), now=ctx.now()):
        return _preview_page(month, choice, status=429, test_form=form, test_error=_(
            "Too many test sends this hour: wait a while and try again."))
    source = IssueSource(settings, month, webinars.upcoming(session, settings, ctx.now()))
    variant = source.renderer.variant_key(choice.areas, choice.roles)
    try:
        mailings = testcopies.create(
            session, settings,
            source if form["variant"] == "own" else testcopies.OneVariant(source, variant),
            addresses)
    except SuppressedAddress as exc:
        return _preview_page(month, choice, status=409, test_form=form, test_error=str(exc))
    ids = [m.id for m in mailings]
    ctx.audit(EventKind.CONSOLE_TEST_SENT, month=month, mailings=ids,
              variant=variant if form["variant"] == "shown" else None)
    session.commit()  # before the background sender looks for them
    ctx.send_later(ids)
    query = urlencode([*choice.fields(), ("meddelande", "test"), ("antal", len(ids))])
    return redirect(f"/nummer/{month}/forhandsgranska?{query}#testutskick", code=303)


def frame_response(html: str) -> Response:
    """HTML (an email) as a sandboxed frame's document: the site's images inline, no script."""
    response = Response(inline_media(html), mimetype="text/html")
    response.headers["Content-Security-Policy"] = FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@blueprint.get("/nummer/<month>/forhandsgranska/epost")
@access.requires(REDAKTOR)
def email_html(month: str) -> Response:
    return frame_response(_rendered(checked_month(month), _choice()).html)


@blueprint.get("/nummer/<month>/forhandsgranska/webb")
@access.requires(REDAKTOR)
def web_html(month: str) -> Response:
    return frame_response(_rendered(checked_month(month), Choice(None, frozenset()), web=True).html)
