"""Transports: where finished messages go. Maildir (the default) and SMTP behind one interface.

A `Transport` is made once per send from the transport URL; the engine asks it for one
`Connection` per worker and calls `open()`, `send(envelope_from, rcpt, data) -> Result` many
times, then `close()`. A connection reconnects by itself when the server dropped it. With
`ready=True` the caller promises DATA is already as SMTP sends it (CRLF line endings only,
ending in CRLF, no line starting with ".": what MessageTemplate.build returns), and SMTP sends
it without scanning it; where the server offers PIPELINING (RFC 2920: Postfix, smtp-sink, the
ESPs' relays) MAIL FROM, RCPT TO and DATA then go in one write, so that a message costs two
round trips instead of four. The replies are read and judged in the same order either way.

`Result.outcome` is the shared vocabulary the engine records:

- `sent`: the server took the message (250), or it is in the Maildir;
- `deferred`: 4xx or a lost connection: try again later;
- `bounced`: 5.1.x, the address does not exist: suppress it as a hard bounce;
- `failed`: another permanent (5xx) refusal of this one message;
- `pause`: 5.7.x, a refused sender or failed authentication: the mailing stops, nobody is blamed.

Addresses: the domain always goes as its IDNA A-label. An address whose local part is not ASCII
(`åsa.lindström@...`) goes with `MAIL FROM:<...> SMTPUTF8` (RFC 6531) when the server offers
SMTPUTF8; when it does not, that one message fails with the reason (no other spelling of such an
address exists) and the mailing goes on. Maildir takes any address.

TLS: `smtp+starttls://` and `smtps://` verify the server's certificate and host name, always,
against the system's CAs or only those in `transport.smtp_ca_file` (NEWSLETTER_SMTP_CA_FILE); an
untrusted certificate or a server that does not offer STARTTLS pauses the mailing, never a
fallback to plaintext. AUTH over plaintext `smtp://` only to a loopback address (a relay on this
machine): elsewhere the password would cross the network in clear, and the URL is refused.
"""

from __future__ import annotations

import mailbox
import os
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from .addresses import AddressError, needs_smtputf8, wire_form
from .errors import TransportConfigError
from .files import PRIVATE
from .i18n import _, shown
from .netloc import is_loopback
from .settings import Settings

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_AUTH_CODES = {530, 534, 535, 538}
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# An address smtplib's quoteaddr() would pass through unchanged: dot-atom local part, plain
# ASCII domain. Such addresses go into MAIL FROM/RCPT TO as they are, skipping its parser.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


class Outcome(StrEnum):
    """What became of one message handed to a transport (see the module docstring)."""

    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"
    PAUSE = "pause"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code} {self.detail}".strip() if self.code else self.detail


class Connection(Protocol):
    def open(self) -> None: ...

    def send(self, envelope_from: str, rcpt: str, data: bytes, *,
             ready: bool = False) -> Result: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Makes connections; `description` names the destination for messages to the user."""

    description: str

    def connection(self) -> Connection: ...


def classify(code: int, message: str, *, sender: bool = False) -> Result:
    """The outcome of an SMTP reply CODE MESSAGE; SENDER: it was the reply to MAIL FROM."""
    detail = message.strip()
    if 200 <= code < 300:
        return Result(Outcome.SENT, code, detail)
    if 400 <= code < 500:
        return Result(Outcome.DEFERRED, code, detail)
    enhanced = _ENHANCED.match(detail)
    klass, subject = (enhanced.group(1), enhanced.group(2)) if enhanced else (None, None)
    if code in _AUTH_CODES or subject == "7" or sender:
        return Result(Outcome.PAUSE, code, detail)
    if klass == "5" and subject == "1":
        return Result(Outcome.BOUNCED, code, detail)
    return Result(Outcome.FAILED, code, detail)


# --- Maildir ---------------------------------------------------------------------------------

class MaildirTransport:
    """`maildir:PATH`: each message a file, written to tmp/ and renamed into new/ (atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"Maildir {path}"
        self._lock = threading.Lock()
        self._box: mailbox.Maildir | None = None

    def connection(self) -> MaildirConnection:
        return MaildirConnection(self)

    def box(self) -> mailbox.Maildir:
        with self._lock:
            if self._box is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, factory=None, create=True)  # mode 0700
                for sub in ("tmp", "new", "cur"):  # also when PATH existed as an empty folder
                    (self.path / sub).mkdir(mode=0o700, exist_ok=True)
            return self._box

    def deliver(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        head = f"Return-Path: <{envelope_from}>\nDelivered-To: {rcpt}\n".encode()  # UTF-8
        local = head + data.replace(b"\r\n", b"\n")
        box = self.box()
        with self._lock:  # mailbox.Maildir's unique names are per instance: one writer at a time
            key = box.add(local)  # written to tmp/, then renamed into new/
            os.chmod(self.path / "new" / key, PRIVATE)  # mailbox makes it with the umask's mode
        return Result(Outcome.SENT, None, f"maildir {key}")


class MaildirConnection:
    def __init__(self, transport: MaildirTransport) -> None:
        self.transport = transport

    def open(self) -> None:
        self.transport.box()

    def send(self, envelope_from: str, rcpt: str, data: bytes, *,
             ready: bool = False) -> Result:
        try:
            return self.transport.deliver(envelope_from, rcpt, data)
        except OSError as exc:
            return Result(Outcome.PAUSE, None, _("cannot write to {path}: {reason}").format(
                path=self.transport.path, reason=exc))

    def close(self) -> None:
        pass


# --- SMTP ------------------------------------------------------------------------------------

class SMTPTransport:
    """`smtp://`, `smtp+starttls://` or `smtps://` HOST[:PORT], optional AUTH."""

    def __init__(self, scheme: str, host: str, port: int, *, user: str | None = None,
                 password: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 ca_file: str | None = None, timeout: float = 60.0) -> None:
        """SSL_CONTEXT: how to verify the server (default: the system's CAs); CA_FILE: the
        bundle it trusts, only to name it in messages."""
        self.scheme, self.host, self.port = scheme, host, port
        self.user, self.password = user, password
        self.timeout = timeout
        self.description = f"{scheme}://{host}:{port}"
        if scheme == "smtp" and user and not is_loopback(host):
            raise TransportConfigError(_(
                "transport url {url}: NEWSLETTER_SMTP_USER is set, but smtp:// is plaintext "
                "and the password would cross the network in clear: use smtp+starttls:// or "
                "smtps:// (AUTH over smtp:// only to 127.0.0.1 or ::1)").format(
                url=self.description))
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.ca_file = ca_file

    def connection(self) -> SMTPConnection:
        return SMTPConnection(self)


class SMTPConnection:
    """One SMTP session reused for many messages; reconnects once when the server dropped it."""

    def __init__(self, transport: SMTPTransport) -> None:
        self.t = transport
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        t = self.t
        if t.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(t.host, t.port, timeout=t.timeout,
                                                  context=t.ssl_context)
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=t.timeout)
        try:
            smtp.ehlo()
            if t.scheme == "smtp+starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        _("the server does not offer STARTTLS; not sending in plaintext"))
                smtp.starttls(context=t.ssl_context)
                smtp.ehlo()
            if t.user:
                smtp.login(t.user, t.password or "")
        except BaseException:
            _quietly_close(smtp)
            raise
        self.smtp = smtp

    def send(self, envelope_from: str, rcpt: str, data: bytes, *,
             ready: bool = False) -> Result:
        for attempt in (1, 2):
            try:
                if self.smtp is None:
                    self.open()
                return self._transaction(envelope_from, rcpt, data, ready)
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                return Result(Outcome.PAUSE, exc.smtp_code, _("authentication failed: {reason}"
                                                              ).format(reason=_text(exc)))
            except UnicodeEncodeError:
                self.close()
                return Result(Outcome.PAUSE, None,
                              _("NEWSLETTER_SMTP_USER or NEWSLETTER_SMTP_PASSWORD has non-ASCII "
                                "characters: SMTP AUTH cannot send them"))
            except smtplib.SMTPNotSupportedError as exc:
                self.close()
                return Result(Outcome.PAUSE, None, str(exc))  # the engine names the server
            except smtplib.SMTPServerDisconnected as exc:
                # Dropped before this message's DATA: nothing of it was taken, reconnect once.
                self.close()
                if attempt == 2 or getattr(exc, "during_data", False):
                    return Result(Outcome.DEFERRED, None,
                                  _("connection lost: {reason}").format(reason=exc))
            except smtplib.SMTPConnectError as exc:
                self.close()
                return Result(Outcome.DEFERRED, exc.smtp_code,
                              _("cannot connect: {reason}").format(reason=_text(exc)))
            except ssl.SSLCertVerificationError as exc:
                self.close()
                return Result(Outcome.PAUSE, None, self._untrusted(exc))
            except ssl.SSLError as exc:
                self.close()
                return Result(Outcome.PAUSE, None, _("TLS with {relay} failed: {reason}").format(
                    relay=self.t.description, reason=exc))
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                return Result(Outcome.DEFERRED, None,
                              f"{self.t.description}: {exc.__class__.__name__}: {exc}")
        raise AssertionError("unreachable")

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> str:
        why = exc.verify_message or exc.reason or str(exc)
        if exc.verify_code in _NAME_MISMATCH:
            return _("the server's certificate is not trusted, nothing sent ({why}); use a host "
                     "name in the URL that the certificate is for, not {host}").format(
                why=why, host=self.t.host)
        if self.t.ca_file:
            return _("the server's certificate is not trusted, nothing sent ({why}); no CA in "
                     "{file} (NEWSLETTER_SMTP_CA_FILE) signed it").format(why=why,
                                                                          file=self.t.ca_file)
        return _("the server's certificate is not trusted, nothing sent ({why}); if a private CA "
                 "signed it, name that CA's PEM file in NEWSLETTER_SMTP_CA_FILE").format(why=why)

    def _transaction(self, envelope_from: str, rcpt: str, data: bytes, ready: bool) -> Result:
        smtp = self.smtp
        assert smtp is not None
        try:
            envelope_from, rcpt = wire_form(envelope_from), wire_form(rcpt)
        except AddressError as exc:
            return Result(Outcome.FAILED, None, str(exc))
        options: tuple[str, ...] = ()
        if needs_smtputf8(rcpt) or needs_smtputf8(envelope_from):
            if not smtp.has_extn("smtputf8"):
                return Result(Outcome.FAILED, None, (
                    _("{address}: the address can only be sent over SMTPUTF8 (RFC 6531), which "
                      "{relay} does not offer").format(address=rcpt, relay=self.t.description)))
            options = ("SMTPUTF8",)
            smtp.command_encoding = "utf-8"  # for RCPT TO, as smtplib's mail() sets it too
        wire = data if ready else _as_data(data)
        pipelined = smtp.has_extn("pipelining") and all(
            _PLAIN_ADDRESS.fullmatch(a) for a in (envelope_from, rcpt))
        if pipelined:
            # MAIL, RCPT and DATA in one write, their three replies read in order (RFC 2920):
            # two round trips a message instead of four. (Plain addresses need no SMTPUTF8.)
            smtp.send(f"MAIL FROM:<{envelope_from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
            replies = [smtp.getreply() for _verb in range(3)]
        else:
            replies = [_command(smtp, "mail", "FROM", envelope_from, options)]
            if replies[-1][0] == 250:
                replies.append(_command(smtp, "rcpt", "TO", rcpt))
            if replies[-1][0] in (250, 251):
                replies.append(smtp.docmd("data"))
        refusal = _refusal(replies)
        if refusal is not None:
            if replies[-1][0] == 354:
                smtp.send(b".\r\n")  # DATA taken with no recipient: end it empty (RFC 2920)
                smtp.getreply()
            self._rset()
            return refusal
        try:
            smtp.send(wire + b".\r\n")
            code, msg = smtp.getreply()
        except smtplib.SMTPServerDisconnected as exc:
            # The message went out but no reply came: unknown, so it is retried later.
            exc.during_data = True  # type: ignore[attr-defined]
            raise
        return classify(code, _decode(msg))

    def _rset(self) -> None:
        try:
            assert self.smtp is not None
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self.smtp is not None:
            _quietly_close(self.smtp)
            self.smtp = None


def _command(smtp: smtplib.SMTP, verb: str, key: str, address: str,
             options: tuple[str, ...] = ()) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO ADDRESS (with OPTIONS: MAIL FROM's parameters), as
    smtp.mail()/smtp.rcpt() would send it."""
    if not _PLAIN_ADDRESS.fullmatch(address):
        return smtp.mail(address, options) if verb == "mail" else smtp.rcpt(address)
    smtp.putcmd(verb, f"{key}:<{address}>" + "".join(f" {o}" for o in options))
    return smtp.getreply()


_GOOD_REPLIES = ((250,), (250, 251), (354,))  # to MAIL FROM, RCPT TO, DATA


def _refusal(replies: list[tuple[int, bytes]]) -> Result | None:
    """The result of a refused MAIL FROM, RCPT TO or DATA (REPLIES in that order, as far as
    they went), or None when the message may follow."""
    for step, (code, msg) in enumerate(replies):
        if code not in _GOOD_REPLIES[step]:
            return classify(code, _decode(msg), sender=step == 0)
    return None


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _as_data(data: bytes) -> bytes:
    """DATA as SMTP sends it (what smtplib.data() does, which this module bypasses): CRLF line
    endings, a leading "." doubled, ending in CRLF. Ready messages already are."""
    data = _LINE_END.sub(b"\r\n", data).replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _ssl_context(settings: Settings) -> tuple[ssl.SSLContext, str | None]:
    """The context that verifies SMTP servers: the system's CAs, or only those in
    transport.smtp_ca_file (relative to the site root); and that file's path."""
    raw = settings.transport.smtp_ca_file
    if not raw:
        return ssl.create_default_context(), None
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else settings.root / path
    try:
        return ssl.create_default_context(cafile=str(path)), str(path)
    except FileNotFoundError:
        raise TransportConfigError(_("NEWSLETTER_SMTP_CA_FILE {path}: no such file").format(
            path=path)) from None
    except (OSError, ssl.SSLError) as exc:
        raise TransportConfigError(
            _("NEWSLETTER_SMTP_CA_FILE {path}: not a PEM file of CA certificates: {reason}")
            .format(path=path, reason=exc)) from None


def _quietly_close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _decode(msg: bytes | str) -> str:
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _text(exc: smtplib.SMTPResponseException | smtplib.SMTPException) -> str:
    return _decode(getattr(exc, "smtp_error", b"") or str(exc))


def from_settings(settings: Settings, url: str | None = None) -> Transport:
    """The transport for URL (default: settings.transport.url).

    A relative Maildir path is relative to the site root.
    """
    url = url or settings.transport.url
    if url.startswith("maildir:"):
        raw = url[len("maildir:"):]
        raw = raw.removeprefix("//")
        if not raw:
            raise TransportConfigError(_("transport url “{url}”: maildir: needs a path").format(
                url=shown(url)))
        path = Path(raw).expanduser()
        return MaildirTransport(path if path.is_absolute() else settings.root / path)
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise TransportConfigError(
            _("transport url “{url}”: use maildir:PATH, smtp://HOST:PORT, "
              "smtp+starttls://HOST:PORT or smtps://HOST:PORT (transport.url or "
              "NEWSLETTER_TRANSPORT)").format(url=shown(url)))
    if not parts.hostname:
        raise TransportConfigError(_("transport url “{url}”: no host").format(url=shown(url)))
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise TransportConfigError(_("transport url “{url}”: bad port").format(
            url=shown(url))) from None
    if parts.username or parts.password:
        raise TransportConfigError(
            _("transport url {url}: put the user and password in NEWSLETTER_SMTP_USER and "
              "NEWSLETTER_SMTP_PASSWORD, not in the URL").format(
              url=f"{parts.scheme}://{parts.hostname}"))
    if settings.transport.smtp_password and not settings.transport.smtp_user:
        raise TransportConfigError(
            _("NEWSLETTER_SMTP_PASSWORD is set but NEWSLETTER_SMTP_USER is not: set both for "
              "AUTH"))
    context, ca_file = _ssl_context(settings)
    return SMTPTransport(parts.scheme, parts.hostname, port, user=settings.transport.smtp_user,
                         password=settings.transport.smtp_password, ssl_context=context,
                         ca_file=ca_file, timeout=settings.transport.timeout)

