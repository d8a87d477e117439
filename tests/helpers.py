"""What several test modules share: constants, test data builders, a test Source and checks.

Test modules import from here (and get fixtures from conftest.py), never from each other.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from sqlalchemy import select

from newsletter.models import (
    Event,
    MailingKind,
    Municipality,
    Person,
    PersonArea,
    Position,
    Suppression,
)
from newsletter.signing import make_token
from newsletter.sources import Content

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# A fixed test key: tests never read a real secret.
TEST_ENV = {"NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound, then released): never a fixed port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- contacts ----------------------------------------------------------------------------------

NAMES = ["Anna Berg", "Åsa Öberg", "Lars Nilsson", "Märta Ek", "Olof Sandström", "Karin Lindqvist"]
KOMMUNER = ["Åsele", "Dorotea", "Vilhelmina", "Sorsele", "Storuman", "Malå"]


def seed(site, n: int = 30) -> list[str]:
    """N contacts in member municipalities (via the real import), every third a kommunchef."""
    lines = ["email,name,municipality,role"]
    for i in range(n):
        lines.append(f"p{i:03d}@example.se,{NAMES[i % 6]},{KOMMUNER[i % 6]},"
                     f"{'kommunchef' if i % 3 == 0 else 'politiker'}")
    path = site.root / "kontakter.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    site.cli("contacts", "import", str(path))
    site.cli("municipalities", "members", *KOMMUNER)
    return [f"p{i:03d}@example.se" for i in range(n)]


def add_person(session, local: str, *positions: tuple[str | None, str], status: str = "active",
               language: str = "sv", areas: tuple[str, ...] = (),
               paused_until: date | None = None) -> Person:
    """LOCAL@example.se with POSITIONS ((municipality name or None, role), ...), added."""
    person = Person(email=f"{local}@example.se", name=local.capitalize(), status=status,
                    language=language, paused_until=paused_until)
    for place, role in positions:
        municipality = session.scalar(select(Municipality).where(Municipality.name == place))
        person.positions.append(Position(municipality=municipality, role=role))
    person.areas = [PersonArea(area=a) for a in areas]
    session.add(person)
    return person


# --- a Source for tests ------------------------------------------------------------------------

def _by_role(person: Person) -> str:
    return "kc" if any(p.role == "kommunchef" for p in person.positions) else "other"


@dataclass
class Canned:
    """A Source whose variants are small fixed messages naming their key: by default one for
    kommunchefer ("kc") and one for the rest ("other")."""

    key: str = "test-1"
    subject: str = "Nyhetsbrev december: strandskyddet och bredbandet"
    variant: Callable[[Person], str] = field(default=_by_role)
    kind: MailingKind = MailingKind.TARGETED
    transactional: bool = False

    def variant_of(self, person: Person) -> str:
        return self.variant(person)

    def render(self, key: str) -> Content:
        return Content(subject=self.subject, preheader="", key=key,
                       text=f"Hej __NL_NAME__ ({key})\n",
                       html=f"<p>Hej __NL_NAME__ ({key})</p>"
                            '<a href="__NL_UNSUBSCRIBE_URL__">Avregistrera</a>')


# --- messages ----------------------------------------------------------------------------------

def check_message(data: bytes) -> email.message.EmailMessage:
    """The conformance checks every message must pass; returns the parsed message."""
    head, _, _ = data.partition(b"\r\n\r\n")
    assert head.isascii(), "every header line is ASCII"
    # Ready for SMTP DATA as it is (the sender skips normalising and dot-stuffing).
    assert data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n"), "CRLF only"
    assert data.endswith(b"\r\n") and not data.startswith(b".") and b"\r\n." not in data
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        if part.get_content_maintype() == "text":
            assert part["Content-Transfer-Encoding"] == "quoted-printable"
    for name in ("From", "To", "Date", "Message-ID", "Subject", "Reply-To", "List-Id",
                 "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version"):
        assert msg[name], name
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    alternative = next(p for p in msg.walk() if p.get_content_type() == "multipart/alternative")
    kinds = [p.get_content_type() for p in alternative.iter_parts()]
    assert kinds[:2] == ["text/plain", "text/html"]
    return msg


# --- the web pages -----------------------------------------------------------------------------

ANNA = "anna.andersson@example.se"
BERTIL = "bertil.berg@example.se"
SAME_SITE = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}


def person(site, email: str = ANNA) -> Person:
    with site.transaction() as session:
        return session.scalar(select(Person).where(Person.email == email))


def token(site, purpose: str, email: str = ANNA) -> str:
    return make_token(site.settings.secret_key, purpose, person(site, email).public_id)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the form has no csrf field"
    return match.group(1)


def snapshot(site) -> tuple:
    """Everything a visit could change: persons, areas, suppressions and the event log."""
    with site.transaction() as session:
        persons = [(p.email, p.status, p.paused_until) for p in
                   session.scalars(select(Person).order_by(Person.id))]
        areas = [(a.person_id, a.area) for a in session.scalars(select(PersonArea))]
        suppressed = [s.email_hash for s in session.scalars(select(Suppression))]
        events = [(e.kind, json.dumps(e.detail)) for e in session.scalars(select(Event))]
    return persons, areas, suppressed, events


def events(site, kind: str) -> list[Event]:
    with site.transaction() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind)))


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang, self.controls, self.labels, self.inline = None, [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            self.controls.append(attrs.get("id"))
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag == "script" or "style" in attrs or any(a.startswith("on") for a in attrs):
            self.inline.append(tag)


def check_page(response) -> None:
    """Swedish, labelled, no inline script or style (the CSP forbids both), safe headers."""
    parser = _Markup()
    parser.feed(response.get_data(as_text=True))
    assert parser.lang == "sv"
    assert parser.controls and all(c in parser.labels for c in parser.controls) \
        or not parser.controls
    assert parser.inline == []
    check_headers(response)


def check_headers(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in response.headers


# --- hostile issue content ---------------------------------------------------------------------

def add_hostile_issue(site) -> None:
    """Two items in the site's 2026-12 issue: hostile markup (tests/data/hostile_item.md), and
    very long words and links."""
    items = site.root / "issues/2026-12/items"
    (items / "99-fientlig.md").write_text(
        "---\n"
        'title: "<script>alert(\'titel\')</script>Farlig <img src=x onerror=alert(1)>rubrik"\n'
        "area: bostad\nkind: remiss\nurl: https://www.boverket.se/\n"
        "---\n" + (DATA / "hostile_item.md").read_text(encoding="utf-8"), encoding="utf-8")
    (items / "98-lang.md").write_text(
        "---\ntitle: \"" + "Strandskyddsdispensärendehanteringsprocessförbättringsförslag" * 4
        + " med en mycket lång rubrik som fortsätter och fortsätter över flera rader på "
        "en telefon 🎉🏡🚆\"\narea: infrastruktur\nkind: utredning\n"
        "url: https://www.trafikverket.se/resa-och-trafik/vag/" + "a" * 150 + "\n"
        "---\nÄven brödtexten har ett långt ord: " + "Å" * 120 + " och en lång länk "
        "https://www.regeringen.se/" + "b" * 150 + " 👍 ÅÄÖ åäö é ü ß „citat” – tankstreck.\n",
        encoding="utf-8")
