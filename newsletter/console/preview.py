"""/nummer/YYYY-MM/forhandsgranska: the issue as a contact or a variant (areas × roles) gets it,
at 375 and 600 px side by side in sandboxed iframes, its plain text and the web version.

Rendering goes through kinds.issue.IssueSource and sources.personalise, read only; the
personal links in a preview are not the contact's own (a click in a preview must not
unsubscribe anyone): they point to the archive. Images of the site's own media/ are put into the
preview as data: URLs, since a sandboxed frame's requests carry no session cookie.

(The test send belongs on this page too: it will come with the new send path.)
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, request
from sqlalchemy import or_, select

from .. import issue_build, links
from ..errors import NotFound
from ..i18n import _
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


@dataclass(frozen=True)
class Choice:
    """What the preview shows: a contact's variant, or areas (None: all) and roles."""

    areas: frozenset[str] | None
    roles: frozenset[str]
    person: Person | None = None

    def query(self) -> str:
        """The query string that asks for this choice again."""
        if self.person is not None:
            return f"kontakt={self.person.public_id}"
        parts = [f"omrade={a}" for a in sorted(self.areas or ())]
        parts += [f"roll={r}" for r in sorted(self.roles)]
        return "&".join(parts)


def _choice() -> Choice:
    settings = ctx.settings()
    public_id = request.args.get("kontakt", "")
    if public_id:
        person = ctx.db().scalar(select(Person).where(Person.public_id == public_id))
        if person is None:
            raise NotFound(_("no such contact"))
        areas, roles = wants(person)
        return Choice(areas=areas, roles=roles, person=person)
    areas = frozenset(a for a in request.args.getlist("omrade") if a in settings.area_slugs)
    roles = frozenset(r for r in request.args.getlist("roll") if r in settings.roles)
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


@blueprint.get("/nummer/<month>/forhandsgranska")
@access.requires(REDAKTOR)
def show(month: str) -> Response:
    month = checked_month(month)
    choice = _choice()
    query = request.args.get("sok", "").strip()
    text = _rendered(month, choice).text
    return ctx.page("preview.html", month=month, choice=choice, query=query,
                    found=_search(query) if query else [], text=text,
                    areas=ctx.settings().areas, roles=ctx.settings().roles)


def _frame(html: str) -> Response:
    response = Response(inline_media(html), mimetype="text/html")
    response.headers["Content-Security-Policy"] = FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@blueprint.get("/nummer/<month>/forhandsgranska/epost")
@access.requires(REDAKTOR)
def email_html(month: str) -> Response:
    return _frame(_rendered(checked_month(month), _choice()).html)


@blueprint.get("/nummer/<month>/forhandsgranska/webb")
@access.requires(REDAKTOR)
def web_html(month: str) -> Response:
    return _frame(_rendered(checked_month(month), Choice(None, frozenset()), web=True).html)
