"""`newsletter contacts import`: files as Swedish Excel writes them, bad rows, merging,
suppression."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from newsletter.contacts_import import import_contacts
from newsletter.models import Event, Person, PersonArea, Position

from .helpers import DATA


def _persons(site) -> dict[str, Person]:
    with site.transaction() as session:
        people = session.scalars(select(Person)).all()
        for p in people:
            _ = [(pos.role, pos.municipality and pos.municipality.name) for pos in p.positions]
            _ = [a.area for a in p.areas]
        return {p.email: p for p in people}


def _positions(person: Person) -> set[tuple[str | None, str]]:
    return {(p.municipality.name if p.municipality else None, p.role) for p in person.positions}


def _count(site, model) -> int:
    with site.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("name", ["contacts_excel_cp1252.csv", "contacts_excel_utf8_bom.csv"])
def test_swedish_excel_files_import_with_the_right_letters(site, name):
    raw = (DATA / name).read_bytes()
    if "cp1252" in name:
        assert b"H\xe4rjedalen" in raw and not raw.startswith(b"\xef\xbb\xbf")
    else:
        assert raw.startswith(b"\xef\xbb\xbf") and "Härjedalen".encode() in raw
    out = site.cli("contacts", "import", str(DATA / name)).stdout
    assert "4 nya, 0 uppdaterade, 0 oförändrade" in out
    people = _persons(site)
    assert set(people) == {"karin.hogberg@harjedalen.example.se", "ake.ostlund@asele.example.se",
                           "mia.sjogren@dorotea.example.se", "per.eriksson@overkalix.example.se"}
    assert people["karin.hogberg@harjedalen.example.se"].name == "Karin Högberg"
    assert _positions(people["karin.hogberg@harjedalen.example.se"]) == {
        ("Härjedalen", "kommunchef")}
    # One person, two positions: KSO in Åsele (by "Åsele kommun") and the association's board.
    ake = people["ake.ostlund@asele.example.se"]
    assert ake.name == "Åke Östlund"
    assert _positions(ake) == {("Åsele", "kso"), (None, "styrelse")}
    assert {a.area for a in ake.areas} == {"bostad", "kapital"}
    mia = people["mia.sjogren@dorotea.example.se"]
    assert _positions(mia) == {("Dorotea", "tjansteperson")}  # by kommunkod 2425
    assert {a.area for a in mia.areas} == {"digitalisering", "infrastruktur"}
    assert people["per.eriksson@overkalix.example.se"].areas == []  # no areas: every area
    assert ake.basis_source == name and ake.lawful_basis == "legitimate_interest"


def test_english_headers_and_commas(site):
    out = site.cli("contacts", "import", str(DATA / "contacts_english_comma.csv")).stdout
    assert "3 nya" in out
    people = _persons(site)
    assert people["lena.strom@storuman.example.se"].name == "Ström, Lena"
    assert {a.area for a in people["lena.strom@storuman.example.se"].areas} == {
        "omvarld", "arbetsmarknad"}
    assert _positions(people["olof.berg@pajala.example.se"]) == {("Pajala", "kso")}
    assert _positions(people["nils.persson@example.se"]) == {(None, "styrelse")}


def test_every_bad_row_is_reported_with_its_line_and_the_rest_imported(site):
    result = site.cli("contacts", "import", str(DATA / "contacts_bad_rows.csv"), ok=False)
    assert result.exit_code == 1  # rows were rejected; the rest are imported
    out = result.stderr
    src = str(DATA / "contacts_bad_rows.csv")
    rejected = {int(line.split(":")[1]): line for line in out.splitlines() if "Avvisad" in line}
    assert set(rejected) == {3, 4, 5, 6, 7, 11}
    assert rejected[3].startswith(f"{src}:3:") and "inte-en-adress" in rejected[3]
    assert "tom e-postadress" in rejected[4]
    assert "Åselee" in rejected[5] and "menade du ”Åsele”" in rejected[5]
    assert "okänd roll ”borgmästare”" in rejected[6] and "kommunchef" in rejected[6]
    assert "okänt område ”fiske”" in rejected[7]
    assert "8 fält men rubrikraden har 6" in rejected[11]
    assert "ignorerade okänd kolumn ”Anteckning”" in out
    assert "3 nya" in result.stdout and "6 avvisade" in result.stdout
    people = _persons(site)
    assert set(people) == {"anna.lind@asele.example.se", "lars.ek@dorotea.example.se",
                           "maja.ek@sorsele.example.se"}
    # The duplicate on line 10 merged into line 2's person.
    assert _positions(people["anna.lind@asele.example.se"]) == {
        ("Åsele", "kommunchef"), (None, "styrelse")}


def test_row_with_several_problems_names_them_all(site, tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("email,name,municipality,role\nnope,X,Atlantis,kung\n", encoding="utf-8")
    out = site.cli("contacts", "import", str(f), ok=False).stderr
    line = next(x for x in out.splitlines() if "Avvisad" in x)
    assert f"{f}:2:" in line
    assert "”nope”" in line and "”Atlantis”" in line and "”kung”" in line


def test_missing_email_column_is_one_line_and_writes_nothing(site, tmp_path):
    f = tmp_path / "utan_epost.csv"
    f.write_text("Namn;Kommun;Roll\nAnna Lind;Åsele;kso\n", encoding="utf-8")
    result = site.cli("contacts", "import", str(f), ok=False)
    assert result.exit_code == 1
    assert str(f) in result.stderr and "”email”" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert _count(site, Person) == 0


def test_lines_are_counted_in_the_file_even_before_the_header(site, tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("\n\nemail;Telefon\nbad\n", encoding="utf-8")
    out = site.cli("contacts", "import", str(f), ok=False).output
    assert f"{f}:3: Varning: ignorerade okänd kolumn ”Telefon”" in out
    assert f"{f}:4: Avvisad: ogiltig e-postadress ”bad”" in out


@pytest.mark.parametrize("content,message", [
    (b"", "tom fil"),
    (b"\r\n \r\n", "tom fil"),
    (b"email\n\x81\x8d\x8f\n", "varken UTF-8 eller Windows-1252"),
    (b"PK\x03\x04\x14\x00\x06\x00binary", "Excel-arbetsbok, inte CSV"),
])
def test_unreadable_files_are_one_line_errors(site, tmp_path, content, message):
    f = tmp_path / "k.csv"
    f.write_bytes(content)
    result = site.cli("contacts", "import", str(f), ok=False)
    assert result.exit_code == 1
    assert message in result.stderr and str(f) in result.stderr
    assert "Traceback" not in result.output


def test_utf16_from_excel_unicode_text(site, tmp_path):
    f = tmp_path / "unicode.txt"
    f.write_bytes("E-post\tNamn\tKommun\tRoll\nbo@example.se\tBo Åberg\tÅsele\tkso\n"
                  .encode("utf-16"))
    site.cli("contacts", "import", str(f))
    assert _persons(site)["bo@example.se"].name == "Bo Åberg"


def test_dry_run_changes_nothing(site):
    out = site.cli("contacts", "import", "--dry-run",
                   str(DATA / "contacts_excel_cp1252.csv")).stdout
    assert "--dry-run" in out and "4 nya" in out
    assert _count(site, Person) == 0 and _count(site, Event) == 0 and _count(site, Position) == 0


def test_importing_the_same_file_twice_changes_nothing(site):
    site.cli("contacts", "import", str(DATA / "contacts_excel_utf8_bom.csv"))
    before = (_count(site, Person), _count(site, Position), _count(site, PersonArea),
              _count(site, Event))
    out = site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv")).stdout
    assert "0 nya, 0 uppdaterade, 4 oförändrade" in out
    assert (_count(site, Person), _count(site, Position), _count(site, PersonArea),
            _count(site, Event)) == before


def test_a_changed_file_updates_and_logs_without_personal_data(site, tmp_path):
    site.cli("contacts", "import", str(DATA / "contacts_excel_cp1252.csv"))
    f = tmp_path / "andra.csv"
    f.write_text("email,name,municipality,role,areas\n"
                 "karin.hogberg@harjedalen.example.se,Karin Högberg-Ek,Härjedalen,kommunchef,\n"
                 "KARIN.HOGBERG@harjedalen.example.se,,Berg,kso,\n"
                 "mia.sjogren@dorotea.example.se,Mia Sjögren,Dorotea,tjansteperson,kapital\n"
                 "ny.person@example.se,Ny Person,Vilhelmina,politiker,\n", encoding="utf-8")
    out = site.cli("contacts", "import", str(f)).stdout
    assert "1 nya, 2 uppdaterade, 0 oförändrade" in out
    people = _persons(site)
    karin = people["karin.hogberg@harjedalen.example.se"]
    assert karin.name == "Karin Högberg-Ek"
    assert _positions(karin) == {("Härjedalen", "kommunchef"), ("Berg", "kso")}
    assert {a.area for a in people["mia.sjogren@dorotea.example.se"].areas} == {"kapital"}
    assert karin.basis_source == "contacts_excel_cp1252.csv"  # where the person first came from
    with site.transaction() as session:
        events = session.scalars(select(Event)).all()
        kinds = sorted(e.kind for e in events)
        details = [str(e.detail) for e in events]
    assert kinds.count("imported") == 5 and kinds.count("updated") == 2
    for detail in details:
        assert "@" not in detail and "Karin" not in detail and "Högberg" not in detail


def test_an_empty_role_is_the_default_unless_the_person_has_another(site, tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("email,municipality,role\n"
                 "a@example.se,Åsele,\n"
                 "b@example.se,Åsele,kommunchef\n"
                 "b@example.se,Åsele,\n", encoding="utf-8")
    site.cli("contacts", "import", str(f))
    people = _persons(site)
    assert _positions(people["a@example.se"]) == {("Åsele", "ovrig")}
    assert _positions(people["b@example.se"]) == {("Åsele", "kommunchef")}
    out = site.cli("contacts", "import", str(f)).stdout
    assert "0 nya, 0 uppdaterade, 2 oförändrade" in out


def test_county_that_does_not_match_is_a_warning(site, tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("email,municipality,role,county\na@example.se,Åsele,kso,Skåne län\n"
                 "b@example.se,Åsele,kso,Västerbotten\n", encoding="utf-8")
    out = site.cli("contacts", "import", str(f)).output
    warnings = [x for x in out.splitlines() if "Varning" in x]
    assert len(warnings) == 1 and f"{f}:2:" in warnings[0] and "Västerbottens län" in warnings[0]
    assert "2 nya" in out


@pytest.mark.parametrize("how", ["unsubscribe", "forget", "bounced"])
def test_suppressed_addresses_are_never_made_active_again(site, how):
    src = DATA / "contacts_excel_cp1252.csv"
    site.cli("contacts", "import", str(src))
    address = "karin.hogberg@harjedalen.example.se"
    if how == "bounced":
        with site.transaction() as session:
            session.scalar(select(Person).where(Person.email == address)).status = "bounced"
    else:
        site.cli("contacts", how, address, *(["--yes"] if how == "forget" else []))
    out = site.cli("contacts", "import", str(src)).output
    skipped = [x for x in out.splitlines() if "Hoppade över" in x]
    assert len(skipped) == 1 and f"{src}:2:" in skipped[0]
    reason = {"unsubscribe": "unsubscribed", "forget": "erased", "bounced": "bounced"}[how]
    shown = {"unsubscribe": "avregistrerad", "forget": "raderad", "bounced": "studsad"}[how]
    assert f"adressen är {shown}" in skipped[0]
    assert "0 nya, 0 uppdaterade, 3 oförändrade, 1 överhoppade" in out
    person = _persons(site).get(address)
    if how == "forget":
        assert person is None
    else:
        assert person.status == reason


def test_core_function_reports_the_same(site):
    with site.transaction() as session:
        report = import_contacts(session, site.settings, DATA / "contacts_bad_rows.csv")
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    assert [p.line for p in report.rejected] == [3, 4, 5, 6, 7, 11]
    assert report.merged_rows == 1 and report.rows == 10


def test_a_file_of_several_hundred_rows_reads_the_database_in_chunks(site, tmp_path):
    f = tmp_path / "many.csv"
    names = ["Åsele", "Dorotea", "Härjedalen", "Pajala", "Ydre"]
    f.write_text("email;name;municipality;role\n" + "".join(
        f"p{i}@example.se;Person {i};{names[i % 5]};kso\n" for i in range(1234)),
        encoding="utf-8")
    assert "1234 nya" in site.cli("contacts", "import", str(f)).stdout
    shutil.copy(f, tmp_path / "again.csv")
    assert "0 nya, 0 uppdaterade, 1234 oförändrade" in site.cli(
        "contacts", "import", str(tmp_path / "again.csv")).stdout


@pytest.mark.sqlite_only  # PostgreSQL's autovacuum analyses by itself
def test_an_import_leaves_the_query_planner_statistics_of_the_register(site):
    # Without them SQLite reads every person through the index on status (all are active), a
    # random read per row: on a million contacts a segment count took 1.0 s instead of 0.7.
    site.cli("municipalities", "members", "Åsele", "Härjedalen", "Dorotea", "Överkalix")
    site.cli("contacts", "import", str(DATA / "contacts_excel_utf8_bom.csv"))
    with site.transaction() as session:
        analysed = set(session.connection().exec_driver_sql(
            "SELECT tbl FROM sqlite_stat1 WHERE stat IS NOT NULL").scalars())
    assert {"persons", "positions"} <= analysed
