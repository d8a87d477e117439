"""A recording SMTP server for tests: a real aiosmtpd on 127.0.0.1 that can misbehave on purpose.

Use the pytest fixture `smtp_server` (conftest.py):

    def test_something(site, smtp_server):
        site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
                 env={"NEWSLETTER_TRANSPORT": smtp_server.url})
        assert smtp_server.copies()["anna@example.se"] == 1

or start one yourself: `with RecordingSMTPServer() as server: ...` (port found by binding a
socket first: aiosmtpd cannot use port 0, issue 388; `port=` takes over a given one, e.g. the
port of a `SilentRelay` that stopped).

What it records (thread-safe to read while it runs):
- `server.messages`: a list of `Received(mail_from, rcpt_tos, data, session)`, in arrival order;
  `data` is the message as received (bytes, CRLF).
- `server.copies()`: Counter of recipient address -> number of messages received.
- `server.parsed()`: the messages parsed with `email.policy.default`.
- `server.sessions`: how many SMTP sessions (EHLO/HELO) were opened.
- `server.wait_for(n, timeout=10)`: block until N messages arrived.
- `server.wait_until_idle(timeout=10)`: block until every session has said QUIT.

Faults it injects (set from the test at any time, also while a send runs):
- `server.tempfail(n, reply="451 4.3.0 ...")`: the next N RCPT TO commands get a 4xx.
- `server.reject(addresses, reply="550 5.1.1 ...")`: RCPT TO of these addresses always gets REPLY.
- `server.reject_all(reply="554 5.7.1 ...")`: every RCPT TO gets REPLY (None switches it off).
- `server.drop_after(n)`: the next N accepted messages get their 250 and then the connection is
  closed by the server.
- `server.delay = SECONDS`: each message is recorded, then the 250 comes SECONDS later (a slow
  server, so that a test can kill a sender in the middle of a mailing).
- `RecordingSMTPServer(users={"user": "password"})`: AUTH required (PLAIN/LOGIN, no TLS).
- `RecordingSMTPServer(smtputf8=False)`: SMTPUTF8 (RFC 6531) not offered (by default it is, as
  aiosmtpd's Controller does; its replies are then ASCII only).
  `Received.mail_options` are the parameters of MAIL FROM (e.g. ["SMTPUTF8"]).
- `RecordingSMTPServer(pipelining=False)`: PIPELINING (RFC 2920) not offered (by default it is,
  as Postfix and smtp-sink do). `Received.pipelined` says whether RCPT TO had already arrived
  when MAIL FROM was answered (the client wrote them in one go).

TLS (see tests/test_tls.py for a throw-away CA and certificate):
- `RecordingSMTPServer(tls=SERVER_SSL_CONTEXT)`: STARTTLS offered and required before MAIL; with
  `users`, AUTH is only offered and accepted after STARTTLS.
- `RecordingSMTPServer(tls=SERVER_SSL_CONTEXT, implicit_tls=True)`: SMTPS, TLS from the first
  byte; `server.url` is then `smtps://...`.
- Each `Received` says `tls` (the TLS version the message came over, "" for none) and `login`
  (the user the session authenticated as, "" for none); `server.auth_attempts` lists every AUTH
  as `(login, accepted, tls)`.
- `server.clear_faults()`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from .helpers import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    session: int
    tls: str = ""
    login: str = ""
    mail_options: tuple[str, ...] = ()
    pipelined: bool = False


class _Handler:
    def __init__(self, server: RecordingSMTPServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        session.host_name = hostname
        self.server._new_session(session)
        if self.server.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        # What the client wrote after MAIL FROM without waiting for its reply (aiosmtpd reads
        # a line at a time from this buffer; there is no public way to look at it).
        session.pipelined = b"RCPT" in bytes(smtp._reader._buffer)
        return "250 OK"

    async def handle_HELO(self, smtp, session, envelope, hostname):
        session.host_name = hostname
        self.server._new_session(session)
        return f"250 {smtp.hostname}"

    async def handle_QUIT(self, smtp, session, envelope):
        self.server._end_session(session)
        return "221 Bye"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        reply = self.server._rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        srv = self.server
        drop = srv._record(envelope, session, _tls_version(smtp))
        if srv.delay:
            await asyncio.sleep(srv.delay)
        if drop:
            asyncio.get_running_loop().call_soon(smtp.transport.close)
        return "250 2.0.0 OK: queued"


class RecordingSMTPServer:
    """See the module docstring."""

    def __init__(self, *, users: dict[str, str] | None = None, delay: float = 0.0,
                 tls: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 port: int | None = None, smtputf8: bool = True,
                 pipelining: bool = True) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        scheme = "smtps" if implicit_tls else "smtp+starttls" if tls else "smtp"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.delay = delay
        self.pipelining = pipelining
        self.messages: list[Received] = []
        self.sessions = 0
        self._open: set[int] = set()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._session_ids: dict[int, int] = {}
        self.auth_attempts: list[tuple[str, bool, str]] = []
        self.clear_faults()
        kwargs: dict = {}
        if users is not None:
            self.users = dict(users)
            # aiosmtpd counts only STARTTLS as TLS for auth_require_tls, so under implicit TLS
            # it must be off (the whole session is encrypted anyway).
            kwargs = {"authenticator": self._authenticate, "auth_required": True,
                      "auth_require_tls": bool(tls) and not implicit_tls}
        kwargs["enable_SMTPUTF8"] = smtputf8
        if implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls:
            kwargs.update(tls_context=tls, require_starttls=True)
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     **kwargs)

    # --- lifecycle
    def start(self) -> RecordingSMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- faults
    def clear_faults(self) -> None:
        with self._lock:
            self._tempfail_left = 0
            self._tempfail_reply = ""
            self._rejected: dict[str, str] = {}
            self._reject_all: str | None = None
            self._drop_left = 0

    def tempfail(self, n: int, reply: str = "451 4.3.0 Tillfälligt fel, försök igen") -> None:
        with self._lock:
            self._tempfail_left, self._tempfail_reply = n, reply

    def reject(self, addresses: Iterable[str],
               reply: str = "550 5.1.1 Recipient address rejected: User unknown") -> None:
        with self._lock:
            for address in addresses:
                self._rejected[address.lower()] = reply

    def reject_all(self, reply: str | None = "554 5.7.1 Relay access denied") -> None:
        with self._lock:
            self._reject_all = reply

    def drop_after(self, n: int) -> None:
        with self._lock:
            self._drop_left = n

    # --- what arrived
    def copies(self) -> Counter:
        with self._lock:
            return Counter(r.lower() for m in self.messages for r in m.rcpt_tos)

    def parsed(self) -> list[EmailMessage]:
        with self._lock:
            datas = [m.data for m in self.messages]
        return [email.message_from_bytes(d, policy=email.policy.default) for d in datas]

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Block until every session that said EHLO/HELO has said QUIT (a sender that stopped
        cleanly has closed its connections)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    # --- called from the handler (the server's thread)
    def _new_session(self, session) -> None:
        with self._lock:
            if id(session) not in self._session_ids:
                self.sessions += 1
                self._session_ids[id(session)] = self.sessions
            self._open.add(id(session))

    def _end_session(self, session) -> None:
        with self._arrived:
            self._open.discard(id(session))
            self._arrived.notify_all()

    def _rcpt_reply(self, address: str) -> str | None:
        with self._lock:
            if self._reject_all:
                return self._reject_all
            if address.lower() in self._rejected:
                return self._rejected[address.lower()]
            if self._tempfail_left > 0:
                self._tempfail_left -= 1
                return self._tempfail_reply
        return None

    def _record(self, envelope, session, tls: str) -> bool:
        login = (getattr(session.auth_data, "login", b"") or b"") if session.authenticated else b""
        with self._arrived:
            self.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content),
                                          self._session_ids.get(id(session), 0), tls,
                                          login.decode() if isinstance(login, bytes) else login,
                                          tuple(envelope.mail_options),
                                          getattr(session, "pipelined", False)))
            self._arrived.notify_all()
            if self._drop_left > 0:
                self._drop_left -= 1
                return True
        return False

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login = getattr(auth_data, "login", b"") or b""
        password = getattr(auth_data, "password", b"") or b""
        user = login.decode() if isinstance(login, bytes) else str(login)
        pw = password.decode() if isinstance(password, bytes) else str(password)
        ok = user in self.users and self.users[user] == pw
        with self._lock:
            self.auth_attempts.append((user, ok, _tls_version(server)))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def _tls_version(smtp) -> str:
    """The TLS version of an aiosmtpd session's connection now ("" for none), for STARTTLS and
    implicit TLS alike (aiosmtpd's session.ssl is set only after STARTTLS)."""
    transport = smtp.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return (ssl_object.version() or "") if ssl_object is not None else ""


class SilentRelay:
    """A mail relay that is down in the worst way: it accepts TCP connections on 127.0.0.1 and
    never says a word (no greeting), so that a client waits for its own timeout.

    `with SilentRelay() as relay:` ... `relay.port`, `relay.url`, `relay.accepted` (connections
    taken). Stopping it closes every connection it holds; a RecordingSMTPServer(port=relay.port)
    can then take the port over (the relay "comes back").
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-relay", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():  # bounded: stop() ends it within 0.2 s
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def start(self) -> SilentRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in [*self._held, self._listener]:
            conn.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
