"""Transports: Maildir delivery and SMTP against a real aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Iterator

import pytest

from newsletter.errors import TransportConfigError
from newsletter.settings import load_settings
from newsletter.transports import MaildirTransport, SMTPTransport, classify, from_settings

from .helpers import TEST_ENV
from .smtp_server import RecordingSMTPServer

MESSAGE = ("From: nyhetsbrev@example.se\r\nTo: anna@example.se\r\nSubject: Hej\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nHej från Åsele\r\n.punkt\r\n"
           ).encode()


def test_maildir_delivery_is_atomic_and_readable(tmp_path):
    transport = MaildirTransport(tmp_path / "Maildir")
    conn = transport.connection()
    conn.open()
    for i in range(5):
        result = conn.send("nyhetsbrev@example.se", f"p{i}@example.se", MESSAGE)
        assert result.outcome == "sent"
    conn.close()
    box = mailbox.Maildir(tmp_path / "Maildir", factory=None, create=False)
    assert len(box) == 5
    assert list((tmp_path / "Maildir" / "tmp").iterdir()) == []  # written there, renamed to new/
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 5
    delivered = sorted(m["Delivered-To"] for m in box)
    assert delivered == [f"p{i}@example.se" for i in range(5)]
    msg = email.message_from_bytes(box.get_bytes(box.keys()[0]), policy=email.policy.default)
    assert msg.get_content().strip().splitlines() == ["Hej från Åsele", ".punkt"]


def test_transport_urls(tmp_path):
    settings = load_settings(tmp_path, env=TEST_ENV)
    assert from_settings(settings).path == tmp_path / "Maildir"  # relative to the site root
    assert from_settings(settings, "maildir:/var/mail/nl").path.as_posix() == "/var/mail/nl"
    smtp = from_settings(settings, "smtp+starttls://mail.example.se")
    assert (smtp.scheme, smtp.host, smtp.port) == ("smtp+starttls", "mail.example.se", 587)
    assert from_settings(settings, "smtps://mail.example.se").port == 465
    for bad in ("smtp://user:secret@mail.example.se", "http://example.se", "maildir:"):
        with pytest.raises(TransportConfigError) as exc:
            from_settings(settings, bad)
        assert "secret" not in str(exc.value)


@pytest.mark.parametrize("code, text, sender, outcome", [
    (250, "2.0.0 OK", False, "sent"),
    (451, "4.3.0 try later", False, "deferred"),
    (421, "4.7.0 too many connections", False, "deferred"),
    (550, "5.1.1 User unknown", False, "bounced"),
    (553, "5.1.3 bad address syntax", False, "bounced"),
    (550, "5.1.8 bad sender domain", True, "pause"),
    (554, "5.7.1 Relay access denied", False, "pause"),
    (550, "5.7.26 unauthenticated mail is prohibited", False, "pause"),
    (535, "Authentication failed", False, "pause"),
    (552, "5.2.2 Mailbox full", False, "failed"),
    (550, "Mailbox unavailable", False, "failed"),
])
def test_reply_classification(code, text, sender, outcome):
    assert classify(code, text, sender=sender).outcome == outcome


def smtp(server, **kw) -> SMTPTransport:
    return SMTPTransport("smtp", "127.0.0.1", server.port, **kw)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def server(request) -> Iterator[RecordingSMTPServer]:
    """A recording server that offers PIPELINING (RFC 2920), as Postfix does, or not."""
    with RecordingSMTPServer(pipelining=request.param) as started:
        yield started


def test_one_connection_for_many_messages(server):
    conn = smtp(server).connection()
    for i in range(20):
        assert conn.send("nyhetsbrev@example.se", f"p{i}@example.se", MESSAGE).outcome == "sent"
    conn.close()
    assert server.sessions == 1
    assert len(server.messages) == 20
    assert server.messages[0].data.endswith(b".punkt\r\n")
    # Where the server offers PIPELINING, MAIL FROM, RCPT TO and DATA go in one write.
    assert {m.pipelined for m in server.messages} == {server.pipelining}


def test_faults_are_classified_and_the_connection_survives(server):
    conn = smtp(server).connection()
    server.tempfail(1)
    assert conn.send("a@example.se", "p1@example.se", MESSAGE).outcome == "deferred"
    server.reject(["borta@example.se"])
    result = conn.send("a@example.se", "borta@example.se", MESSAGE)
    assert (result.outcome, result.code) == ("bounced", 550)
    server.reject_all("554 5.7.1 Relay access denied")
    assert conn.send("a@example.se", "p2@example.se", MESSAGE).outcome == "pause"
    server.reject_all(None)
    assert conn.send("a@example.se", "p3@example.se", MESSAGE).outcome == "sent"
    conn.close()
    assert server.sessions == 1
    assert server.copies() == {"p3@example.se": 1}


def test_reconnects_when_the_server_drops_the_connection_after_250(server):
    conn = smtp(server).connection()
    server.drop_after(2)
    outcomes = [conn.send("a@example.se", f"p{i}@example.se", MESSAGE).outcome
                for i in range(5)]
    conn.close()
    assert outcomes == ["sent"] * 5
    assert server.copies() == {f"p{i}@example.se": 1 for i in range(5)}
    assert server.sessions == 3


def test_unreachable_server_defers():
    with RecordingSMTPServer() as server:
        port = server.port
    conn = SMTPTransport("smtp", "127.0.0.1", port, timeout=2).connection()
    assert conn.send("a@example.se", "p@example.se", MESSAGE).outcome == "deferred"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_authentication():
    with RecordingSMTPServer(users={"kansliet": "ratt-losen"}) as server:
        bad = smtp(server, user="kansliet", password="fel").connection()
        result = bad.send("a@example.se", "p@example.se", MESSAGE)
        assert result.outcome == "pause" and "inloggningen nekades" in result.detail
        none = smtp(server).connection().send("a@example.se", "p@example.se", MESSAGE)
        assert none.outcome == "pause"
        swedish = smtp(server, user="kansliet", password="rätt-lösen").connection()
        assert "utanför ASCII" in swedish.send("a@example.se", "p@example.se", MESSAGE).detail
        good = smtp(server, user="kansliet", password="ratt-losen").connection()
        assert good.send("a@example.se", "p@example.se", MESSAGE).outcome == "sent"
        good.close()
        assert server.copies() == {"p@example.se": 1}


def test_envelope_addresses_reach_the_server_as_given(server):
    conn = smtp(server).connection()
    # A plain address is written as it is; a quoted local part goes through smtplib's quoting.
    for rcpt in ("anna.berg+nyhetsbrev@example.se", '"anna berg"@example.se'):
        assert conn.send("nyhetsbrev@example.se", rcpt, MESSAGE).outcome == "sent"
    conn.close()
    assert [(m.mail_from, m.rcpt_tos) for m in server.messages] == [
        ("nyhetsbrev@example.se", ("anna.berg+nyhetsbrev@example.se",)),
        ("nyhetsbrev@example.se", ('"anna berg"@example.se',))]
    # Only the plain one is pipelined: a quoted one goes through smtplib's commands.
    assert [m.pipelined for m in server.messages] == [server.pipelining, False]


def test_ready_messages_are_sent_as_they_are(server):
    ready = MESSAGE.replace(b"\r\n.punkt", b"\r\n=2Epunkt")  # as MessageTemplate.build writes
    conn = smtp(server).connection()
    assert conn.send("nyhetsbrev@example.se", "p1@example.se", ready, ready=True).outcome == "sent"
    assert conn.send("nyhetsbrev@example.se", "p2@example.se", MESSAGE).outcome == "sent"
    conn.close()
    assert [m.data for m in server.messages] == [ready, MESSAGE]
