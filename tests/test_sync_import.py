"""`contacts import FILE --sync`: the yearly list of kommunchefer over a register where some
changed (demo data, @example.se)."""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from sqlalchemy import select

from newsletter.contacts_import import import_contacts
from newsletter.models import Event, Person, Position

from .helpers import DATA

TODAY = date.today()
YEARLY = DATA / "kommunchefer_2027.csv"
SINCE = date(2022, 1, 1)


@pytest.fixture
def register(site):
    """Åsele has two kommunchefer (Anna, Lars: one too many), Dorotea has Mia, Berg has Bo,
    Strömsund has none; Per is KSO in Åsele, Anna also sits on the board."""
    site.cli("municipalities", "members", "Åsele", "Dorotea", "Strömsund", "Berg")
    for email, muni, role in (
            ("anna.berg@asele.example.se", "Åsele", "kommunchef"),
            ("anna.berg@asele.example.se", "", "styrelse"),
            ("lars.ek@asele.example.se", "Åsele", "kommunchef"),
            ("mia.sjogren@dorotea.example.se", "Dorotea", "kommunchef"),
            ("bo.holm@berg.example.se", "Berg", "kommunchef"),
            ("per.ek@asele.example.se", "Åsele", "kso")):
        site.cli("contacts", "add", email, "--municipality", muni, "--role", role)
    with site.transaction() as session:
        for position in session.scalars(select(Position)):
            position.started_on = SINCE
    return site


def _held(site, day: date | None = None) -> set[tuple[str, str | None, str]]:
    day = day or TODAY
    with site.transaction() as session:
        return {(p.person.email.split("@")[0], p.municipality.name if p.municipality else None,
                 p.role) for p in session.scalars(select(Position)) if p.holds_on(day)}


def test_dry_run_lists_what_starts_and_ends_and_changes_nothing(register):
    before = _held(register)
    out = register.cli("contacts", "import", str(YEARLY), "--sync", "--dry-run").stdout
    lines = out.splitlines()
    assert f"Slutar {TODAY}: kommunchef, Åsele: anna.berg@asele.example.se (-)" in lines
    assert f"Slutar {TODAY}: kommunchef, Åsele: lars.ek@asele.example.se (-)" in lines
    assert f"Börjar {TODAY}: kommunchef, Åsele: eva.lind@asele.example.se (Eva Lind)" in lines
    assert (f"Börjar {TODAY}: kommunchef, Strömsund: olof.nord@stromsund.example.se "
            "(Olof Nord)") in lines
    # Both stay subscribers of Åsele as ovrig (Anna's board seat is no Åsele position).
    assert f"Börjar {TODAY}: ovrig, Åsele: lars.ek@asele.example.se (-)" in lines
    assert f"Börjar {TODAY}: ovrig, Åsele: anna.berg@asele.example.se (-)" in lines
    assert not any("mia" in line or "bo.holm" in line or "per.ek" in line for line in lines)
    assert "--dry-run" in out
    assert _held(register) == before


def test_the_file_becomes_the_truth_for_its_pairs_only(register):
    register.cli("contacts", "import", str(YEARLY), "--sync")
    assert _held(register) == {
        ("eva.lind", "Åsele", "kommunchef"), ("mia.sjogren", "Dorotea", "kommunchef"),
        ("olof.nord", "Strömsund", "kommunchef"),
        ("bo.holm", "Berg", "kommunchef"),  # Berg is not in the file: left alone
        ("per.ek", "Åsele", "kso"), ("anna.berg", None, "styrelse"),
        ("anna.berg", "Åsele", "ovrig"), ("lars.ek", "Åsele", "ovrig")}
    with register.transaction() as session:
        anna = session.scalar(select(Person).where(Person.email == "anna.berg@asele.example.se"))
        ended = [(p.role, p.started_on, p.ended_on) for p in anna.positions if p.ended_on]
        assert ended == [("kommunchef", SINCE, TODAY)]  # never deleted
        kinds = [e.kind for e in session.scalars(select(Event).where(
            Event.person_id == anna.id, Event.kind == "position_ended"))]
        assert kinds == ["position_ended"]
    count = register.cli("segments", "count", "kommunchefer").stdout
    assert count.startswith("4 ")
    assert register.cli("segments", "count", "role:kommunchef and kommun:Åsele").stdout \
        .startswith("1 ")
    # Nobody left out of the newsletter.
    assert register.cli("segments", "count", "medlemmar").stdout.startswith("7 ")

    again = register.cli("contacts", "import", str(YEARLY), "--sync").stdout
    assert "Börjar" not in again and "Slutar" not in again
    assert "0 nya, 0 uppdaterade, 3 oförändrade" in again


def test_a_position_ended_earlier_and_listed_again_starts_anew(register):
    register.cli("contacts", "end-role", "mia.sjogren@dorotea.example.se", "--role",
                 "kommunchef", "--on", "2025-01-01")
    out = register.cli("contacts", "import", str(YEARLY), "--sync", "--on", "2027-01-01").stdout
    assert ("Börjar 2027-01-01: kommunchef, Dorotea: mia.sjogren@dorotea.example.se "
            "(Mia Sjögren)") in out
    assert "Slutar 2027-01-01: kommunchef, Åsele: anna.berg@asele.example.se (-)" in out
    # Dated: today the old holders still hold it.
    assert ("anna.berg", "Åsele", "kommunchef") in _held(register)
    assert ("anna.berg", "Åsele", "kommunchef") not in _held(register, date(2027, 1, 1))
    assert ("mia.sjogren", "Dorotea", "kommunchef") in _held(register, date(2027, 1, 1))


def test_a_file_with_rejected_rows_ends_nothing(register, tmp_path):
    bad = tmp_path / "kommunchefer.csv"
    shutil.copy(YEARLY, bad)
    with bad.open("a", encoding="utf-8", newline="") as fh:
        fh.write("not-an-address;Okänd;Berg;Kommunchef\r\n")
    result = register.cli("contacts", "import", str(bad), "--sync", ok=False)
    assert result.exit_code == 1
    assert f"{bad}:5: Avvisad" in result.stderr
    assert "inget uppdrag avslutades" in result.stderr
    assert "Slutar" not in result.stdout
    held = _held(register)
    assert {("anna.berg", "Åsele", "kommunchef"), ("lars.ek", "Åsele", "kommunchef"),
            ("bo.holm", "Berg", "kommunchef"), ("eva.lind", "Åsele", "kommunchef")} <= held


def test_an_unsubscribed_holder_listed_in_the_file_keeps_the_position(register, tmp_path):
    register.cli("contacts", "unsubscribe", "bo.holm@berg.example.se")
    register.cli("contacts", "add", "karl@berg.example.se", "--municipality", "Berg", "--role",
                 "kommunchef")
    berg = tmp_path / "berg.csv"
    berg.write_text("email,name,municipality,role\nbo.holm@berg.example.se,Bo,Berg,kommunchef\n",
                    encoding="utf-8")
    out = register.cli("contacts", "import", str(berg), "--sync").output
    assert "adressen är avregistrerad" in out
    assert f"Slutar {TODAY}: kommunchef, Berg: karl@berg.example.se (-)" in out
    assert ("bo.holm", "Berg", "kommunchef") in _held(register)
    assert register.cli("segments", "count", "role:kommunchef and kommun:Berg").stdout \
        .startswith("0 ")


def test_the_core_function_reports_the_changes(register):
    with register.transaction(dry_run=True) as session:
        report = import_contacts(session, register.settings, YEARLY, sync=True)
    assert sorted((c.email.split("@")[0], c.place, c.role) for c in report.ended) == [
        ("anna.berg", "Åsele", "kommunchef"), ("lars.ek", "Åsele", "kommunchef")]
    assert sorted((c.email.split("@")[0], c.role) for c in report.started) == [
        ("anna.berg", "ovrig"), ("eva.lind", "kommunchef"), ("lars.ek", "ovrig"),
        ("olof.nord", "kommunchef")]
    with register.transaction(dry_run=True) as session:
        plain = import_contacts(session, register.settings, YEARLY)
    assert (plain.started, plain.ended) == ([], [])
