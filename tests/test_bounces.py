"""Bounces: the sample reports in tests/data/bounces/, read from a Maildir and an mbox."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter.bounces import AUTO_REPLY, HARD, NOT_REPORT, SOFT, classify_status, parse_report
from newsletter.events import is_suppressed
from newsletter.models import Event, Mailing, OutboxRow, Person, ProcessedReport, Suppression

from .helpers import DATA

SAMPLES = DATA / "bounces"

# file -> (kind, [(address as reported, status, kind)], original Message-ID)
EXPECTED = {
    "postfix_hard.eml": (HARD, [("anna.lindqvist@example.se", "5.1.1", HARD)],
                         "<m1.r1.test@nyhetsbrev.example.se>"),
    "exchange_hard.eml": (HARD, [("Bengt.Nilsson@EXAMPLE.se", "5.1.10", HARD)],
                          "<m1.r2.test@nyhetsbrev.example.se>"),
    "gmail_hard.eml": (HARD, [("cecilia.holm@example.se", "5.1.1", HARD)],
                       "<m1.r3.test@nyhetsbrev.example.se>"),
    "soft_delayed.eml": (SOFT, [("david.berg@example.se", "4.4.1", SOFT)],
                         "<m1.r4.test@nyhetsbrev.example.se>"),
    "mailbox_full.eml": (SOFT, [("eva.sjoberg@example.se", "5.2.2", SOFT)], None),
    "qmail_hard.eml": (HARD, [("ivar.strand@example.se", "5.0.0", HARD)],
                       "<m1.r9.test@nyhetsbrev.example.se>"),
    "two_recipients.eml": (HARD, [("okand.person@example.se", "5.1.1", HARD),
                                  ("filip.moberg@example.se", "5.7.1", SOFT)], None),
    "out_of_office.eml": (AUTO_REPLY, [], None),
    "x_autoreply.eml": (AUTO_REPLY, [], None),
    "not_a_report.eml": (NOT_REPORT, [], None),
}

# Everyone the samples mention, except okand.person@example.se (not in the database).
PEOPLE = ["anna.lindqvist", "bengt.nilsson", "cecilia.holm", "david.berg", "eva.sjoberg",
          "ivar.strand", "filip.moberg", "greta.wall", "frida.ek", "gustav.lund", "helena.aberg"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_read_as_what_it_is(name):
    kind, failures, original = EXPECTED[name]
    report = parse_report((SAMPLES / name).read_bytes())
    assert report.kind == kind
    assert [(f.email, f.status, f.kind) for f in report.failures] == failures
    assert report.original_message_id == original


@pytest.mark.parametrize(("action", "status", "kind"), [
    ("failed", "5.1.1", HARD), ("failed", "5.1.10", HARD), ("failed", "5.4.1", HARD),
    ("failed", "5.0.0", HARD), ("failed", "", HARD),
    ("failed", "5.2.2", SOFT), ("failed", "5.7.1", SOFT), ("failed", "5.3.4", SOFT),
    ("failed", "4.4.7", SOFT), ("delayed", "4.4.1", SOFT), ("delayed", "", SOFT),
    ("delivered", "2.0.0", None), ("relayed", "2.0.0", None), ("expanded", "", None),
])
def test_status_codes_are_classified(action, status, kind):
    assert classify_status(action, status) == kind


def _people(site) -> None:
    with site.transaction() as session:
        for local in PEOPLE:
            session.add(Person(email=f"{local}@example.se", name=local.replace(".", " ").title()))


def _mailing_with_outbox(site, *locals_: str) -> None:
    """A sent mailing whose outbox rows carry the Message-IDs the samples quote."""
    with site.transaction() as session:
        mailing = Mailing(kind="issue", source="2026-03", segment="medlemmar",
                          subject="Nyhetsbrev mars 2026", status="done")
        session.add(mailing)
        session.flush()
        numbers = {"anna.lindqvist": 1, "bengt.nilsson": 2, "cecilia.holm": 3, "david.berg": 4}
        for local in locals_:
            person = session.scalar(select(Person).where(Person.email == f"{local}@example.se"))
            session.add(OutboxRow(mailing_id=mailing.id, person_id=person.id, variant_key="alla",
                                  message_id=f"<m1.r{numbers[local]}.test@nyhetsbrev.example.se>",
                                  status="sent"))


def _maildir(path: Path, names) -> Path:
    box = mailbox.Maildir(path, create=True)
    for name in names:
        box.add((SAMPLES / name).read_bytes())
    return path


def _mbox(path: Path, names) -> Path:
    box = mailbox.mbox(path, create=True)
    for name in names:
        box.add((SAMPLES / name).read_bytes())
    box.flush()
    box.close()
    return path


def _summary(stdout: str) -> dict[str, int]:
    """The first number on each line of the summary, by the line's label."""
    out = {}
    for line in stdout.splitlines()[1:]:
        label, _, rest = line.strip().partition(":")
        if line.startswith("  "):
            out[label] = int(rest.split()[0])
    return out


def _state(site) -> dict:
    with site.transaction() as session:
        return {
            "persons": sorted(session.execute(
                select(Person.email, Person.status, Person.soft_bounces)).all()),
            "suppressions": session.scalar(select(func.count()).select_from(Suppression)),
            "events": session.scalar(select(func.count()).select_from(Event)),
            "reports": session.scalar(select(func.count()).select_from(ProcessedReport)),
            "outbox": sorted(session.execute(select(OutboxRow.message_id,
                                                    OutboxRow.last_error)).all()),
        }


def test_a_maildir_of_reports_suppresses_hard_bounces_and_counts_soft_ones(site, tmp_path):
    _people(site)
    _mailing_with_outbox(site, "anna.lindqvist", "bengt.nilsson", "david.berg")
    maildir = _maildir(tmp_path / "Studsar", sorted(EXPECTED))

    result = site.cli("bounces", "process", str(maildir))

    assert result.stdout.startswith(f"10 meddelanden lästa i {maildir}")
    assert _summary(result.stdout) == {
        "hårda studsar": 5, "mjuka studsar": 3, "autosvar (ignorerade)": 2,
        "inte leveransrapporter": 1, "redan behandlade": 0, "okända adresser": 1,
        "klagomål (spam)": 0}
    settings = site.settings
    with site.transaction() as session:
        status = dict(session.execute(select(Person.email, Person.status)).all())
        soft = dict(session.execute(select(Person.email, Person.soft_bounces)).all())
        for local in ("anna.lindqvist", "bengt.nilsson", "cecilia.holm", "ivar.strand"):
            assert status[f"{local}@example.se"] == "bounced"
            assert is_suppressed(session, settings.secret_key, f"{local}@example.se")
        for local in ("david.berg", "eva.sjoberg", "filip.moberg"):
            assert status[f"{local}@example.se"] == "active"
            assert soft[f"{local}@example.se"] == 1
            assert not is_suppressed(session, settings.secret_key, f"{local}@example.se")
        for local in ("greta.wall", "frida.ek", "gustav.lund", "helena.aberg"):
            assert (status[f"{local}@example.se"], soft[f"{local}@example.se"]) == ("active", 0)
        # Not in the database, and still never to be mailed.
        assert is_suppressed(session, settings.secret_key, "okand.person@example.se")
        reasons = set(session.scalars(select(Suppression.reason)))
        assert reasons == {"bounced"}
        events = session.scalars(select(Event).where(Event.kind.in_(["bounced", "deferred"])))
        for event in events:
            assert "@" not in repr(event.detail)
            assert set(event.detail) <= {"status", "type", "source", "soft_bounces"}
        errors = dict(session.execute(select(OutboxRow.message_id, OutboxRow.last_error)).all())
    assert errors["<m1.r1.test@nyhetsbrev.example.se>"].startswith("bounce hard 5.1.1: smtp; 550")
    assert "@" not in errors["<m1.r1.test@nyhetsbrev.example.se>"]
    assert errors["<m1.r2.test@nyhetsbrev.example.se>"].startswith("bounce hard 5.1.10")
    assert errors["<m1.r4.test@nyhetsbrev.example.se>"].startswith("bounce soft 4.4.1")


def test_reading_the_same_reports_again_changes_nothing(site, tmp_path):
    _people(site)
    _mailing_with_outbox(site, "anna.lindqvist", "david.berg")
    maildir = _maildir(tmp_path / "Studsar", sorted(EXPECTED))
    site.cli("bounces", "process", str(maildir))
    before = _state(site)

    again = site.cli("bounces", "process", str(maildir))

    assert _summary(again.stdout)["redan behandlade"] == 10
    assert _summary(again.stdout)["hårda studsar"] == 0
    assert _state(site) == before
    # The same reports exported to an mbox (a mail client's "save as") are the same reports.
    mbox = _mbox(tmp_path / "studsar.mbox", sorted(EXPECTED))
    third = site.cli("bounces", "process", str(mbox))
    assert _summary(third.stdout)["redan behandlade"] == 10
    assert _state(site) == before


def test_an_mbox_works_like_a_maildir(site, tmp_path):
    _people(site)
    mbox = _mbox(tmp_path / "studsar.mbox", ["gmail_hard.eml", "mailbox_full.eml",
                                             "out_of_office.eml"])
    result = site.cli("bounces", "process", str(mbox))
    summary = _summary(result.stdout)
    assert (summary["hårda studsar"], summary["mjuka studsar"],
            summary["autosvar (ignorerade)"]) == (1, 1, 1)
    with site.transaction() as session:
        assert session.scalar(select(Person.status).where(
            Person.email == "cecilia.holm@example.se")) == "bounced"


def test_a_single_message_file_is_read_too(site):
    _people(site)
    result = site.cli("bounces", "process", str(SAMPLES / "exchange_hard.eml"))
    assert _summary(result.stdout)["hårda studsar"] == 1
    with site.transaction() as session:
        assert session.scalar(select(Person.status).where(
            Person.email == "bengt.nilsson@example.se")) == "bounced"


def _variant(name: str, n: int) -> bytes:
    """The sample as another report (another Message-ID), as a mail server sends it next time."""
    raw = (SAMPLES / name).read_bytes()
    return raw.replace(b"@mx1.example.se>", f".{n}@mx1.example.se>".encode(), 1)


def test_soft_bounces_suppress_after_the_limit(site, tmp_path):
    _people(site)
    box = mailbox.Maildir(tmp_path / "Studsar", create=True)
    limit = site.settings.soft_bounce_limit
    assert limit == 3
    for n in range(limit - 1):
        box.add(_variant("mailbox_full.eml", n))
    first = site.cli("bounces", "process", str(tmp_path / "Studsar"))
    assert _summary(first.stdout)["mjuka studsar"] == limit - 1
    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == "eva.sjoberg@example.se"))
        assert (eva.status, eva.soft_bounces) == ("active", limit - 1)

    box.add(_variant("mailbox_full.eml", limit))
    second = site.cli("bounces", "process", str(tmp_path / "Studsar"))

    assert "1 spärrade efter 3" in second.stdout
    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == "eva.sjoberg@example.se"))
        assert (eva.status, eva.soft_bounces) == ("bounced", limit)
        assert is_suppressed(session, site.settings.secret_key, eva.email)
        kinds = [e.detail.get("type") for e in session.scalars(
            select(Event).where(Event.kind == "bounced", Event.person_id == eva.id))]
    assert kinds == ["soft_limit"]


def test_the_limit_is_a_setting(site, tmp_path):
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "soft_limit = 3", "soft_limit = 1"), encoding="utf-8")
    _people(site)
    result = site.cli("bounces", "process", str(SAMPLES / "mailbox_full.eml"))
    assert "1 spärrade efter 1" in result.stdout


def test_a_delay_warning_and_the_final_failure_of_one_message_count_once(site, tmp_path):
    _people(site)
    _mailing_with_outbox(site, "david.berg")
    final = (SAMPLES / "soft_delayed.eml").read_bytes().replace(
        b"Action: delayed", b"Action: failed").replace(b"Status: 4.4.1", b"Status: 4.4.7")
    final = final.replace(b"7RtQ2m4HcKz1vW@mx1", b"7RtQ2m4HcKz1vX@mx1")
    box = mailbox.Maildir(tmp_path / "Studsar", create=True)
    box.add((SAMPLES / "soft_delayed.eml").read_bytes())
    box.add(final)

    site.cli("bounces", "process", str(tmp_path / "Studsar"))

    with site.transaction() as session:
        assert session.scalar(select(Person.soft_bounces).where(
            Person.email == "david.berg@example.se")) == 1


def test_a_hard_bounce_after_soft_ones_still_suppresses(site, tmp_path):
    _people(site)
    _mailing_with_outbox(site, "david.berg")
    final = (SAMPLES / "soft_delayed.eml").read_bytes().replace(
        b"Action: delayed", b"Action: failed").replace(b"Status: 4.4.1", b"Status: 5.1.1")
    box = mailbox.Maildir(tmp_path / "Studsar", create=True)
    box.add((SAMPLES / "soft_delayed.eml").read_bytes())
    box.add(final.replace(b"7RtQ2m4HcKz1vW@mx1", b"7RtQ2m4HcKz1vX@mx1"))

    site.cli("bounces", "process", str(tmp_path / "Studsar"))

    with site.transaction() as session:
        assert session.scalar(select(Person.status).where(
            Person.email == "david.berg@example.se")) == "bounced"
        assert session.scalar(select(OutboxRow.last_error)).startswith("bounce hard 5.1.1")


def test_dry_run_changes_nothing(site, tmp_path):
    _people(site)
    maildir = _maildir(tmp_path / "Studsar", sorted(EXPECTED))
    before = _state(site)

    dry = site.cli("bounces", "process", str(maildir), "--dry-run")

    assert _summary(dry.stdout)["hårda studsar"] == 5
    assert "Torrkörning" in dry.stdout
    assert _state(site) == before
    real = site.cli("bounces", "process", str(maildir))
    assert _summary(real.stdout)["hårda studsar"] == 5
    assert list(maildir.joinpath("new").iterdir()), "the mailbox itself is never changed"


@pytest.mark.parametrize("make", ["missing", "plain_folder"])
def test_a_bad_path_is_one_line_on_stderr(site, tmp_path, make):
    path = tmp_path / "Studsar"
    if make == "plain_folder":
        path.mkdir()
    result = site.cli("bounces", "process", str(path), ok=False)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert ("finns inte" if make == "missing" else "ingen Maildir") in lines[0]


def test_an_empty_mbox_is_nothing_to_do(site, tmp_path):
    empty = tmp_path / "tom.mbox"
    empty.write_bytes(b"")
    result = site.cli("bounces", "process", str(empty))
    assert result.stdout.startswith("0 meddelanden")


def test_the_senders_own_note_on_the_outbox_row_is_kept(site):
    _people(site)
    _mailing_with_outbox(site, "anna.lindqvist")
    note = "reclaimed after a crashed sender: possibly sent twice"
    with site.transaction() as session:
        session.scalar(select(OutboxRow)).last_error = note
    site.cli("bounces", "process", str(SAMPLES / "postfix_hard.eml"))
    with site.transaction() as session:
        assert session.scalar(select(OutboxRow.last_error)) == note
        assert session.scalar(select(Person.status).where(
            Person.email == "anna.lindqvist@example.se")) == "bounced"
