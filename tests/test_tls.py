"""SMTP over TLS: STARTTLS and SMTPS with AUTH on real aiosmtpd servers, certificates made by a
throw-away CA at test time (Debian's `openssl` command), verification always on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newsletter.errors import TransportConfigError
from newsletter.settings import load_settings
from newsletter.transports import SMTPTransport, from_settings

from .certs import PASSWORD, USER, Certs, server_context
from .helpers import TEST_ENV, seed
from .smtp_server import RecordingSMTPServer

MESSAGE = b"From: a@example.se\r\nTo: p@example.se\r\nSubject: Hej\r\n\r\nHej!\r\n"
# aiosmtpd warns about auth_required without TLS on the plaintext servers some tests start.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --- certificates: tests/certs.py, the session's set from conftest's `certs` ---------------------

@pytest.fixture(params=["starttls", "smtps"])
def tls_server(request, certs) -> Iterator[RecordingSMTPServer]:
    """A started STARTTLS or SMTPS server with the CA's certificate, AUTH required."""
    with RecordingSMTPServer(users={USER: PASSWORD}, tls=server_context(certs.server),
                             implicit_tls=request.param == "smtps") as server:
        yield server


def env(server: RecordingSMTPServer, certs: Certs | None, password: str = PASSWORD,
        url: str | None = None) -> dict[str, str]:
    """The environment of a send through SERVER (or URL), trusting CERTS.ca_file if given."""
    return {"NEWSLETTER_TRANSPORT": url or server.url, "NEWSLETTER_SMTP_USER": USER,
            "NEWSLETTER_SMTP_PASSWORD": password,
            **({"NEWSLETTER_SMTP_CA_FILE": str(certs.ca_file)} if certs else {})}


# --- whole mailings --------------------------------------------------------------------------

def test_a_whole_mailing_over_tls_with_auth(site, certs, tls_server):
    addresses = seed(site, 12)
    tls_server.drop_after(1)  # and one reconnect, which must be over TLS and AUTH again
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
                      env=env(tls_server, certs))
    assert "12 skickade" in result.stdout and "klart" in result.stdout
    assert tls_server.copies() == {a: 1 for a in addresses}
    assert tls_server.sessions >= 2
    for message in tls_server.messages:
        assert message.tls.startswith("TLSv1."), message
        assert message.login == USER
    assert tls_server.auth_attempts and all(
        user == USER and ok and tls.startswith("TLSv1.")
        for user, ok, tls in tls_server.auth_attempts)
    status = site.cli("send", "status", "1").stdout
    assert "skickade: 12" in status


def test_a_wrong_password_pauses_and_sends_nothing(site, certs, tls_server):
    seed(site, 6)
    args = ("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    result = site.cli(*args, env=env(tls_server, certs, password="fel-losen"), ok=False)
    assert result.exit_code == 1 and "pausat" in result.stderr
    assert "inloggningen nekades" in result.stderr and "535" in result.stderr
    assert "fel-losen" not in result.stdout + result.stderr
    assert tls_server.messages == []
    assert all(not ok and tls for _, ok, tls in tls_server.auth_attempts)
    status = site.cli("send", "status", "1").stdout
    assert "Status: pausat" in status and "väntar: 6" in status and "misslyckade" not in status
    resumed = site.cli("send", "resume", "1", env=env(tls_server, certs))
    assert "klart" in resumed.stdout and len(tls_server.messages) == 6


@pytest.mark.parametrize("cert, ca, why", [
    ("server", False, "unable to get local issuer certificate"),
    ("self_signed", True, "self-signed certificate"),
    ("wrong_host", True, "address mismatch"),
])
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_an_untrusted_certificate_pauses_before_the_password_is_sent(site, certs, cert, ca, why,
                                                                      implicit):
    seed(site, 4)
    with RecordingSMTPServer(users={USER: PASSWORD}, tls=server_context(getattr(certs, cert)),
                             implicit_tls=implicit) as server:
        result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
                          env=env(server, certs if ca else None), ok=False)
        assert result.exit_code == 1 and "pausat" in result.stderr
        assert "certifikat är inte betrott" in result.stderr and why in result.stderr
        hint = {"server": "ange dess PEM-fil i NEWSLETTER_SMTP_CA_FILE",
                "self_signed": f"ingen certifikatutfärdare (CA) i {certs.ca_file}",
                "wrong_host": "inte 127.0.0.1"}
        assert hint[cert] in result.stderr
        assert server.messages == [] and server.auth_attempts == []
    assert "väntar: 4" in site.cli("send", "status", "1").stdout


def test_starttls_in_the_url_but_not_offered_is_refused_never_plaintext(site, certs):
    seed(site, 3)
    with RecordingSMTPServer(users={USER: PASSWORD}) as plain:  # AUTH offered without TLS
        url = f"smtp+starttls://127.0.0.1:{plain.port}"
        result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
                          env=env(plain, certs, url=url), ok=False)
        assert result.exit_code == 1 and "servern erbjuder inte STARTTLS" in result.stderr
        assert result.stderr.count(url) == 1  # the server named once, not once per layer
        assert plain.messages == [] and plain.auth_attempts == []


def test_smtps_to_a_plaintext_server_is_refused(certs):
    with RecordingSMTPServer() as plain:
        transport = SMTPTransport("smtps", "127.0.0.1", plain.port, timeout=10)
        result = transport.connection().send("a@example.se", "p@example.se", MESSAGE)
        assert result.outcome == "pause" and "TLS med smtps://" in result.detail
        assert plain.messages == []


# --- AUTH over plaintext ---------------------------------------------------------------------

def test_auth_over_plaintext_only_to_loopback(site):
    seed(site, 2)
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes", ok=False, env={
        "NEWSLETTER_TRANSPORT": "smtp://post.example.se:587", "NEWSLETTER_SMTP_USER": USER,
        "NEWSLETTER_SMTP_PASSWORD": PASSWORD})
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "smtp:// är okrypterat" in result.stderr and "smtp+starttls://" in result.stderr
    with pytest.raises(TransportConfigError, match="okrypterat"):
        SMTPTransport("smtp", "10.0.0.25", 25, user=USER, password=PASSWORD)
    for host in ("127.0.0.1", "::1", "localhost"):
        assert SMTPTransport("smtp", host, 25, user=USER, password=PASSWORD).user == USER
    assert SMTPTransport("smtp", "post.example.se", 25).user is None  # no AUTH: allowed


def test_plain_smtp_never_upgrades_and_a_tls_only_auth_server_pauses_it(certs):
    with RecordingSMTPServer(users={USER: PASSWORD}, tls=server_context(certs.server)) as server:
        transport = SMTPTransport("smtp", "127.0.0.1", server.port, user=USER, password=PASSWORD,
                                  timeout=10)
        result = transport.connection().send("a@example.se", "p@example.se", MESSAGE)
        assert result.outcome == "pause" and "AUTH" in result.detail
        assert server.messages == [] and server.auth_attempts == []


# --- settings --------------------------------------------------------------------------------

def test_ca_file_setting(site, certs, tmp_path):
    base = {**TEST_ENV, "NEWSLETTER_TRANSPORT": "smtps://127.0.0.1:4650"}
    settings = load_settings(site.root, env={**base, "NEWSLETTER_SMTP_CA_FILE": str(certs.ca_file)})
    assert settings.transport.smtp_ca_file == str(certs.ca_file)
    assert from_settings(settings).ca_file == str(certs.ca_file)
    assert from_settings(load_settings(site.root, env=base)).ca_file is None
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("inte ett certifikat\n")
    for path, message in [(tmp_path / "saknas.pem", "filen finns inte"),
                          (not_pem, "ingen PEM-fil")]:
        bad = load_settings(site.root, env={**base, "NEWSLETTER_SMTP_CA_FILE": str(path)})
        with pytest.raises(TransportConfigError, match=f"NEWSLETTER_SMTP_CA_FILE .*{message}"):
            from_settings(bad)
    lonely = load_settings(site.root, env={**base, "NEWSLETTER_SMTP_PASSWORD": PASSWORD})
    with pytest.raises(TransportConfigError, match="men inte NEWSLETTER_SMTP_USER"):
        from_settings(lonely)
