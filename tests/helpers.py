"""What several test modules share: constants, test data builders, a test Source and checks.

Test modules import from here (and get fixtures from conftest.py), never from each other.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import http.client
import json
import mailbox
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select

from newsletter import webinars
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
from newsletter.sources import Content, Profile
from newsletter.web import clicks
from newsletter.web import create_app as create_web_app
from newsletter.web.pages import background_of

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# A PostgreSQL server to run the suite on instead of SQLite (see conftest.py), or "".
PG_URL = os.environ.get("NEWSLETTER_TEST_PG_URL", "")

# A fixed test key: tests never read a real secret.
TEST_ENV = {"NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production"}

# `newsletter init` flags for a site that is not the demo. The .example top-level domain is
# reserved (RFC 2606), so no real mail goes anywhere; example.se is what marks demo data.
INIT_FLAGS = ("--org", "Föreningen Småkommunerna", "--sender", "nyhetsbrev@smakommuner.example",
              "--reply-to", "kansliet@smakommuner.example",
              "--postal-address", "Storgatan 1, 111 22 Stockholm",
              "--base-url", "https://nyhetsbrev.smakommuner.example")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound, then released): never a fixed port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a running site ----------------------------------------------------------------------------

@contextmanager
def serve_site(site, env: dict[str, str], *, command: str = "serve", port: int | None = None,
               threads: int | None = None) -> Iterator[tuple[int, subprocess.Popen]]:
    """`newsletter serve` (or COMMAND: `console`) of SITE on PORT (default: a free one),
    started and waited for (bounded), then stopped with SIGTERM (as systemd does)."""
    port = port or free_port()
    args = ["--host", "127.0.0.1", "--port", str(port)]
    if threads:
        args += ["--threads", str(threads)]
    proc = subprocess.Popen(  # cwd: not the repository, whose source would shadow the package
        [sys.executable, "-m", "newsletter", command, *args],
        env={**os.environ, **TEST_ENV, "NEWSLETTER_ROOT": str(site.root), **env},
        cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"newsletter {command} did not start: "
                                         f"{proc.communicate()}") from None
                time.sleep(0.1)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def http_request(port: int, method: str, path: str, form: dict[str, str] | None = None
             ) -> tuple[int, str, float]:
    """(status, body, seconds) of one HTTP request, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Sec-Fetch-Site": "same-origin", "Origin": "null"} if form is not None else {}
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    took = time.perf_counter() - started
    conn.close()
    return response.status, text, took


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


SINCE = date(2024, 1, 1)  # add_person's positions are held from then on


def maildir(site) -> mailbox.Maildir:
    """The site's Maildir, where the default transport delivers."""
    return mailbox.Maildir(site.root / "Maildir", factory=None, create=False)


def add_person(session, local: str, *positions: tuple[str | None, str], status: str = "active",
               language: str = "sv", areas: tuple[str, ...] = (),
               paused_until: date | None = None) -> Person:
    """LOCAL@example.se with POSITIONS ((municipality name or None, role), ...) held since
    SINCE, added."""
    person = Person(email=f"{local}@example.se", name=local.capitalize(), status=status,
                    language=language, paused_until=paused_until)
    for place, role in positions:
        municipality = session.scalar(select(Municipality).where(Municipality.name == place))
        person.positions.append(Position(municipality=municipality, role=role,
                                         started_on=SINCE))
    person.areas = [PersonArea(area=a) for a in areas]
    session.add(person)
    return person


# --- a Source for tests ------------------------------------------------------------------------

def _by_role(person: Profile) -> str:
    return "kc" if "kommunchef" in person.roles else "other"


@dataclass
class Canned:
    """A Source whose variants are small fixed messages naming their key: by default one for
    kommunchefer ("kc") and one for the rest ("other")."""

    key: str = "test-1"
    subject: str = "Nyhetsbrev december: strandskyddet och bredbandet"
    variant: Callable[[Profile], str] = field(default=_by_role)
    kind: MailingKind = MailingKind.TARGETED
    transactional: bool = False

    def variant_of(self, person: Profile) -> str:
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


# --- webinars ----------------------------------------------------------------------------------

def future_start(days: int = 30, hour: int = 14) -> str:
    """A webinar start DAYS from today at HOUR:00, as `webinar new --start` takes it."""
    return f"{date.today() + timedelta(days=days):%Y-%m-%d} {hour:02d}:00"


def new_webinar(site, start: str, *extra: str, slug: str = "bredband") -> None:
    """`newsletter webinar new` of a fixed webinar starting at START (EXTRA: more flags)."""
    site.cli("webinar", "new", "--title", "Bredband på landsbygden", "--start", start,
             "--duration", "60", "--join-url", "https://teams.example.se/l/meetup-join/abc",
             "--area", "digitalisering", "--description", "Hur **Åsele** byggde ut fibern.",
             "--slug", slug, *extra)


def past_webinar(site, start: str, slug: str = "bredband") -> None:
    """The webinar of `new_webinar` starting at START, which may be past: made through the core
    with its clock set back (`webinar new` refuses a start in the past)."""
    with site.transaction() as session:
        webinars.create_webinar(
            session, site.settings, title="Bredband på landsbygden",
            starts_at=webinars.parse_start(site.settings, start), duration_minutes=60,
            join_url="https://teams.example.se/l/meetup-join/abc", area="digitalisering",
            description="Hur **Åsele** byggde ut fibern.", slug=slug,
            now=datetime(2000, 1, 1, tzinfo=UTC))


# --- click tracking ----------------------------------------------------------------------------

CLICK = re.compile(r"https://nyhetsbrev\.example\.se/l/([A-Za-z0-9_.-]+)")
# Recorded readers and scanners (tests/data/click_patterns.json), replayed against /l/TOKEN.
PATTERNS = json.loads((DATA / "click_patterns.json").read_text(encoding="utf-8"))
PATTERNS_START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def enable_tracking(site, **values: str) -> None:
    """Switch `[tracking] clicks` on in the site's newsletter.toml, and set other VALUES."""
    config = site.root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    for key, value in {"clicks": "true", **values}.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, key
    config.write_text(text, encoding="utf-8")


class Clock:
    """The click filter's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = PATTERNS_START

    def __call__(self) -> datetime:
        return self.now


READER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def read_tracked_issue(site, message: bytes) -> None:
    """Readers follow the links of MESSAGE (one recipient's copy of a tracked issue) through the
    public pages: six open link 2 (an item of bostad), two of them link 10 as well."""
    app = create_web_app(site.settings)
    clock = Clock()
    clicks.install(app, now=clock)
    client = app.test_client()
    # the decoded HTML part: a token may straddle a quoted-printable soft line break
    html = email.message_from_bytes(message, policy=email.policy.default).get_body(
        ("html",)).get_content()
    paths = {int(t.split(".")[0].split("-")[1]): f"/l/{t}" for t in CLICK.findall(html)}
    for i in range(6):
        reader = {"headers": {"User-Agent": READER_AGENT},
                  "environ_base": {"REMOTE_ADDR": f"192.0.2.{i}"}}
        assert client.get(paths[2], **reader).status_code == 302
        if i < 2:
            clock.now += timedelta(seconds=30)
            assert client.get(paths[10], **reader).status_code == 302


def replay(client, paths, requests, clock: Clock) -> list:
    """Send the recorded REQUESTS to the links PATHS (number -> /l/ path) at their times."""
    responses = []
    for req in requests:
        clock.now = PATTERNS_START + timedelta(seconds=req["t"])
        call = client.head if req["method"] == "HEAD" else client.get
        headers = {"User-Agent": req["ua"], **req.get("headers", {})}
        responses.append(call(paths[req["link"]], headers=headers,
                              environ_base={"REMOTE_ADDR": req["ip"]}))
    return responses


# --- DKIM --------------------------------------------------------------------------------------

def rsa_key(folder: Path, name: str) -> tuple[Path, str]:
    """A 2048-bit RSA private key file (PKCS#8 PEM, as openssl writes it) and its public half
    as a DKIM record's p= value."""
    key = folder / f"{name}.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return key, base64.b64encode(der).decode()


# --- the web app's background sender -----------------------------------------------------------

def sent_in_background(client, timeout: float = 20.0) -> None:
    """Wait until the background sender of CLIENT's app has sent what the requests recorded."""
    assert background_of(client.application).idle(timeout), "the background sender is stuck"


# --- the workflow: review and approval ---------------------------------------------------------

REDAKTOR, GRANSKARE, GRANSKARE2, ADMIN = ("redaktor@example.se", "granskare@example.se",
                                          "granskare2@example.se", "admin@example.se")


def require_approval(site, required: bool = True) -> None:
    """Set `[workflow] require_approval` in SITE's newsletter.toml (the test site has the demo's
    settings, where approval is off unless set)."""
    path = site.root / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    line = f"require_approval = {'true' if required else 'false'}\n"
    text = re.sub(r"^#? ?require_approval = \w+\n", line, text, flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")


def add_staff(site) -> None:
    """A redaktör, two granskare and an admin (REDAKTOR, GRANSKARE, GRANSKARE2, ADMIN)."""
    for address, role in ((REDAKTOR, "redaktor"), (GRANSKARE, "granskare"),
                          (GRANSKARE2, "granskare"), (ADMIN, "admin")):
        site.cli("staff", "add", address, "--name", address.partition("@")[0], "--role", role)
# --- intake: feeds served from 127.0.0.1 (feed_server.py) -------------------------------------

def configure(site, server, feeds: dict[str, tuple[str, str]], *,
              timeout: float = 1, max_bytes: int = 5_000_000, extra: str = "") -> None:
    """Point the site's [[intake.feeds]] at SERVER: name -> (path, kind)."""
    path = site.root / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("timeout = 20\n", f"timeout = {timeout}\n")
    text = text.replace("max_bytes = 5000000\n", f"max_bytes = {max_bytes}\n")
    text = text.replace("remind_to = []\n", extra or "remind_to = []\n")
    for name, (feed_path, kind) in feeds.items():
        text += (f'\n[[intake.feeds]]\nname = "{name}"\nurl = "{server.url(feed_path)}"\n'
                 f'kind = "{kind}"\n')
    path.write_text(text, encoding="utf-8")


def ca_env(certs) -> dict[str, str]:
    return {"NEWSLETTER_INTAKE_CA_FILE": str(certs.ca_file)}
# --- public sign-up (/prenumerera) and its confirmation mail -----------------------------------

CONFIRM_LINK = re.compile(r"https://nyhetsbrev\.example\.se(/prenumerera/bekrafta/[A-Za-z0-9_.-]+)")


def set_config(site, **values: str) -> None:
    """Set KEY = VALUE (TOML) for each of VALUES in the site's newsletter.toml; each key must
    appear once in the file (e.g. signups_per_client)."""
    config = site.root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, key
    config.write_text(text, encoding="utf-8")


def inbox(client, site) -> list[email.message.EmailMessage]:
    """Every message in the site's Maildir (the default transport), oldest first, once the
    app's background sender has handled and sent what the requests recorded."""
    sent_in_background(client)
    folder = site.root / "Maildir" / "new"
    files = sorted(folder.iterdir(), key=lambda f: f.stat().st_mtime_ns) if folder.is_dir() \
        else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def confirm_path(message: email.message.EmailMessage) -> str:
    """The path of the confirmation link in MESSAGE's text part."""
    text = message.get_body(("plain",)).get_content()
    found = CONFIRM_LINK.search(text)
    assert found, text
    return found.group(1)


def sign_up(client, address: str, *, name: str = "", municipality: str = "", role: str = "",
            areas: tuple[str, ...] = (), extra: dict | None = None, headers=SAME_SITE):
    """Both steps of /prenumerera for ADDRESS (the second with these fields); the response of
    the second POST."""
    form = csrf_of(client.get("/prenumerera").get_data(as_text=True))
    first = client.post("/prenumerera", data={"csrf": form, "steg": "adress",
                                              "email": address}, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    return client.post("/prenumerera", data={
        "csrf": csrf_of(first.get_data(as_text=True)), "steg": "uppgifter", "email": address,
        "name": name, "municipality": municipality, "role": role, "area": list(areas),
        **(extra or {})}, headers=headers)


def follow_confirmation(client, path: str, headers=SAME_SITE):
    """Open the confirmation link PATH, then press its button; the POST's response."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf": csrf_of(page.get_data(as_text=True))},
                       headers=headers)


def output_of(proc: subprocess.Popen) -> tuple[str, str]:
    """What PROC wrote, for a failing assertion's message: stopped first if it still runs (a
    plain communicate() on a live process would wait for it forever)."""
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=30)
def png_bomb(side: int = 30000) -> bytes:
    """A small PNG whose header says SIDE x SIDE pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # some of it; enough to be a PNG
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(
        b"IEND", b"")
