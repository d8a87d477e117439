"""`newsletter contacts add|list|show|export|unsubscribe|forget`."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import inspect, select

from newsletter.contacts import normalise_email
from newsletter.errors import InvalidAddress
from newsletter.models import (
    Base,
    Event,
    Mailing,
    OutboxRow,
    Person,
    Position,
    Registration,
    Suppression,
    Webinar,
)

from .helpers import DATA


def _person(site, email: str) -> Person | None:
    with site.transaction() as session:
        person = session.scalar(select(Person).where(Person.email == email))
        if person is not None:
            _ = [(p.role, p.municipality) for p in person.positions], list(person.areas)
        return person


def test_addresses_are_normalised_case_insensitively():
    assert normalise_email("  Anna.Berg@Example.SE ") == "anna.berg@example.se"


def test_add_then_add_another_position(site):
    out = site.cli("contacts", "add", "Anna.Berg@Example.se", "--name", "Anna Berg",
                   "--municipality", "Åsele kommun", "--role", "Kommunchef").stdout
    assert "Lade till anna.berg@example.se" in out
    out = site.cli("contacts", "add", "anna.berg@example.se", "--role", "styrelse",
                   "--area", "bostad", "--area", "kapital").stdout
    assert "Uppdaterade" in out
    assert "Oförändrad" in site.cli("contacts", "add", "anna.berg@example.se",
                                    "--role", "styrelse").stdout
    anna = _person(site, "anna.berg@example.se")
    assert anna.name == "Anna Berg" and anna.basis_source == "cli"
    assert {(p.municipality.name if p.municipality else None, p.role)
            for p in anna.positions} == {("Åsele", "kommunchef"), (None, "styrelse")}
    assert {a.area for a in anna.areas} == {"bostad", "kapital"}


def test_add_with_bad_fields_is_one_line(site):
    result = site.cli("contacts", "add", "a@example.se", "--municipality", "Åsle", "--role", "kso",
                      ok=False)
    assert result.exit_code == 1 and "menade du ”Åsele”" in result.stderr
    result = site.cli("contacts", "add", "not-an-address", ok=False)
    assert result.exit_code == 1 and "ogiltig e-postadress" in result.stderr
    result = site.cli("contacts", "add", "a@example.se", "--area", "fiske", ok=False)
    assert result.exit_code == 1 and "okänt område ”fiske”" in result.stderr
    assert _person(site, "a@example.se") is None


def test_list_filters(site):
    site.cli("municipalities", "members", "Åsele")
    site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv"))
    out = site.cli("contacts", "list").stdout
    assert len(out.splitlines()) == 4
    out = site.cli("contacts", "list", "--municipality", "Åsele").stdout
    assert out.splitlines() == [
        "ake.ostlund@asele.example.se\tÅke Östlund\tactive\tkso@Åsele, styrelse"]
    out = site.cli("contacts", "list", "--role", "Kommunchef").stdout
    assert out.startswith("karin.hogberg")
    out = site.cli("contacts", "list", "--segment", "role:kso and member").stdout
    assert [x.split("\t")[0] for x in out.splitlines()] == ["ake.ostlund@asele.example.se"]
    site.cli("contacts", "unsubscribe", "ake.ostlund@asele.example.se")
    out = site.cli("contacts", "list", "--status", "unsubscribed").stdout
    assert [x.split("\t")[0] for x in out.splitlines()] == ["ake.ostlund@asele.example.se"]
    assert site.cli("contacts", "list", "--segment", "role:kso and member").stdout == ""


def test_show(site):
    site.cli("contacts", "import", str(DATA / "contacts_excel_utf8_bom.csv"))
    out = site.cli("contacts", "show", "Ake.Ostlund@asele.example.se").stdout
    assert "Åke Östlund" in out and "Status:      aktiv" in out
    assert "Kommunstyrelsens ordförande, Åsele (Västerbottens län)" in out
    assert "Styrelsen, förbundet" in out
    assert "bostad, kapital" in out
    assert "berättigat intresse (källa: contacts_excel_utf8_bom.csv" in out
    assert "imported" in out
    result = site.cli("contacts", "show", "nobody@example.se", ok=False)
    assert result.exit_code == 1 and "ingen kontakt med adressen nobody@example.se" in result.stderr


def _read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_export_neutralises_formulas_and_round_trips(site, tmp_path):
    site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv"))
    evil = {"a@example.se": "=HYPERLINK(\"http://x\")", "b@example.se": "+46 70 123",
            "c@example.se": "-2+3", "d@example.se": "@SUM(A1)", "e@example.se": "\tTab",
            "-f@example.se": "Minus Adress"}
    for address, name in evil.items():
        site.cli("contacts", "add", "--name", name, "--municipality", "Dorotea",
                 "--role", "politiker", "--", address)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "export.csv"
    site.cli("contacts", "export", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert out.stat().st_mode & 0o077 == 0
    assert [p.name for p in out.parent.iterdir()] == ["export.csv"]  # no temp file left behind
    rows = _read_csv(out)
    assert rows[0] == ["email", "name", "municipality", "role", "county", "areas"]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    names = {row[0]: row[1] for row in rows[1:]}
    assert names["a@example.se"] == "'=HYPERLINK(\"http://x\")"
    assert names["'-f@example.se"] == "Minus Adress"
    assert ["ake.ostlund@asele.example.se", "Åke Östlund", "Åsele", "kso", "Västerbottens län",
            "bostad|kapital"] in rows
    assert ["ake.ostlund@asele.example.se", "Åke Östlund", "", "styrelse", "",
            "bostad|kapital"] in rows

    # Importing the export into the same register changes nothing ...
    result = site.cli("contacts", "import", str(out)).stdout
    assert "0 nya, 0 uppdaterade, 10 oförändrade, 0 överhoppade" in result
    # ... and into an empty one gives the same register back, formulas as the text they were.
    with site.transaction() as session:
        session.query(Position).delete()
        session.query(Event).delete()
        session.query(Person).delete()
    assert "10 nya" in site.cli("contacts", "import", str(out)).stdout
    assert _person(site, "a@example.se").name == "=HYPERLINK(\"http://x\")"
    assert _person(site, "-f@example.se").name == "Minus Adress"
    again = tmp_path / "again.csv"
    site.cli("contacts", "export", str(again), "--semicolon")
    assert sorted(map(tuple, _read_semicolon(again))) == sorted(map(tuple, rows))


def _read_semicolon(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""),
                           delimiter=";"))


def test_export_to_stdout_by_status(site):
    site.cli("contacts", "import", str(DATA / "contacts_english_comma.csv"))
    site.cli("contacts", "unsubscribe", "olof.berg@pajala.example.se")
    out = site.cli("contacts", "export", "-").stdout
    assert "olof.berg" not in out and "lena.strom" in out
    out = site.cli("contacts", "export", "--status", "unsubscribed").stdout
    assert out.splitlines()[1].startswith("olof.berg@pajala.example.se,")
    assert len(out.splitlines()) == 2


def test_unsubscribe(site):
    site.cli("contacts", "import", str(DATA / "contacts_english_comma.csv"))
    assert "Avregistrerade" in site.cli("contacts", "unsubscribe",
                                        "Olof.Berg@pajala.example.se").stdout
    assert "redan" in site.cli("contacts", "unsubscribe", "olof.berg@pajala.example.se").stdout
    assert _person(site, "olof.berg@pajala.example.se").status == "unsubscribed"
    # An address we do not have is blocked all the same.
    assert "spärrad" in site.cli("contacts", "unsubscribe", "stranger@example.se").stdout
    result = site.cli("contacts", "add", "stranger@example.se", ok=False)
    assert result.exit_code == 1 and "adressen är avregistrerad" in result.stderr
    result = site.cli("contacts", "add", "olof.berg@pajala.example.se", ok=False)
    assert result.exit_code == 1


def _text_values(site) -> list[str]:
    """Every text-ish value in every table of the database."""
    values = []
    with site.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                values += [str(v) for v in row if v is not None]
    return values


AKE, AKE_NAME = "ake.ostlund@asele.example.se", "Östlund"


def _ake_everywhere(site) -> int:
    """Import the Excel file, then put Åke in an outbox row (his address in its error) and a
    webinar's registrations; his person id."""
    site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv"))
    address = AKE
    with site.transaction() as session:
        ake = session.scalar(select(Person).where(Person.email == address))
        mailing = Mailing(kind="targeted", source="x", segment="member", subject="Hej")
        webinar = Webinar(slug="bredband", uid="u1@example.se", title="Bredband",
                          starts_at=datetime(2026, 12, 1, 9, tzinfo=UTC), duration_minutes=60,
                          join_url="https://example.se/j")
        session.add_all([mailing, webinar])
        session.flush()
        session.add(OutboxRow(mailing_id=mailing.id, person_id=ake.id, variant_key="all",
                              message_id="<m1@example.se>", status="failed",
                              last_error=f"550 <{address.upper()}> mailbox unavailable"))
        session.add(Registration(webinar_id=webinar.id, person_id=ake.id))
        return ake.id


def test_forget_erases_everything_but_a_hashed_suppression(site):
    address, name = AKE, AKE_NAME
    ake_id = _ake_everywhere(site)
    assert any(address in v for v in _text_values(site))

    result = site.cli("contacts", "forget", address, input="n\n", ok=False)
    assert result.exit_code != 0 and _person(site, address) is not None
    out = site.cli("contacts", "forget", address.upper(), "--yes").stdout
    assert "Raderade" in out

    with site.transaction() as session:
        assert session.scalar(select(Person).where(Person.id == ake_id)) is None
        assert session.scalars(select(Position).where(Position.person_id == ake_id)).all() == []
        assert session.scalars(select(Registration)).all() == []
        row = session.scalar(select(OutboxRow))
        assert row.person_id is None and row.last_error is None and row.status == "failed"
        assert [s.reason for s in session.scalars(select(Suppression))] == ["erased"]
        erased = session.scalar(select(Event).where(Event.kind == "erased"))
        assert erased.person_id is None and erased.detail == {}
        assert all(e.person_id is None for e in session.scalars(select(Event).where(
            Event.kind == "imported", Event.person_id.not_in(select(Person.id)))))
    for value in _text_values(site):
        assert address not in value.casefold() and name not in value
    assert _person(site, "karin.hogberg@harjedalen.example.se") is not None

    result = site.cli("contacts", "add", address, "--role", "kso", ok=False)
    assert result.exit_code == 1
    assert "har raderats (GDPR)" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    out = site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv")).output
    assert "adressen är raderad" in out and "0 nya" in out
    result = site.cli("contacts", "show", address, ok=False)
    assert result.exit_code == 1 and "spärrlistan: raderad" in result.stderr


@pytest.mark.sqlite_only
def test_forget_leaves_nothing_in_the_sqlite_files_wal_included(site):
    _ake_everywhere(site)
    # A test copy to the address: its mailing row names it (label and meta).
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", AKE)
    db_path = Path(site.settings.db_url.removeprefix("sqlite:///"))
    # Another process holds the database open, as `serve` does: the -wal file is then not
    # checkpointed away when the CLI's connections close.
    other = sqlite3.connect(db_path)
    other.execute("SELECT count(*) FROM persons").fetchall()
    try:
        assert AKE.encode() in db_path.with_name(db_path.name + "-wal").read_bytes().lower()
        site.cli("contacts", "forget", AKE, "--yes")
        files = list(db_path.parent.glob(db_path.name + "*"))
        assert {f.name for f in files} >= {db_path.name, db_path.name + "-wal"}
        for path in files:
            raw = path.read_bytes()
            assert AKE.encode() not in raw.lower(), path
            assert AKE_NAME.encode() not in raw, path
    finally:
        other.close()


def test_forget_takes_the_address_out_of_test_mailings(site):
    site.cli("contacts", "add", "redaktor@example.se", "--name", "Red Aktör")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "Redaktor@example.se")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "kollega@example.se")
    site.cli("contacts", "forget", "redaktor@example.se", "--yes")
    with site.transaction() as session:
        mailings = {m.id: (m.segment, m.meta) for m in session.scalars(select(Mailing))}
    assert len(mailings) == 2
    for segment, meta in mailings.values():
        assert "redaktor" not in segment and "redaktor" not in repr(meta)
    assert any(meta.get("test_to") == "kollega@example.se" for _s, meta in mailings.values())
    assert all("redaktor" not in v for v in _text_values(site))
    status = site.cli("send", "status").stdout
    assert "redaktor" not in status and "kollega@example.se" in status


def test_forget_an_unknown_address_blocks_it(site):
    out = site.cli("contacts", "forget", "ghost@example.se", "--yes").stdout
    assert "fanns inte" in out
    assert site.cli("contacts", "add", "ghost@example.se", ok=False).exit_code == 1


def test_schema_has_no_address_column_outside_persons():
    # The scan above covers every table; this keeps it honest if a table gains an address column.
    # `staff` holds the console's own staff accounts (employees, not contacts), on purpose.
    # `signups` holds the address of one who signed up and is not a contact only until the
    # background sender handles the row (seconds); erasure deletes it (test_signup.py).
    for table in Base.metadata.sorted_tables:
        for column in inspect(table).columns:
            if "email" in column.name and table.name not in ("persons", "staff", "signups"):
                assert column.name == "email_hash", (table.name, column.name)


def _validator_says(text: str) -> str | None:
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _we_say(text: str) -> str | None:
    try:
        return normalise_email(text)
    except InvalidAddress:
        return None


def test_the_fast_address_check_agrees_with_email_validator():
    long_label = "a" * 63
    samples = [
        "a@b.se", "A.B@Example.SE", "a..b@x.se", ".a@x.se", "a.@x.se", "a@x..se", "a@-x.se",
        "a@x-.se", "a@x.s", "a@x.123", "a@localhost", "a@x.local", "a@x.test", "a@x.invalid",
        "a@ab--cd.se", "a--b@x.se", "a@xn--bcher-kva.example", "a@bücher.example", "åsa@x.se",
        "a" * 64 + "@x.se", "a" * 65 + "@x.se", f"a@{long_label}.se", f"a@{long_label}a.se",
        "a@" + ".".join([long_label] * 3) + ".abcdefghijklmnopqrst.se",
        "a@" + ".".join([long_label] * 3) + ".abcdefghijklmnopqrstuvwxyz.se",
        "a+b@x.se", "a_b@x.se", "-a@x.se", "a b@x.se", "a@x_y.se", "a@x.se.", '"a b"@x.se',
    ]
    rng = random.Random(2463)
    for _ in range(4000):
        def part(chars: str) -> str:
            return "".join(rng.choice(chars) for _ in range(rng.randint(1, 6)))
        samples.append(part("ab9.-_+A") + "@" + part("ab9.-") + "." + part("se9-"))
    for text in samples:
        assert _we_say(text) == _validator_says(text), text
