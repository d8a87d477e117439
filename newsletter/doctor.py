"""`newsletter doctor`: is this site ready to send real mail? A checklist, each line passing or
failing with what to do.

`checks(settings, ...)` yields one `Check` at a time (the network ones take a moment each):
the settings (valid, not the demo's), the database (reachable, at the current revision, made
with this secret key), the worker's heartbeat, the transport (SMTP: connect, EHLO, STARTTLS,
AUTH and MAIL FROM, then RSET and QUIT, so nothing is sent; Maildir: writable), the sender
domain's SPF, DKIM and DMARC records (dnscheck.py), and the public pages (HTTPS with a
certificate the system trusts; the unsubscribe address answers an RFC 8058 one-click POST).

Nothing here changes the site: the database is only read (a missing SQLite file is reported,
not created; nor is a missing Maildir), the SMTP session ends before DATA, and the one-click
POST names a person who cannot exist, so the pages answer it as they would a real one (no
redirect, no cookie, no form token) without unsubscribing anyone. A check that cannot run
because an earlier one failed (no database, so no heartbeat) says so and fails too. Every
network step has a timeout.
"""

from __future__ import annotations

import errno
import http.client
import os
import secrets
import smtplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from . import db, dnscheck, heartbeat, links, siteconfig, transports
from .contacts import normalise_email
from .errors import NewsletterError
from .i18n import _, pgettext
from .messages import DkimSigner
from .models import Person
from .netloc import is_loopback
from .settings import CONFIG_NAME, Settings

CERT_MIN_DAYS = 7  # a certificate that runs out sooner should have been renewed already
MIN_DKIM_BITS = 1024  # receivers ignore shorter keys (RFC 8301)
_PROBE = "doctor-probe-"  # the public id of the person the one-click probe names: never real


@dataclass(frozen=True)
class Check:
    """One line of the checklist: NAME passed (OK) or not, what was found, what to do."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def checks(settings: Settings, *, dns_server: str | None = None, now: datetime | None = None,
           timeout: float = 10.0,
           https_context: ssl.SSLContext | None = None) -> Iterator[Check]:
    """The checklist for SETTINGS, one Check at a time. DNS_SERVER (`HOST[:PORT]`) is asked
    instead of the system's resolver; NOW is the clock for the heartbeat and the certificate;
    HTTPS_CONTEXT verifies the pages' certificate (default: the system's CAs)."""
    now = now or datetime.now(UTC)
    yield _settings(settings)
    database = _database(settings)
    yield database
    yield _worker(settings, now) if database.ok else Check(
        _("worker"), False, _("not checked: the database is not usable"))
    yield _transport(settings, timeout)
    yield from _dns(settings, dns_server, timeout)
    yield from _pages(settings, now, timeout, https_context or ssl.create_default_context())


# --- settings, database, worker ----------------------------------------------------------------

def _settings(settings: Settings) -> Check:
    name = _("settings")
    org = settings.organisation
    demo = siteconfig.demo_fields(org)
    if demo:
        return Check(name, False, _("{file} still has the demo's values: {keys}").format(
            file=CONFIG_NAME, keys=", ".join(f"organisation.{k}" for k in demo)),
            _("put your organisation's values in [organisation] of {file} (a new site: `newsletter "
              "init`)").format(file=CONFIG_NAME))
    for key in ("sender", "reply_to", "unsubscribe_mailto"):
        try:
            normalise_email(getattr(org, key), field=f"organisation.{key}")
        except NewsletterError as exc:
            return Check(name, False, str(exc), _("correct it in {file}").format(
                file=CONFIG_NAME))
    try:
        DkimSigner.from_settings(settings)
    except NewsletterError as exc:
        return Check(name, False, str(exc), _("see DKIM in docs/DEPLOY.md"))
    return Check(name, True, _("{file} read; {org}, sender {sender}").format(
        file=settings.root / CONFIG_NAME, org=org.name, sender=org.sender))


def _database(settings: Settings) -> Check:
    name = _("database")
    init = _("run `newsletter init`")
    url = settings.db_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return Check(name, False, _("no database at {path}").format(path=path), init)
    try:
        engine = db.make_engine(url)
    except NewsletterError as exc:
        return Check(name, False, str(exc), _("correct [database] url or NEWSLETTER_DB_URL"))
    shown = engine.url.render_as_string(hide_password=True)
    try:
        revision, head = db.current_revision(engine), db.head_revision()
        if revision != head:
            return Check(name, False, _("{db} is at revision {rev}, this version needs {head}")
                         .format(db=shown, rev=revision or pgettext("revision", "none"),
                                 head=head), init)
        if not settings.secret_key:
            return Check(name, False, _("no secret key"), _(
                "set NEWSLETTER_SECRET_KEY (the key this database was made with)"))
        with db.session_factory(engine)() as session:
            matches = db.key_matches(session, settings.secret_key)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return Check(name, False, _("{db}: {reason}").format(db=shown, reason=reason),
                     _("is the database server running, and the URL right?"))
    finally:
        engine.dispose()
    if matches is None:
        return Check(name, False, _("{db} has no key fingerprint").format(db=shown), init)
    if not matches:
        return Check(name, False, _("{db} was made with another secret key").format(db=shown),
                     _("set NEWSLETTER_SECRET_KEY to the key it was made with"))
    return Check(name, True, _("{db}, revision {rev}, made with this secret key").format(
        db=shown, rev=revision))


def _worker(settings: Settings, now: datetime) -> Check:
    name = _("worker")
    engine = db.make_engine(settings.db_url)
    try:
        with db.session_factory(engine)() as session:
            beats = heartbeat.beats(session)
    finally:
        engine.dispose()
    seen = max(beats.values(), default=None)
    start = _("start it: systemctl enable --now newsletter-worker (docs/DEPLOY.md)")
    if seen is None:
        return Check(name, False, _("no `newsletter worker` has run on this database"), start)
    ago = max(0, int((now - seen).total_seconds()))
    if heartbeat.is_stale(seen, now):
        return Check(name, False, _("last seen {ago} s ago ({at:%Y-%m-%d %H:%M} UTC)").format(
            ago=ago, at=seen), start)
    fresh = sum(1 for at in beats.values() if not heartbeat.is_stale(at, now))
    return Check(name, True, _("seen {ago} s ago ({n} running)").format(ago=ago, n=fresh))


# --- transport ---------------------------------------------------------------------------------

def _transport(settings: Settings, timeout: float) -> Check:
    name = _("transport")
    try:
        transport = transports.from_settings(settings)
    except NewsletterError as exc:
        return Check(name, False, str(exc), _("correct transport.url or NEWSLETTER_TRANSPORT"))
    if isinstance(transport, transports.MaildirTransport):
        return _maildir(name, transport)
    assert isinstance(transport, transports.SMTPTransport)
    return _smtp(name, transport, settings.organisation.sender, timeout)


def _maildir(name: str, transport: transports.MaildirTransport) -> Check:
    path = transport.path
    try:
        if path.exists():
            probe = path / "tmp" / f".doctor-{secrets.token_hex(6)}"
            probe.write_bytes(b"")
            probe.unlink()
        else:  # the first send creates it: its nearest existing folder must be writable
            parent = next(p for p in path.parents if p.exists())
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, f"{parent} is not a writable folder")
    except OSError as exc:
        return Check(name, False, _("cannot write to {path}: {reason}").format(
            path=path, reason=exc.strerror or exc),
            _("make the folder writable for the user that sends"))
    return Check(name, True, _("{what} is writable (nothing leaves this machine; a live site "
                               "sends through SMTP)").format(what=transport.description))


def _smtp(name: str, t: transports.SMTPTransport, sender: str, timeout: float) -> Check:
    done: list[str] = []
    step = _("connect")
    smtp: smtplib.SMTP | None = None
    try:
        if t.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=timeout, context=t.ssl_context)
            done.append(_("connected over {tls}").format(tls=smtp.sock.version()))
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=timeout)
            done.append(_("connected"))
        step = "EHLO"
        code, reply = smtp.ehlo()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        done.append("EHLO")
        if t.scheme == "smtp+starttls":
            step = "STARTTLS"
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(_("the server does not offer STARTTLS"))
            smtp.starttls(context=t.ssl_context)
            smtp.ehlo()
            done.append(f"STARTTLS ({smtp.sock.version()})")
        if t.user:
            step = "AUTH"
            smtp.login(t.user, t.password or "")
            done.append(_("AUTH as {user}").format(user=t.user))
        step = "MAIL FROM"
        code, reply = smtp.mail(sender)
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        done.append(_("MAIL FROM:<{sender}> accepted").format(sender=sender))
        smtp.rset()
    except ssl.SSLCertVerificationError as exc:
        return Check(name, False, _("{url}: {step}: the certificate is not trusted ({why})")
                     .format(url=t.description, step=step, why=exc.verify_message or exc),
                     _("use the name the certificate is for; a private CA goes in "
                       "NEWSLETTER_SMTP_CA_FILE"))
    except smtplib.SMTPAuthenticationError as exc:
        return Check(name, False, _("{url}: AUTH refused: {reply}").format(
            url=t.description, reply=_reply(exc)),
            _("check NEWSLETTER_SMTP_USER and NEWSLETTER_SMTP_PASSWORD"))
    except (OSError, smtplib.SMTPException) as exc:
        reply = _reply(exc) if isinstance(exc, smtplib.SMTPResponseException) else (
            str(exc) or exc.__class__.__name__)
        return Check(name, False, _("{url}: {step} failed: {reply}").format(
            url=t.description, step=step, reply=reply), _(
            "check the relay's address, port and what it allows (docs/DEPLOY.md)"))
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    return Check(name, True, _("{url}: {steps}; nothing sent").format(
        url=t.description, steps=", ".join(done)))


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
        exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())}"


# --- DNS -----------------------------------------------------------------------------------------

def _dns(settings: Settings, server: str | None, timeout: float) -> Iterator[Check]:
    domain = settings.organisation.sender.rpartition("@")[2]
    try:
        lookup = dnscheck.Lookup.using(server, timeout=min(timeout, 5.0))
    except (dnscheck.DnsError, ValueError) as exc:
        for name in ("SPF", "DKIM", "DMARC"):
            yield Check(name, False, str(exc), _("give --dns-server HOST[:PORT]"))
        return
    for name, check in (("SPF", _spf), ("DKIM", _dkim), ("DMARC", _dmarc)):
        try:
            yield check(settings, lookup, domain)
        except dnscheck.DnsError as exc:
            yield Check(name, False, str(exc), _("is the DNS server reachable?"))


def sending_host(settings: Settings) -> str:
    """The host whose address the SPF record must cover: transport.sending_host, else the SMTP
    relay's host, else (Maildir, or a relay on loopback that then sends itself) this machine."""
    if settings.transport.sending_host:
        return settings.transport.sending_host
    try:
        transport = transports.from_settings(settings)
    except NewsletterError:
        transport = None
    if isinstance(transport, transports.SMTPTransport) and not is_loopback(
            transport.host):
        return transport.host
    return socket.getfqdn()


def _spf(settings: Settings, lookup: dnscheck.Lookup, domain: str) -> Check:
    host = sending_host(settings)
    addresses = lookup.addresses(host)
    if not addresses:
        return Check("SPF", False, _("the sending host {host} has no address in DNS").format(
            host=host), _("set transport.sending_host to your relay's public name in {file}")
            .format(file=CONFIG_NAME))
    verdicts = [(ip, dnscheck.spf_check(lookup, domain, ip)) for ip in addresses]
    failed = [(ip, v) for ip, v in verdicts if v.result != "pass"]
    if not failed:
        ip, first = verdicts[0]
        return Check("SPF", True, _("{domain} allows {host} ({ips}) by {term}").format(
            domain=domain, host=host, ips=", ".join(map(str, addresses)), term=first.term))
    ip, verdict = failed[0]
    mechanism = f"ip{ip.version}:{ip}"
    if verdict.result == "none":
        return Check("SPF", False, verdict.reason, _(
            'publish TXT at {domain}: "v=spf1 {mechanism} -all"').format(
            domain=domain, mechanism=mechanism))
    if verdict.result == "permerror":
        return Check("SPF", False, _("{domain}: the record is broken: {reason}").format(
            domain=domain, reason=verdict.reason), _("correct the TXT record at {domain}")
            .format(domain=domain))
    notes = f" ({'; '.join(verdict.notes)})" if verdict.notes else ""
    return Check("SPF", False, _("{domain} does not allow {host} ({ip}): {result}{notes}")
                 .format(domain=domain, host=host, ip=ip, result=verdict.result, notes=notes),
                 _("add {mechanism} (or your relay's include:) before the all in \"{record}\"")
                 .format(mechanism=mechanism, record=verdict.record))


def _dkim(settings: Settings, lookup: dnscheck.Lookup, domain: str) -> Check:
    t = settings.transport
    if not t.dkim_selector or not t.dkim_domain:
        return Check("DKIM", False, _("messages are not DKIM-signed (no transport.dkim_selector "
                                      "and dkim_domain)"),
                     _("make a key and set NEWSLETTER_DKIM_KEY_FILE, NEWSLETTER_DKIM_SELECTOR "
                       "and NEWSLETTER_DKIM_DOMAIN (docs/DEPLOY.md)"))
    if not dnscheck.aligned(t.dkim_domain, domain):
        return Check("DKIM", False, _("the DKIM domain {dkim} is not the sender's {domain}: "
                                      "DMARC fails").format(dkim=t.dkim_domain, domain=domain),
                     _("sign as {domain} (NEWSLETTER_DKIM_DOMAIN)").format(domain=domain))
    name = dnscheck.dkim_name(t.dkim_selector, t.dkim_domain)
    records = [r for r in lookup.txt(name) if "p=" in r]
    publish = _("publish TXT at {name}: v=DKIM1; k=rsa; p=<the key's public half: openssl rsa "
                "-in KEY -pubout -outform der | base64 -w0>").format(name=name)
    if not records:
        return Check("DKIM", False, _("no DKIM record at {name}").format(name=name), publish)
    try:
        published = dnscheck.record_public_key(dnscheck.tags(records[0]))
    except ValueError as exc:
        return Check("DKIM", False, f"{name}: {exc}", publish)
    if published.bits < MIN_DKIM_BITS:
        return Check("DKIM", False, _("{name}: a {bits}-bit key, which receivers ignore").format(
            name=name, bits=published.bits), _("make a 2048-bit key"))
    if not t.dkim_key_file:
        return Check("DKIM", True, _("{name}: an RSA key of {bits} bits; the relay signs (no "
                                     "NEWSLETTER_DKIM_KEY_FILE here)").format(
                                         name=name, bits=published.bits))
    key_file = Path(t.dkim_key_file)
    try:
        ours = dnscheck.private_key_public_part(key_file.read_bytes())
    except (OSError, ValueError) as exc:
        return Check("DKIM", False, f"NEWSLETTER_DKIM_KEY_FILE {key_file}: {exc}",
                     _("name the PEM file of the private key"))
    if ours != published:
        return Check("DKIM", False, _("{name} holds a different key from {file}").format(
            name=name, file=key_file), _("publish this key's public half, or use the key file "
                                         "that belongs to the record") + f": {publish}")
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    sample = (f"From: {settings.organisation.sender}\r\nTo: {settings.organisation.reply_to}\r\n"
              f"Subject: doctor\r\nDate: Tue, 01 Dec 2026 08:00:00 +0000\r\n"
              f"Message-ID: <doctor@{t.dkim_domain}>\r\n\r\nDKIM check.\r\n").encode()
    if not dnscheck.dkim_verifier(lookup)(signer.sign(sample)):
        return Check("DKIM", False, _("{name} matches {file}, but a signed message does not "
                                      "verify (see the record's other tags)").format(
                                          name=name, file=key_file), publish)
    return Check("DKIM", True, _("{name} matches {file} ({bits} bits); a signed test message "
                                 "verifies").format(name=name, file=key_file, bits=ours.bits))


def _dmarc(settings: Settings, lookup: dnscheck.Lookup, domain: str) -> Check:
    publish = _('publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:{address}"').format(
        domain=domain, address=settings.organisation.reply_to)
    try:
        found = dnscheck.dmarc_record(lookup, domain)
    except ValueError as exc:
        return Check("DMARC", False, str(exc), publish)
    if found is None:
        return Check("DMARC", False, _("no DMARC record for {domain}").format(domain=domain),
                     publish)
    policy = found.tags.get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return Check("DMARC", False, _("{name}: p={policy} is not none, quarantine or reject")
                     .format(name=found.name, policy=policy or _("(missing)")), publish)
    note = _(" (monitoring only; quarantine once the reports are clean)") if (
        policy == "none") else ""
    return Check("DMARC", True, _("{name}: p={policy}{note}").format(
        name=found.name, policy=policy, note=note))


# --- the public pages ----------------------------------------------------------------------

def _pages(settings: Settings, now: datetime, timeout: float,
           context: ssl.SSLContext) -> Iterator[Check]:
    name, post = _("web pages"), _("one-click unsubscribe")
    base = settings.organisation.base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "https":
        yield Check(name, False, _("{url} is not https").format(url=base), _(
            "publish `newsletter serve` behind a TLS proxy and set organisation.base_url to "
            "its https:// address (docs/DEPLOY.md)"))
        yield Check(post, False, _("not checked: the pages are not on https"))
        return
    try:
        status, _headers, cert = _request(base + "/", "GET", context, timeout)
    except ssl.SSLCertVerificationError as exc:
        yield Check(name, False, _("{url}: the certificate is not valid ({why})").format(
            url=base, why=exc.verify_message or exc), _(
            "a certificate from a public CA for this name (Caddy gets one by itself)"))
        yield Check(post, False, _("not checked: no valid HTTPS"))
        return
    except (OSError, http.client.HTTPException) as exc:
        yield Check(name, False, _("{url}: {reason}").format(
            url=base, reason=str(exc) or exc.__class__.__name__),
            _("is `newsletter serve` running behind the proxy?"))
        yield Check(post, False, _("not checked: the pages do not answer"))
        return
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    left = expires - now
    if status != 200:
        yield Check(name, False, _("GET {url}/ answered {status}").format(url=base, status=status),
                    _("the proxy should pass every path to `newsletter serve`"))
    elif left < timedelta(days=CERT_MIN_DAYS):
        yield Check(name, False, _("{url}: the certificate runs out {at:%Y-%m-%d}").format(
            url=base, at=expires), _("renew it (is the proxy's renewal working?)"))
    else:
        yield Check(name, True, _("{url}: HTTPS, certificate valid until {at:%Y-%m-%d} ({days} "
                                  "days)").format(url=base, at=expires, days=left.days))
    yield _one_click(settings, post, context, timeout)


def _one_click(settings: Settings, name: str, context: ssl.SSLContext, timeout: float) -> Check:
    probe = Person(public_id=_PROBE + secrets.token_hex(8))
    url = links.unsubscribe_url(settings, probe)
    try:
        status, headers, _cert = _request(url, "POST", context, timeout,
                                          body=b"List-Unsubscribe=One-Click")
    except (OSError, http.client.HTTPException) as exc:
        return Check(name, False, _("POST {url}: {reason}").format(url=url, reason=exc),
                     _("is `newsletter serve` running behind the proxy?"))
    shown = url.rsplit("/", 1)[0] + "/…"
    # 404: the pages' answer for a person who does not exist (a real one gets 200).
    if status in (200, 404):
        return Check(name, True, _("POST {url} (List-Unsubscribe=One-Click) answered directly, "
                                   "no redirect, no cookie needed").format(url=shown))
    if 300 <= status < 400:
        why = _("a redirect to {where}: mailbox providers do not follow it").format(
            where=headers.get("Location", "?"))
    else:
        why = _("status {status}").format(status=status)
    return Check(name, False, _("POST {url}: {why}").format(url=shown, why=why), _(
        "the proxy must pass POST /u/... to `newsletter serve` as it is, on the base URL's "
        "own host name"))


def _request(url: str, method: str, context: ssl.SSLContext, timeout: float,
             body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, dict]:
    """One HTTPS request without following redirects: (status, headers, peer certificate)."""
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443,
                                       context=context, timeout=timeout)
    try:
        conn.connect()
        cert = conn.sock.getpeercert() if conn.sock else {}
        headers = {"User-Agent": "newsletter-doctor"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read(1 << 20)
        return response.status, response.headers, cert or {}
    finally:
        conn.close()
