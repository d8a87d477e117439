"""Bounce and complaint rules: a delivery in between starts the soft-bounce count again; a spam
complaint (ARF, RFC 5965) suppresses the address with the reason "complaint" (demo data)."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from newsletter.bounces import COMPLAINT, parse_report
from newsletter.contacts import suppression_reason
from newsletter.errors import SuppressedAddress
from newsletter.models import Event, Mailing, OutboxRow, Person
from newsletter.preferences import resubscribe

from .helpers import DATA

SAMPLES = DATA / "bounces"
DAVID, EVA = "david.berg@example.se", "eva.sjoberg@example.se"
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05")


def _monthly(site, *emails: str) -> None:
    """One issue a month, January to May, sent to EMAILS on the 1st at 08:00 UTC; the
    Message-ID of EMAIL's copy of month M is <M.LOCAL@nyhetsbrev.example.se>."""
    with site.transaction() as session:
        people = []
        for address in emails:
            person = Person(email=address, name=address.split("@")[0])
            session.add(person)
            people.append(person)
        session.flush()
        for month in MONTHS:
            sent = datetime(int(month[:4]), int(month[5:]), 1, 8, tzinfo=UTC)
            mailing = Mailing(kind="issue", source=month, segment="medlemmar", status="done",
                              subject=f"Nyhetsbrev {month}", finished_at=sent)
            session.add(mailing)
            session.flush()
            for person in people:
                session.add(OutboxRow(
                    mailing_id=mailing.id, person_id=person.id, variant_key="alla",
                    message_id=f"<{month}.{person.email.split('@')[0]}@nyhetsbrev.example.se>",
                    status="sent", sent_at=sent))


def _delayed(month: str, local: str = "david.berg") -> bytes:
    """A soft bounce (4.4.1) about LOCAL's copy of MONTH's issue, as its own report."""
    raw = (SAMPLES / "soft_delayed.eml").read_bytes()
    raw = raw.replace(b"<m1.r4.test@nyhetsbrev.example.se>",
                      f"<{month}.{local}@nyhetsbrev.example.se>".encode())
    return raw.replace(b"7RtQ2m4HcKz1vW@mx1", f"7RtQ2m4HcKz1vW.{month}@mx1".encode())


def _process(site, tmp_path, *reports: bytes) -> str:
    box = mailbox.Maildir(tmp_path / "Studsar", create=True)
    for raw in reports:
        box.add(raw)
    return site.cli("bounces", "process", str(tmp_path / "Studsar")).stdout


def _person(site, email: str) -> tuple[str, int]:
    with site.transaction() as session:
        person = session.scalar(select(Person).where(Person.email == email))
        return person.status, person.soft_bounces


def test_a_delivery_in_between_starts_the_count_again(site, tmp_path):
    _monthly(site, DAVID)
    _process(site, tmp_path, _delayed("2026-01"), _delayed("2026-02"))
    assert _person(site, DAVID) == ("active", 2)
    # March was delivered (no report); April soft-bounces: one in a row, not three.
    _process(site, tmp_path, _delayed("2026-04"))
    assert _person(site, DAVID) == ("active", 1)
    # May soft-bounces right after April: two in a row.
    _process(site, tmp_path, _delayed("2026-05"))
    assert _person(site, DAVID) == ("active", 2)


def test_soft_bounces_in_a_row_still_suppress(site, tmp_path):
    _monthly(site, DAVID)
    out = _process(site, tmp_path, *(_delayed(m) for m in MONTHS[:3]))
    assert "1 spärrade efter 3" in out
    assert _person(site, DAVID) == ("bounced", 3)


def test_a_late_report_about_an_older_message_resets_nothing(site, tmp_path):
    _monthly(site, DAVID)
    _process(site, tmp_path, _delayed("2026-01"))
    _process(site, tmp_path, _delayed("2026-03"))  # February got through in between
    assert _person(site, DAVID) == ("active", 1)
    _process(site, tmp_path, _delayed("2026-02"))  # February's report, late after all
    assert _person(site, DAVID) == ("active", 2)
    with site.transaction() as session:
        assert session.scalar(select(Person.soft_bounced_at).where(Person.email == DAVID)) \
            == datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_a_report_without_message_id_is_about_the_latest_message(site, tmp_path):
    _monthly(site, EVA)
    full = (SAMPLES / "mailbox_full.eml").read_bytes()  # names Eva, quotes no Message-ID

    def again(n: int) -> bytes:
        return full.replace(b"@mx1.example.se>", f".{n}@mx1.example.se>".encode(), 1)

    _process(site, tmp_path, full)
    _process(site, tmp_path, again(1))
    # Two reports about the same latest message (May): nothing was delivered in between.
    assert _person(site, EVA) == ("active", 2)
    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == EVA))
        session.add(_row_in_new_mailing(session, eva, "06", 1))
        session.add(_row_in_new_mailing(session, eva, "07", 1))
    # June got through; July's copy bounces (the report names no message: the latest).
    _process(site, tmp_path, again(2))
    assert _person(site, EVA) == ("active", 1)


def _row_in_new_mailing(session, person: Person, month: str, day: int) -> OutboxRow:
    mailing = Mailing(kind="issue", source=f"2026-{month}", segment="medlemmar", status="done",
                      subject=month)
    session.add(mailing)
    session.flush()
    return OutboxRow(mailing_id=mailing.id, person_id=person.id, variant_key="alla",
                     status="sent", message_id=f"<2026-{month}.eva@nyhetsbrev.example.se>",
                     sent_at=datetime(2026, int(month), day, tzinfo=UTC))


@pytest.mark.parametrize("name, addresses, original", [
    ("arf_complaint.eml", ["greta.wall@example.se"], "<m1.r7.test@nyhetsbrev.example.se>"),
    ("arf_redacted.eml", ["redacted@example.com"], "<m1.r8.test@nyhetsbrev.example.se>"),
])
def test_feedback_reports_are_read_as_complaints(name, addresses, original):
    report = parse_report((SAMPLES / name).read_bytes())
    assert report.kind == COMPLAINT
    assert [f.email for f in report.failures] == addresses
    assert report.original_message_id == original


def _complaint_setup(site) -> None:
    with site.transaction() as session:
        greta = Person(email="greta.wall@example.se", name="Greta")
        frida = Person(email="frida.ek@example.se", name="Frida")
        session.add_all([greta, frida])
        mailing = Mailing(kind="issue", source="2026-03", segment="medlemmar", status="done",
                          subject="Nyhetsbrev mars 2026")
        session.add(mailing)
        session.flush()
        for n, person in ((7, greta), (8, frida)):
            session.add(OutboxRow(mailing_id=mailing.id, person_id=person.id, variant_key="a",
                                  message_id=f"<m1.r{n}.test@nyhetsbrev.example.se>",
                                  status="sent", sent_at=datetime(2026, 3, 11, tzinfo=UTC)))


def test_a_complaint_suppresses_the_address_for_good(site, tmp_path):
    _complaint_setup(site)
    out = _process(site, tmp_path, (SAMPLES / "arf_complaint.eml").read_bytes(),
                   (SAMPLES / "arf_redacted.eml").read_bytes())
    assert "klagomål (spam):          2 (adresserna spärrade)" in out
    secret = site.settings.secret_key
    with site.transaction() as session:
        for email in ("greta.wall@example.se", "frida.ek@example.se"):  # Frida by Message-ID
            person = session.scalar(select(Person).where(Person.email == email))
            assert person.status == "unsubscribed"
            assert suppression_reason(session, secret, email) == "complaint"
            [event] = session.scalars(select(Event).where(Event.person_id == person.id))
            assert (event.kind, event.detail) == ("complained", {"type": "abuse"})
            with pytest.raises(SuppressedAddress):  # not even from the preferences page
                resubscribe(session, secret, person, source="web")
    assert site.cli("segments", "count", "not role:styrelse").stdout.startswith("0 ")
    again = _process(site, tmp_path)
    assert "redan behandlade:         2" in again
    assert "klagomål (spam):          0" in again
    result = site.cli("contacts", "add", "greta.wall@example.se", ok=False)
    assert result.exit_code == 1 and "skräppost" in result.stderr


def test_a_complaint_about_someone_not_in_the_register_still_blocks_the_address(site):
    out = site.cli("bounces", "process", str(SAMPLES / "arf_complaint.eml")).stdout
    assert "klagomål (spam):          1" in out
    with site.transaction() as session:
        assert suppression_reason(session, site.settings.secret_key,
                                  "greta.wall@example.se") == "complaint"
