"""`contacts export-person` (GDPR art. 15) and the core functions the console's contact pages
use: a person's record and the search (demo data, @example.se)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime

from sqlalchemy import select

from newsletter.contacts import search_contacts
from newsletter.models import Person, Registration, Webinar
from newsletter.person_record import person_record

from .helpers import DATA

AKE = "ake.ostlund@asele.example.se"


def _ake(site) -> None:
    """Åke from the Excel file, with a hand-over, an issue sent to him and a registration."""
    site.cli("municipalities", "members", "Åsele")
    site.cli("contacts", "import", str(DATA / "contacts_excel_utf8_bom.csv"))
    site.cli("contacts", "hand-over", "--role", "kso", "--municipality", "Åsele", "--to",
             "ny.kso@asele.example.se")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar")
    with site.transaction() as session:
        ake = session.scalar(select(Person).where(Person.email == AKE))
        webinar = Webinar(slug="bredband", uid="u1@example.se", title="Bredband i glesbygd",
                          starts_at=datetime(2027, 1, 20, 13, tzinfo=UTC), duration_minutes=60,
                          join_url="https://example.se/j")
        session.add(webinar)
        session.flush()
        session.add(Registration(webinar_id=webinar.id, person_id=ake.id))


def test_export_person_as_json_holds_everything(site, tmp_path):
    _ake(site)
    target = tmp_path / "ake.json"
    result = site.cli("contacts", "export-person", AKE.upper(), str(target))
    assert f"Skrev {target}" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["ake.json", "site"]  # no temp file left
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["email"] == AKE and data["name"] == "Åke Östlund"
    assert data["lawful_basis"] == "legitimate_interest"
    assert data["basis_source"] == "contacts_excel_utf8_bom.csv"
    assert data["areas"] == ["bostad", "kapital"]
    positions = {(p["municipality"], p["role"], p["ended_on"]) for p in data["positions"]}
    assert positions == {("Åsele", "kso", str(date.today())), (None, "styrelse", None),
                         ("Åsele", "ovrig", None)}
    [mailing] = data["mailings"]
    assert mailing["subject"].startswith("Nyhetsbrev december 2026")
    # sent_at is a UTC timestamp: its day is UTC's, not the site's (they differ 23-24 UTC).
    utc_day = str(datetime.now(UTC).date())
    assert mailing["status"] == "sent" and mailing["sent_at"].startswith(utc_day)
    assert [r["webinar"] for r in data["registrations"]] == ["bredband"]
    kinds = [e["kind"] for e in data["events"]]
    assert kinds[:1] == ["imported"] and "position_ended" in kinds
    assert data["public_id"] and data["suppression"] is None


def test_export_person_as_text_to_stdout(site):
    _ake(site)
    out = site.cli("contacts", "export-person", AKE).stdout
    assert out.startswith(f"Allt vi har sparat om {AKE}")
    assert "Kommunstyrelsens ordförande, Åsele (Västerbottens län): " in out
    assert f"{date.today()} – {date.today()}" in out
    assert "Styrelsen, förbundet: " in out
    assert "Bostadsförsörjning, Kapitalförsörjning" in out
    assert "Nyhetsbrev december 2026" in out and "(issue, sent)" in out
    assert "Bredband i glesbygd (registered" in out
    assert "position_ended" in out


def test_export_person_format_and_errors(site, tmp_path):
    _ake(site)
    text = tmp_path / "ake.txt"
    site.cli("contacts", "export-person", AKE, str(text))
    assert text.read_text(encoding="utf-8").startswith("Allt vi har sparat om")
    forced = tmp_path / "ake.data"
    site.cli("contacts", "export-person", AKE, str(forced), "--format", "json")
    assert json.loads(forced.read_text(encoding="utf-8"))["email"] == AKE
    result = site.cli("contacts", "export-person", "nobody@example.se", str(tmp_path / "x"),
                      ok=False)
    assert result.exit_code == 1 and "ingen kontakt med adressen nobody@example.se" in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_persons_record_and_the_search(site):
    _ake(site)
    with site.transaction() as session:
        record = person_record(session, site.settings, AKE)
        assert [(p.role, p.municipality) for p in record.current_positions()] == [
            ("styrelse", None), ("ovrig", "Åsele")]
        assert record.current_positions(date(2020, 1, 1)) == []
        found = {q: [p.email for p in search_contacts(session, q)] for q in (
            "östlund", "ÖSTLUND", "Ake.Ost", "åsele", "Åsele kommun", "", "100%")}
    assert found["östlund"] == [AKE] and found["ÖSTLUND"] == [AKE]
    assert found["Ake.Ost"] == [AKE]
    assert found["åsele"] == [AKE, "ny.kso@asele.example.se"]
    assert found["Åsele kommun"] == found[""] == found["100%"] == []
