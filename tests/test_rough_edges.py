"""The rough edges a new user hit (issue 16, item 6), each through the real CLI."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newsletter import dates
from newsletter.content import load_issue, read_source
from newsletter.markdown import convert
from newsletter.models import ArchivedIssue
from newsletter.render import IssueRenderer

from .helpers import add_person, seed

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _month(offset: int = 0) -> str:
    today = datetime.now(STOCKHOLM).date().replace(day=1)
    for _ in range(offset):
        today = (today + timedelta(days=32)).replace(day=1)
    return today.strftime("%Y-%m")


def _archive(site, month: str) -> None:
    with site.transaction() as session:
        session.add(ArchivedIssue(month=month, subject=f"Nyhetsbrev {month}", html="", text=""))


# --- items new ---------------------------------------------------------------------------------

def test_items_new_goes_to_the_next_issue_to_be_sent_and_says_which(site):
    _archive(site, "2020-01")  # a month long past is never chosen
    out = site.cli("items", "new", "--area", "bostad", "--title", "Första").stdout
    assert f"I numret {_month()}, nästa som ska skickas" in out
    assert (site.root / "issues" / _month() / "items" / "forsta.md").is_file()
    _archive(site, _month())
    _archive(site, _month(1))
    out = site.cli("items", "new", "--area", "bostad", "--title", "Andra").stdout
    assert f"I numret {_month(2)}, nästa som ska skickas" in out
    assert (site.root / "issues" / _month(2) / "items" / "andra.md").is_file()
    listing = site.cli("items", "list").stdout
    assert listing.startswith(f"Numret {_month(2)}, nästa som ska skickas:")
    assert "andra.md  Nyhet · " in listing
    given = site.cli("items", "new", "--issue", "2027-05", "--area", "bostad", "--title",
                     "Tredje").stdout
    assert "nästa som ska skickas" not in given


def test_an_item_is_dated_the_day_it_was_written_and_says_so(site):
    out = site.cli("items", "new", "--issue", "2027-05", "--area", "bostad", "--title",
                   "Nytt stöd").stdout
    today = datetime.now(STOCKHOLM).date()
    assert f"Daterad {dates.day(today)}, dagen den skrevs" in out
    fields, _body, _version = read_source(site.root / "issues/2027-05/items/nytt-stod.md")
    assert str(fields["date"]) == today.isoformat()


def test_an_event_needs_its_date(site):
    refused = site.cli("items", "new", "--issue", "2027-05", "--kind", "evenemang", "--area",
                       "medlemmar", "--title", "Vårmötet", ok=False)
    assert refused.exit_code == 1 and "--date" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (site.root / "issues/2027-05/items/varmotet.md").exists()
    out = site.cli("items", "new", "--issue", "2027-05", "--kind", "evenemang", "--date",
                   "2027-06-12", "--area", "medlemmar", "--title", "Vårmötet").stdout
    assert "Daterad 12 juni 2027, dagen för evenemanget" in out
    item = next(i for i in load_issue(site.settings, "2027-05").items if i.id == "varmotet")
    assert item.kind == "evenemang" and item.date.isoformat() == "2027-06-12"


# --- a single line break -----------------------------------------------------------------------

def test_a_single_line_break_keeps_the_lines(site):
    converted = convert("Tack för i år!\n\nVänliga hälsningar\nKarin")
    assert "<p>Vänliga hälsningar<br>\nKarin</p>" in converted.html
    assert converted.text.endswith("Vänliga hälsningar\nKarin")
    issue_file = site.root / "issues/2026-12/issue.md"
    issue_file.write_text(issue_file.read_text(encoding="utf-8")
                          + "\nVänliga hälsningar\nKarin Lindqvist\n", encoding="utf-8")
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    content = renderer.render(renderer.all_key)
    assert re.search(r"Vänliga hälsningar<br ?/?>\s*Karin Lindqvist", content.html)
    assert "Vänliga hälsningar\nKarin Lindqvist" in content.text


# --- mail --preheader --------------------------------------------------------------------------

def test_mail_takes_a_preheader(site, smtp_server, tmp_path):
    addresses = seed(site, 3)
    body = tmp_path / "enkat.md"
    body.write_text("Hej!\n\nSvara på enkäten om bredband.\n", encoding="utf-8")
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    site.cli("mail", "--to", "medlemmar", "--subject", "Enkät om bredband", "--body", str(body),
             "--preheader", "Svara senast  den 15 januari", env=env)
    messages = smtp_server.parsed()
    assert len(messages) == len(addresses)
    html = messages[0].get_body(("html",)).get_content()
    assert "Svara senast den 15 januari" in html  # the hidden preview line, spaces tidied
    again = site.cli("mail", "--to", "medlemmar", "--subject", "Enkät om bredband", "--body",
                     str(body), "--preheader", "Svara senast den 15 januari", env=env).stdout
    assert "redan klart" in again and len(smtp_server.parsed()) == len(addresses)


# --- send status -------------------------------------------------------------------------------

def test_send_status_has_a_header_dates_names_and_one_word_per_state(site, smtp_server):
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    smtp_server.reject(["p001@example.se"])
    seed(site, 3)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", env=env)
    with site.transaction() as session:
        add_person(session, "anna", (None, "styrelse"))
    site.cli("webinar", "new", "--title", "Bredband", "--start",
             (datetime.now(STOCKHOLM) + timedelta(days=9)).strftime("%Y-%m-%d 14:00"),
             "--join-url", "https://teams.example.se/l/x", "--slug", "bredband")
    site.cli("webinar", "register", "bredband", "anna@example.se", env=env)
    header, rule, *rows = site.cli("send", "status").stdout.splitlines()
    assert header.split() == ["Id", "Skapat", "Status", "Skickade", "Typ", "Till", "Ämnesrad"]
    assert set(rule) == {"-", " "}
    today = datetime.now(STOCKHOLM).strftime("%Y-%m-%d")
    webinar, issue = rows
    assert f"{today} kl. " in webinar and "klart" in webinar and "webbinarium" in webinar
    assert "Anna <anna@example.se>" in webinar and "Bekräftelse: Bredband" in webinar
    assert "2/3" in issue and "nyhetsbrev" in issue and "medlemmar" in issue
    detail = site.cli("send", "status", "1").stdout
    assert "Utskick 1: nyhetsbrev till medlemmar" in detail
    assert f"Skapat: {today} kl. " in detail and "Status: klart" in detail
    assert "skickade: 2" in detail and "studsade: 1" in detail
    assert "misslyckade" not in detail  # a bounce is "studsade", never also "misslyckade"
    assert re.search(r"<p001@example\.se>: studsade: hard bounce: 550", detail)


# --- contacts: export for Excel, duplicates by line ----------------------------------------------

def test_export_for_excel_has_a_bom_and_semicolons_and_imports_back(site, tmp_path):
    seed(site, 4)
    out = site.cli("contacts", "export", "--excel").stdout
    assert out.startswith("\ufeffemail;name;municipality;role")
    assert "Åsa Öberg" in out
    plain = site.cli("contacts", "export").stdout
    assert plain.startswith("email,name")  # to another program: no BOM unless asked
    exported = tmp_path / "kontakter.csv"
    exported.write_bytes(out.encode("utf-8"))  # as `> kontakter.csv` writes it
    again = site.cli("contacts", "import", str(exported)).stdout
    assert "0 nya, 0 uppdaterade, 4 oförändrade" in again


def test_an_import_lists_the_rows_it_merged_by_line(site, tmp_path):
    rows = ["email,name,municipality,role", "anna@example.se,Anna Berg,Åsele,kommunchef",
            "bengt@example.se,Bengt Lind,Dorotea,politiker",
            "ANNA@example.se,Anna Berg,Åsele,kso", "anna@example.se,,Dorotea,politiker"]
    path = tmp_path / "dubbletter.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = site.cli("contacts", "import", str(path))
    merged = [line for line in result.stderr.splitlines() if "Sammanslagen" in line]
    assert merged == [
        f"{path}:4: Sammanslagen: samma adress som rad 2 (anna@example.se): en kontakt",
        f"{path}:5: Sammanslagen: samma adress som rad 2 (anna@example.se): en kontakt"]
    assert "2 nya" in result.stdout
