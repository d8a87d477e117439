"""One bad address never stalls a mailing: non-ASCII local parts over SMTPUTF8 (RFC 6531) where
the server offers it, a failure of that one row where it does not, and any recipient whose
message cannot be built fails alone."""

from __future__ import annotations

import email
import email.policy
import mailbox

from sqlalchemy import delete, func, select

from newsletter import sender
from newsletter.models import MailingVariant, OutboxRow, OutboxStatus
from newsletter.outbox import creating

from .helpers import KOMMUNER, Canned, check_message
from .smtp_server import RecordingSMTPServer

UTF8 = [f"åsa.lindström{i}@kommun.example.se" for i in range(8)] + ["jürgen.öhman@example.se"]
IDN = "anna.berg@åsele.example.se"  # ASCII local part, Unicode domain: no SMTPUTF8 needed
IDN_WIRE = "anna.berg@xn--sele-poa.example.se"


def _parsed(data: bytes) -> email.message.EmailMessage:
    """DATA as a client that reads UTF-8 header fields (RFC 6532) reads it."""
    return email.message_from_string(data.decode("utf-8"), policy=email.policy.default)


def _contacts(site, n: int = 200) -> list[str]:
    """N contacts through the real import: UTF8, IDN and the rest p000@example.se ..."""
    addresses = UTF8 + [IDN] + [f"p{i:03d}@example.se" for i in range(n - len(UTF8) - 1)]
    rows = ["email,name,municipality,role"]
    rows += [f"{a},Test {i},{KOMMUNER[i % 6]},kommunchef" for i, a in enumerate(addresses)]
    path = site.root / "kontakter.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = site.cli("contacts", "import", str(path))
    warned = [line for line in result.stderr.splitlines() if "SMTPUTF8" in line]
    assert len(warned) == len(UTF8)  # one warning per such row, naming it; none rejected
    assert all(any(a in line for line in warned) for a in UTF8)
    assert all(":" + str(i + 2) + ":" in line for i, line in enumerate(warned))
    assert f"{len(addresses)} nya" in result.stdout
    site.cli("municipalities", "members", *KOMMUNER)
    return addresses


def _send(site, server) -> tuple:
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
                      env={"NEWSLETTER_TRANSPORT": server.url})
    with site.transaction() as s:
        states = dict(s.execute(select(OutboxRow.status, func.count())
                                .group_by(OutboxRow.status)).all())
    return result, states


def test_a_server_with_smtputf8_gets_every_address_once(site):
    addresses = _contacts(site)
    with RecordingSMTPServer() as server:
        result, states = _send(site, server)
        assert result.exit_code == 0 and "klart" in result.stdout
        assert states == {OutboxStatus.SENT: 200}
        copies = server.copies()
        wire = {IDN_WIRE if a == IDN else a for a in addresses}
        assert copies == {a: 1 for a in wire}
        for received in server.messages:
            (rcpt,) = received.rcpt_tos
            utf8 = rcpt in UTF8
            assert ("SMTPUTF8" in received.mail_options) == utf8  # only where it is needed
            head = received.data.partition(b"\r\n\r\n")[0]
            assert head.isascii() != utf8  # UTF-8 header fields for that message only
            if not utf8:
                check_message(received.data)
            msg = _parsed(received.data)
            assert msg["To"].addresses[0].addr_spec == rcpt
            assert all(not part.defects for part in msg.walk())


def test_a_server_without_smtputf8_fails_those_rows_alone_and_the_mailing_goes_on(site):
    addresses = _contacts(site)
    with RecordingSMTPServer(smtputf8=False) as server:
        result, states = _send(site, server)
        assert result.exit_code == 0, result.stderr  # failures are counted, not an error
        assert f"{len(UTF8)} misslyckade" in result.stdout and "klart" in result.stdout
        assert states == {OutboxStatus.SENT: 200 - len(UTF8), OutboxStatus.FAILED: len(UTF8)}
        plain = {IDN_WIRE if a == IDN else a for a in addresses if a not in UTF8}
        assert server.copies() == {a: 1 for a in plain}
    status = site.cli("send", "status", "1").stdout
    for address in UTF8:
        line = next(line for line in status.splitlines() if f"<{address}>: " in line)
        assert "SMTPUTF8" in line and "inte erbjuder" in line
    with site.transaction() as s:
        reasons = s.scalars(select(OutboxRow.last_error).where(
            OutboxRow.status == OutboxStatus.FAILED)).all()
    assert all("\n" not in r and any(a in r for a in UTF8) for r in reasons)
    again = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    assert "redan klart" in again.stdout  # done: failed rows are not tried for ever


def test_maildir_takes_a_non_ascii_address(site):
    site.cli("contacts", "add", UTF8[0], "--name", "Åsa Lindström", "--municipality", "Åsele",
             "--role", "kommunchef")
    site.cli("municipalities", "members", "Åsele")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    box = mailbox.Maildir(site.root / "Maildir", factory=None, create=False)
    (key,) = list(box.keys())
    msg = _parsed(box.get_bytes(key))
    assert msg["To"].addresses[0].addr_spec == UTF8[0]
    assert msg["To"].addresses[0].display_name == "Åsa Lindström"
    assert msg["Delivered-To"] == UTF8[0]


def test_contacts_add_warns_about_an_address_only_smtputf8_can_carry(site):
    result = site.cli("contacts", "add", UTF8[0])
    assert UTF8[0] in result.stdout
    assert "SMTPUTF8" in result.stderr and UTF8[0] in result.stderr
    plain = site.cli("contacts", "add", IDN)
    assert plain.stderr == ""  # a Unicode domain alone needs no SMTPUTF8


def test_a_message_that_cannot_be_built_fails_alone(site):
    """Every recipient of a variant whose frozen content is gone fails with a reason naming
    the address; the others are sent and the command still exits 0."""
    _contacts(site, 20)
    with site.transaction() as s:
        source = Canned(key="bygg", variant=lambda p: "kc" if p.email.startswith("p00") else "x")
        mailing_id = creating.create_mailing(s, site.settings, source, "medlemmar").mailing.id
        s.execute(delete(MailingVariant).where(MailingVariant.mailing_id == mailing_id,
                                               MailingVariant.key == "kc"))
    with RecordingSMTPServer() as server:
        result = site.cli("send", "resume", str(mailing_id),
                          env={"NEWSLETTER_TRANSPORT": server.url})
        assert result.exit_code == 0 and "10 misslyckade" in result.stdout
        assert sum(server.copies().values()) == 10
    with site.transaction() as s:
        failed = s.scalars(select(OutboxRow.last_error).where(
            OutboxRow.status == OutboxStatus.FAILED)).all()
    assert len(failed) == 10  # p000 ... p009
    assert all("gick inte att bygga" in r and "@example.se" in r for r in failed)
    status = site.cli("send", "status", str(mailing_id)).stdout
    assert ("<p000@example.se>: misslyckade: p000@example.se: mejlet gick inte att bygga"
            in status)
    assert sender.send_mailing(site.settings, site.sessions(), mailing_id).done
