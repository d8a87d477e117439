"""The archive of sent issues: /arkiv/, each issue's web version /arkiv/YYYY-MM, an Atom feed.

The send engine stores each issue's public web version in `archived_issues`; nothing here is
personal, so these pages may be cached. An issue withdrawn from the archive (archive.py) is
left out of all three.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from flask import Blueprint, Response
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from .. import links
from ..archive import visible
from ..models import ArchivedIssue
from ..sources import ANY_PLACEHOLDER
from .pages import page, session, web_context

blueprint = Blueprint("archive", __name__)

ATOM = "http://www.w3.org/2005/Atom"
# Issue HTML is email HTML: inline styles and remote images, but still never a script.
ISSUE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
             "font-src https: data:; script-src 'none'; object-src 'none'; base-uri 'none'; "
             "frame-ancestors 'none'; form-action 'none'")
PUBLIC_CACHE = "public, max-age=300"
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # ASCII digits: \d also matches "２"


def _issues() -> list[ArchivedIssue]:
    return list(session().scalars(
        select(ArchivedIssue).where(visible()).order_by(ArchivedIssue.month.desc())))


def index() -> Response:
    response = page("archive.html", issues=_issues())
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


blueprint.add_url_rule("/arkiv/", "index", index)


@blueprint.get("/arkiv/<month>")
def issue(month: str) -> Response:
    if not _MONTH.fullmatch(month):
        raise NotFound()
    archived = session().scalar(select(ArchivedIssue).where(ArchivedIssue.month == month,
                                                            visible()))
    if archived is None:
        raise NotFound()
    # Personal placeholders never reach a public page, even if one slipped into a web version.
    response = Response(ANY_PLACEHOLDER.sub("", archived.html), mimetype="text/html")
    response.headers["Content-Security-Policy"] = ISSUE_CSP
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def atom_feed() -> bytes:
    """The archive as an Atom feed (RFC 4287), newest issue first."""
    settings = web_context().settings
    issues = _issues()
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": "sv"})
    _sub(feed, "id", links.feed_url(settings))
    _sub(feed, "title", f"{settings.organisation.name}: nyhetsbrev")
    updated = max((i.published_at for i in issues), default=datetime(2000, 1, 1,
                                                                     tzinfo=UTC))
    _sub(feed, "updated", _iso(updated))
    author = _sub(feed, "author")
    _sub(author, "name", settings.organisation.name)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=links.feed_url(settings))
    _sub(feed, "link", rel="alternate", type="text/html", href=links.archive_url(settings))
    for archived in issues:
        entry = _sub(feed, "entry")
        url = links.archive_url(settings, archived.month)
        _sub(entry, "id", url)
        _sub(entry, "title", archived.subject)
        _sub(entry, "updated", _iso(archived.published_at))
        _sub(entry, "published", _iso(archived.published_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=url)
        if archived.preheader:
            _sub(entry, "summary", archived.preheader)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


@blueprint.get("/arkiv/feed.atom")
def feed() -> Response:
    response = Response(atom_feed(), mimetype="application/atom+xml")
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response
