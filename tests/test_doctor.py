"""`newsletter doctor` on a site made ready for real mail, all on 127.0.0.1: fixture DNS zones
(correct, missing, wrong key), a STARTTLS relay with AUTH, and the public pages over HTTPS with
a throw-away CA; then each thing broken in turn."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from newsletter import db, doctor, heartbeat, siteconfig
from newsletter.models import Event
from newsletter.settings import load_settings
from newsletter.web import create_app

from .certs import PASSWORD, USER, issue, server_context
from .dns_server import FixtureDNS, txt
from .helpers import TEST_ENV, free_port, rsa_key
from .smtp_server import RecordingSMTPServer

D = "smakommuner.example"
RELAY_IP = "192.0.2.25"
SELECTOR = "nb2026"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@dataclass(frozen=True)
class Keys:
    key: Path
    public: str
    other_key: Path
    other_public: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    key, public = rsa_key(folder, "nb")
    other_key, other_public = rsa_key(folder, "other")
    return Keys(key, public, other_key, other_public)


@pytest.fixture(scope="module")
def pages_cert(certs) -> tuple[Path, Path]:
    """A certificate for localhost valid 30 days (over doctor's 7-day limit), by the test CA."""
    ca = certs.ca_file, certs.ca_file.with_suffix(".key")
    return issue(certs.ca_file.parent, "pages", "DNS:localhost,IP:127.0.0.1", ca, days=30)


def zone(keys: Keys, changes: dict | None = None) -> dict:
    """The sender domain's records, correct unless CHANGES replace names (None: remove)."""
    records = {
        D: {"TXT": [txt(f"v=spf1 include:_spf.{D} -all")], "MX": [f"10 mx.{D}."]},
        f"_spf.{D}": {"TXT": [txt(f"v=spf1 a:relay.{D} mx ~all")]},
        f"relay.{D}": {"A": [RELAY_IP]},
        f"mx.{D}": {"A": ["192.0.2.30"]},
        f"{SELECTOR}._domainkey.{D}": {"TXT": [txt(f"v=DKIM1; k=rsa; p={keys.public}")]},
        f"_dmarc.{D}": {"TXT": [txt(f"v=DMARC1; p=none; rua=mailto:dmarc@{D}")]},
    }
    for name, value in (changes or {}).items():
        if value is None:
            records.pop(name, None)
        else:
            records[name] = value
    return records


class HttpsServer:
    """APP (a WSGI app) served over TLS with CERT on 127.0.0.1, in a thread."""

    def __init__(self, app, cert: tuple[Path, Path], port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True,
                                  ssl_context=server_context(cert))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@dataclass
class Live:
    """A site that passes doctor: its env, DNS server, relay and pages."""

    site: object
    env: dict[str, str]
    dns: FixtureDNS
    relay: RecordingSMTPServer
    base_url: str
    port: int

    def doctor(self, *args: str, env: dict[str, str | None] | None = None):
        return self.site.cli("doctor", "--timeout", "3", *args, ok=False,
                             env={**self.env, **(env or {})})

    @property
    def settings(self):
        return load_settings(self.site.root, env={**TEST_ENV, **self.env, **self.site.env})

    def lines(self, result) -> dict[str, str]:
        """Each check's line (without its fix), by name."""
        out = {}
        for line in result.stdout.splitlines():
            if line[:2] in ("✓ ", "✗ "):
                name = line[2:].partition(":")[0]
                out[name] = line
        return out


def make_real(site, base_url: str) -> None:
    """Give SITE a real organisation and a sending host, as `newsletter init` and an operator
    would."""
    org = siteconfig.organisation({
        "name": "Föreningen Småkommunerna", "sender": f"nyhetsbrev@{D}",
        "reply_to": f"kansliet@{D}", "postal_address": "Storgatan 1, 111 22 Stockholm",
        "base_url": base_url})
    config = siteconfig.config_text(org).replace('sending_host = ""',
                                                 f'sending_host = "relay.{D}"')
    (site.root / "newsletter.toml").write_text(config, encoding="utf-8")


@pytest.fixture
def live(site, certs, pages_cert, keys) -> Iterator[Live]:
    port = free_port()
    base_url = f"https://localhost:{port}"
    make_real(site, base_url)
    env = {
        "NEWSLETTER_SMTP_USER": USER, "NEWSLETTER_SMTP_PASSWORD": PASSWORD,
        "NEWSLETTER_SMTP_CA_FILE": str(certs.ca_file),
        "NEWSLETTER_DKIM_KEY_FILE": str(keys.key), "NEWSLETTER_DKIM_SELECTOR": SELECTOR,
        "NEWSLETTER_DKIM_DOMAIN": D,
        "SSL_CERT_FILE": str(certs.ca_file),  # the pages' CA, as if it were a public one
    }
    with RecordingSMTPServer(users={USER: PASSWORD}, tls=server_context(certs.server)) as relay, \
            FixtureDNS(zone(keys)) as dns:
        env["NEWSLETTER_TRANSPORT"] = relay.url
        env["NEWSLETTER_DNS_SERVER"] = dns.address
        settings = load_settings(site.root, env={**TEST_ENV, **env, **site.env})
        with HttpsServer(create_app(settings), pages_cert, port):
            with site.transaction() as s:
                heartbeat.beat(s, "post1:4711", datetime.now(UTC))
            yield Live(site, env, dns, relay, base_url, port)


def test_a_site_ready_for_real_mail_passes_every_check(live):
    result = live.doctor()
    assert result.exit_code == 0, result.stdout
    lines = live.lines(result)
    assert list(lines) == ["inställningar", "databas", "arbetaren", "transport", "SPF", "DKIM",
                           "DMARC", "webbsidor", "avregistrering med ett klick"]
    assert all(line.startswith("✓") for line in lines.values()), result.stdout
    assert "Alla 9 kontroller gick igenom." in result.stdout
    assert "STARTTLS (TLSv1." in lines["transport"] and f"AUTH som {USER}" in lines["transport"]
    assert f"relay.{D} ({RELAY_IP}) genom include:_spf.{D}" in lines["SPF"]
    assert "ett signerat testmejl verifieras" in lines["DKIM"]
    assert "p=none" in lines["DMARC"] and "dagar" in lines["webbsidor"]
    # Nothing was sent, nobody unsubscribed, and the questions went to the fixture server.
    assert live.relay.messages == []
    [(user, accepted, tls)] = live.relay.auth_attempts
    assert user == USER and accepted and tls.startswith("TLSv1.")
    with live.site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(
            Event.kind == "unsubscribed")) == 0
    assert (f"{SELECTOR}._domainkey.{D}", "TXT", "udp") in live.dns.queries


def test_missing_records_each_fail_with_what_to_publish(live, keys):
    names = {f"_spf.{D}": None, f"{SELECTOR}._domainkey.{D}": None, f"_dmarc.{D}": None,
             D: {"MX": [f"10 mx.{D}."]}}
    with FixtureDNS(zone(keys, names)) as dns:
        result = live.doctor("--dns-server", dns.address)
    assert result.exit_code == 1
    lines = live.lines(result)
    assert lines["SPF"].startswith("✗ SPF: ingen SPF-post") and f'"v=spf1 ip4:{RELAY_IP} -all"' \
        in result.stdout
    assert lines["DKIM"] == f"✗ DKIM: ingen DKIM-post på {SELECTOR}._domainkey.{D}"
    assert lines["DMARC"] == f"✗ DMARC: ingen DMARC-post för {D}"
    assert f"publicera TXT på _dmarc.{D}" in result.stdout
    assert "3 av 9 kontroller misslyckades." in result.stdout
    assert lines["inställningar"].startswith("✓")  # the rest still pass


def test_a_dkim_record_with_another_key_fails(live, keys):
    wrong = {f"{SELECTOR}._domainkey.{D}": {"TXT": [txt(f"v=DKIM1; p={keys.other_public}")]}}
    with FixtureDNS(zone(keys, wrong)) as dns:
        result = live.doctor("--dns-server", dns.address)
    assert result.exit_code == 1
    assert live.lines(result)["DKIM"] == (
        f"✗ DKIM: {SELECTOR}._domainkey.{D} innehåller en annan nyckel än {keys.key}")
    # The other way round: the record is right, the key file is the wrong one.
    result = live.doctor(env={"NEWSLETTER_DKIM_KEY_FILE": str(keys.other_key)})
    assert "en annan nyckel" in live.lines(result)["DKIM"]
    revoked = {f"{SELECTOR}._domainkey.{D}": {"TXT": [txt("v=DKIM1; p=")]}}
    with FixtureDNS(zone(keys, revoked)) as dns:
        result = live.doctor("--dns-server", dns.address)
    assert "återkallad" in live.lines(result)["DKIM"]


def test_dkim_missing_or_misaligned_settings_fail(live):
    unsigned = {"NEWSLETTER_DKIM_KEY_FILE": "", "NEWSLETTER_DKIM_SELECTOR": "",
                "NEWSLETTER_DKIM_DOMAIN": ""}
    assert "DKIM-signeras inte" in live.lines(live.doctor(env=unsigned))["DKIM"]
    other = live.lines(live.doctor(env={"NEWSLETTER_DKIM_DOMAIN": "esp.example"}))
    assert other["DKIM"].startswith("✗") and "DMARC misslyckas" in other["DKIM"]
    # The relay signs: no key file here, the record must still be there.
    relay_signs = {"NEWSLETTER_DKIM_KEY_FILE": ""}
    assert "e-postreläet signerar" in live.lines(live.doctor(env=relay_signs))["DKIM"]


def test_spf_that_does_not_cover_the_relay_fails_and_says_what_to_add(live, keys):
    narrow = {D: {"TXT": [txt("v=spf1 ip4:198.51.100.0/24 -all")]}}
    with FixtureDNS(zone(keys, narrow)) as dns:
        result = live.doctor("--dns-server", dns.address)
    line = live.lines(result)["SPF"]
    assert line == f"✗ SPF: {D} tillåter inte relay.{D} ({RELAY_IP}): fail"
    assert f"lägg till ip4:{RELAY_IP}" in result.stdout
    broken = {D: {"TXT": [txt("v=spf1 -all"), txt("v=spf1 +all")]}}
    with FixtureDNS(zone(keys, broken)) as dns:
        assert "2 SPF-poster" in live.lines(live.doctor("--dns-server", dns.address))["SPF"]


def test_a_dns_server_that_does_not_answer_fails_the_dns_checks(live):
    silent = f"127.0.0.1:{free_port()}"
    lines = live.lines(live.doctor("--dns-server", silent, "--timeout", "1"))
    for name in ("SPF", "DKIM", "DMARC"):
        assert lines[name].startswith("✗") and "svarade inte" in lines[name], lines[name]


def test_demo_settings_fail(live):
    (live.site.root / "newsletter.toml").write_text(
        siteconfig.config_text(siteconfig.demo_organisation()), encoding="utf-8")
    result = live.doctor()
    assert result.exit_code == 1
    line = live.lines(result)["inställningar"]
    assert line.startswith("✗ inställningar: newsletter.toml har fortfarande demots värden")
    assert "organisation.sender" in line and "organisation.name" in line


def test_unreadable_settings_exit_78(live):
    (live.site.root / "newsletter.toml").write_text("[organisation\n", encoding="utf-8")
    result = live.doctor()
    assert result.exit_code == 78
    assert "newsletter.toml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_database_missing_old_or_made_with_another_key(live):
    other_key = {"NEWSLETTER_SECRET_KEY": "another-secret-key-of-some-length"}
    lines = live.lines(live.doctor(env=other_key))
    assert lines["databas"].endswith("skapades med en annan hemlig nyckel")
    engine = db.make_engine(live.site.settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    lines = live.lines(live.doctor())
    assert "har revision 0000" in lines["databas"]
    assert lines["arbetaren"] == "✗ arbetaren: inte kontrollerat: databasen går inte att använda"


@pytest.mark.sqlite_only
def test_a_missing_database_file_is_reported_not_created(live):
    path = Path(live.site.settings.db_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    lines = live.lines(live.doctor())
    assert lines["databas"] == f"✗ databas: ingen databas på {path}"
    assert not path.exists()


def test_a_worker_not_seen_for_a_while_fails(live):
    settings = live.settings
    later = datetime.now(UTC) + heartbeat.STALE_AFTER + timedelta(seconds=5)
    [worker] = [c for c in doctor.checks(settings, now=later, timeout=3) if c.name == "arbetaren"]
    assert not worker.ok and "sågs senast" in worker.detail and "systemctl" in worker.fix


def test_transport_failures_name_the_step(live, certs):
    wrong = live.lines(live.doctor(env={"NEWSLETTER_SMTP_PASSWORD": "fel-losen"}))
    assert wrong["transport"].startswith("✗") and "AUTH nekades: 535" in wrong["transport"]
    untrusted = live.lines(live.doctor(env={"NEWSLETTER_SMTP_CA_FILE": "",
                                            "SSL_CERT_FILE": None}))  # the system's CAs
    assert "STARTTLS: certifikatet är inte betrott" in untrusted["transport"]
    down = live.lines(live.doctor(env={
        "NEWSLETTER_TRANSPORT": f"smtp+starttls://127.0.0.1:{free_port()}"}))
    assert "anslutning misslyckades" in down["transport"]
    with RecordingSMTPServer() as plain:  # no STARTTLS offered: never on in plaintext
        no_tls = live.lines(live.doctor(env={
            "NEWSLETTER_TRANSPORT": plain.url.replace("smtp://", "smtp+starttls://")}))
    assert "erbjuder inte STARTTLS" in no_tls["transport"]
    assert live.relay.messages == []


def test_a_maildir_must_be_writable(live):
    ok = live.lines(live.doctor(env={"NEWSLETTER_TRANSPORT": "maildir:Utkorg"}))
    assert ok["transport"].startswith("✓") and "är skrivbar" in ok["transport"]
    assert not (live.site.root / "Utkorg").exists()  # checked, not created
    (live.site.root / "Utkorg" / "tmp").mkdir(parents=True)
    ok = live.lines(live.doctor(env={"NEWSLETTER_TRANSPORT": "maildir:Utkorg"}))
    assert ok["transport"].startswith("✓")
    assert list((live.site.root / "Utkorg" / "tmp").iterdir()) == []  # the probe is gone
    (live.site.root / "Blocked").write_text("a file where the Maildir should be")
    blocked = live.lines(live.doctor(env={"NEWSLETTER_TRANSPORT": "maildir:Blocked"}))
    assert blocked["transport"].startswith("✗ transport: kan inte skriva till")


def _answering(status: int, headers: dict | None = None):
    @Request.application
    def app(request: Request) -> Response:
        if request.method == "GET":
            return Response("arkiv", 200)
        return Response("", status, headers=headers or {})
    return app


def test_the_pages_must_answer_the_one_click_post_directly(live, pages_cert):
    def lines_with(app):
        with HttpsServer(app, pages_cert) as server:
            return live.lines(_doctor_at(live, server.port))

    redirected = lines_with(_answering(301, {"Location": "https://www.smakommuner.example/"}))
    assert redirected["webbsidor"].startswith("✓")
    assert "en omdirigering till https://www.smakommuner.example/" in redirected[
        "avregistrering med ett klick"]
    refused = lines_with(_answering(405))
    assert refused["avregistrering med ett klick"].startswith("✗") and "status 405" in refused[
        "avregistrering med ett klick"]


def _doctor_at(live, port: int):
    """Doctor with the site's base URL on another port (another server there)."""
    make_real(live.site, f"https://localhost:{port}")
    return live.doctor()


def test_the_pages_need_https_with_a_valid_certificate(live, certs):
    settings = live.settings
    with HttpsServer(create_app(settings), certs.self_signed) as server:
        lines = live.lines(_doctor_at(live, server.port))
    assert "certifikatet är inte giltigt" in lines["webbsidor"]
    assert lines["avregistrering med ett klick"] == (
        "✗ avregistrering med ett klick: inte kontrollerat: ingen giltig HTTPS")
    make_real(live.site, "http://127.0.0.1:8000")
    lines = live.lines(live.doctor())
    assert lines["webbsidor"] == "✗ webbsidor: http://127.0.0.1:8000 är inte https"
    closed = live.lines(_doctor_at(live, free_port()))
    assert closed["webbsidor"].startswith("✗") and "inte kontrollerat" in closed[
        "avregistrering med ett klick"]


def test_a_certificate_about_to_run_out_fails(live):
    settings = live.settings
    later = datetime.now(UTC) + timedelta(days=30 - doctor.CERT_MIN_DAYS + 1)
    context = ssl.create_default_context(cafile=live.env["SSL_CERT_FILE"])
    [pages] = [c for c in doctor.checks(settings, now=later, timeout=3, https_context=context)
               if c.name == "webbsidor"]
    assert not pages.ok and "går ut" in pages.detail
