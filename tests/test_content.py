"""Loading an issue from its files: validation names the file and the field; the commands."""

from __future__ import annotations

from datetime import date

import pytest

from newsletter.content import load_issue, scan_issue, slugify
from newsletter.errors import InputError, NotFound


def write_item(site, name: str, front: str, body: str = "Text.", month: str = "2026-12"):
    path = site.root / "issues" / month / "items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")
    return path


def test_sample_issue_loads_with_items_in_every_area(site):
    issue = load_issue(site.settings, "2026-12")
    assert issue.subject.startswith("Nyhetsbrev december 2026")
    assert issue.author and issue.preheader and issue.editorial.html
    for area in site.settings.areas:
        assert 2 <= len(issue.items_in(area.slug)) <= 3, area.slug
    assert any("kommunchef" in item.roles for item in issue.items)
    assert all(item.url is None or item.url.startswith("https://") for item in issue.items)


@pytest.mark.parametrize("front,field,words", [
    ("title: X\narea: skola", "area", ["okänt område ”skola”", "medlemmar, bostad, kapital"]),
    ("area: bostad", "title", ["title saknas"]),
    ("title: X\narea: bostad\ndate: 2026-13-45", "date", ["felaktigt datum"]),
    ("title: X\narea: bostad\ndate: igår", "date", ["felaktigt datum"]),
    ("title: X\narea: bostad\nkind: krönika", "kind", ["okänd typ ”krönika”", "remiss"]),
    ("title: X\narea: bostad\nroles: [kommunchef, rektor]", "roles",
     ["okänd roll ”rektor”", "kommunchef, kso"]),
    ("title: X\narea: bostad\nurl: javascript:alert(1)", "url", ["https://"]),
    ("title: X\narea: bostad\nrolls: [kso]", "rolls", ["okänt fält ”rolls”"]),
])
def test_invalid_item_names_file_and_field(site, front, field, words):
    path = write_item(site, "trasig.md", front)
    with pytest.raises(InputError) as info:
        load_issue(site.settings, "2026-12")
    message = str(info.value)
    assert str(path) in message and f"[{field}]" in message
    for word in words:
        assert word in message
    assert "\n" not in message


def test_broken_yaml_names_the_line(site):
    path = write_item(site, "trasig.md", "title: X\narea: [bostad")
    with pytest.raises(InputError, match=rf"{path}:\d+: inledningen \(front matter\)"):
        load_issue(site.settings, "2026-12")


def test_missing_front_matter_and_bad_encoding(site):
    path = site.root / "issues/2026-12/items/ingen.md"
    path.write_text("Bara text\n", encoding="utf-8")
    with pytest.raises(InputError, match="ingen inledning"):
        load_issue(site.settings, "2026-12")
    path.write_bytes("---\ntitle: Åsele\narea: bostad\n---\n".encode("cp1252"))
    with pytest.raises(InputError, match="inte UTF-8"):
        load_issue(site.settings, "2026-12")


def test_scan_collects_every_error_and_keeps_valid_items(site):
    write_item(site, "a.md", "title: A\narea: skola")
    write_item(site, "b.md", "area: bostad")
    issue, errors = scan_issue(site.settings, "2026-12")
    assert len(errors) == 2
    assert len(issue.items) == 19


def test_front_matter_text_is_plain_and_dates_parse(site):
    write_item(site, "a.md", 'title: "<b>Åsele</b> <script>alert(1)</script>bygger 🎉"\n'
                             "area: bostad\ndate: 2026-12-24\ntags: [bostäder, strandskydd]")
    item = next(i for i in load_issue(site.settings, "2026-12").items if i.id == "a")
    assert item.title == "Åsele bygger 🎉"
    assert item.date == date(2026, 12, 24)
    assert item.tags == ("bostäder", "strandskydd")
    assert item.kind == "nyhet"


def test_unknown_month_and_bad_month(site):
    with pytest.raises(NotFound, match="newsletter issue new 2031-01"):
        load_issue(site.settings, "2031-01")
    with pytest.raises(InputError, match="ÅÅÅÅ-MM"):
        load_issue(site.settings, "2026-13")


def test_sample_issue_is_found_in_the_package_without_a_site_folder(tmp_path):
    from newsletter.settings import load_settings

    settings = load_settings(tmp_path, env={"NEWSLETTER_SECRET_KEY": "x" * 20})
    assert len(load_issue(settings, "2026-12").items) == 19


@pytest.mark.parametrize("title,slug", [
    ("Nytt förslag om strandskyddet", "nytt-forslag-om-strandskyddet"),
    ("Åsele & Dorotea: 40 nya hyresrätter!", "asele-dorotea-40-nya-hyresratter"),
    ("🎉🎉", "nyhet"),
])
def test_slugify(title, slug):
    assert slugify(title) == slug


# --- the commands -----------------------------------------------------------------------------

def test_issue_new_scaffolds_with_todays_areas_and_refuses_twice(site):
    out = site.cli("issue", "new", "2027-01").stdout
    text = (site.root / "issues/2027-01/issue.md").read_text(encoding="utf-8")
    assert "issue.md" in out
    assert "subject: Nyhetsbrev januari 2027" in text
    for area in site.settings.areas:
        assert area.slug in text and area.name in text
    assert (site.root / "issues/2027-01/items").is_dir()
    again = site.cli("issue", "new", "2027-01", ok=False)
    assert again.exit_code != 0 and "finns redan" in again.stderr


def test_items_new_and_list(site):
    site.cli("issue", "new", "2027-01")
    site.cli("items", "new", "--issue", "2027-01", "--area", "bostad", "--title",
             "Åsele bygger 40 hyresrätter 🎉", "--url", "https://www.asele.se/",
             "--kind", "rapport")
    path = site.root / "issues/2027-01/items/asele-bygger-40-hyresratter.md"
    item = next(iter(load_issue(site.settings, "2027-01").items))
    assert path.exists() and item.title == "Åsele bygger 40 hyresrätter 🎉"
    assert item.kind == "rapport" and item.url == "https://www.asele.se/"
    again = site.cli("items", "new", "--issue", "2027-01", "--area", "bostad", "--title",
                     "Åsele bygger 40 hyresrätter 🎉", ok=False)
    assert again.exit_code != 0 and "finns redan" in again.stderr
    listing = site.cli("items", "list", "--issue", "2027-01").stdout
    assert "Bostadsförsörjning (bostad): 1" in listing and "Åsele bygger" in listing


def test_items_new_rejects_unknown_area_in_one_line(site):
    result = site.cli("items", "new", "--issue", "2026-12", "--area", "skola", "--title", "X",
                      ok=False)
    assert result.exit_code != 0
    assert "[area]" in result.stderr and "medlemmar" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_items_list_shows_roles(site):
    out = site.cli("items", "list", "--issue", "2026-12").stdout
    assert "19 nyheter" in out and "endast kommunchef" in out
