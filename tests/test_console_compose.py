"""Composing in the console: the files it writes are the CLI's files, read back by the CLI."""

from __future__ import annotations

import re
from datetime import date

import yaml
from sqlalchemy import select

from newsletter import content
from newsletter.models import Event

from .console_support import (
    csrf_of,
)

MONTH = "2026-12"
ITEM = "07-kommuninvest-rantebesked"
TITLES = ["Kommuninvest: nytt räntebesked", 'Han sa "hej" – och det är 🎉', "- inte en lista",
          "#inte en kommentar", "yes", "Åsele: 100 % ", "a: b: c 'x' \"y\""]


def _form(client, path: str) -> tuple[str, dict]:
    html = client.get(path).text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    return html, fields


def _item_data(client, **changes) -> dict:
    data = {"title": "Nytt om strandskyddet", "area": "omvarld", "kind": "remiss",
            "url": "https://www.regeringen.se/remisser/", "date": "2026-12-02",
            "tags": "miljö, remiss", "roles": ["kommunchef"], "body": "Text om **remissen**."}
    data.update(changes)
    return data


def test_titles_that_break_hand_written_yaml_survive(console):
    client = console.signed_in("redaktor")
    for title in TITLES:
        _html, hidden = _form(client, f"/nummer/{MONTH}/nyhet/ny")
        response = client.post(f"/nummer/{MONTH}/nyhet/ny",
                               data=_item_data(client, title=title, **hidden))
        assert response.status_code == 303, response.text
    issue = content.load_issue(console.site.settings, MONTH)
    assert {" ".join(t.split()) for t in TITLES} <= {i.title for i in issue.items}
    listed = console.site.cli("items", "list", "--issue", MONTH).stdout
    assert "Kommuninvest: nytt räntebesked" in listed and "🎉" in listed
    assert console.site.cli("issue", "check", MONTH).exit_code == 0


def test_a_saved_item_is_the_file_a_person_would_write(console):
    client = console.signed_in("redaktor")
    _html, hidden = _form(client, f"/nummer/{MONTH}/nyhet/ny")
    client.post(f"/nummer/{MONTH}/nyhet/ny", data=_item_data(client, **hidden))
    path = console.site.root / "issues" / MONTH / "items" / "nytt-om-strandskyddet.md"
    text = path.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front == {"title": "Nytt om strandskyddet", "area": "omvarld", "kind": "remiss",
                     "url": "https://www.regeringen.se/remisser/",
                     "date": date(2026, 12, 2),
                     "tags": ["miljö", "remiss"], "roles": ["kommunchef"]}
    assert text.endswith("---\nText om **remissen**.\n")
    with console.site.transaction() as session:
        event = session.scalars(select(Event).where(Event.kind == "console-item-saved")).one()
    assert event.detail["staff"] == "redaktor@example.se"


def test_bad_fields_are_refused_with_the_field_named(console):
    client = console.signed_in("redaktor")
    _html, hidden = _form(client, f"/nummer/{MONTH}/nyhet/ny")
    for changes, field in (({"url": "http://example.se/"}, "url"),
                           ({"url": "javascript:alert(1)"}, "url"),
                           ({"area": "hittepa"}, "area"), ({"kind": "skvaller"}, "kind"),
                           ({"roles": ["kung"]}, "roles"), ({"date": "igår"}, "date"),
                           ({"title": "  "}, "title")):
        response = client.post(f"/nummer/{MONTH}/nyhet/ny",
                               data=_item_data(client, **changes, **hidden))
        assert response.status_code == 400, changes
        assert f'id="{field}-fel"' in response.text, (changes, field)
    assert not (console.site.root / "issues" / MONTH / "items" / "nytt-om-strandskyddet.md"
                ).exists()


def test_saving_over_a_file_changed_on_disk_is_refused_with_both_versions(console):
    client = console.signed_in("redaktor")
    path = console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    html, hidden = _form(client, f"/nummer/{MONTH}/nyhet/{ITEM}")
    # Meanwhile, in a text editor:
    path.write_text(path.read_text(encoding="utf-8").replace("Kommuninvest", "KI (ändrad)"),
                    encoding="utf-8")
    on_disk = path.read_text(encoding="utf-8")
    response = client.post(f"/nummer/{MONTH}/nyhet/{ITEM}", data=_item_data(
        client, title="Min version", area="kapital", **hidden))
    assert response.status_code == 409
    assert path.read_text(encoding="utf-8") == on_disk  # nothing overwritten
    assert "KI (ändrad)" in response.text and "Min version" in response.text
    # Saving again from the conflict page is a conscious choice: it carries the new version.
    again = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', response.text))
    saved = client.post(f"/nummer/{MONTH}/nyhet/{ITEM}", data=_item_data(
        client, title="Min version", area="kapital", **again))
    assert saved.status_code == 303
    assert "Min version" in path.read_text(encoding="utf-8")


def test_the_issue_page_shows_what_is_on_disk_now(console):
    client = console.signed_in("redaktor")
    assert "Ändrat i editorn" not in client.get(f"/nummer/{MONTH}").text
    path = console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    path.write_text(re.sub(r"^title: .*$", "title: Ändrat i editorn",
                           path.read_text(encoding="utf-8"), count=1, flags=re.M),
                    encoding="utf-8")
    assert "Ändrat i editorn" in client.get(f"/nummer/{MONTH}").text


def test_the_editorial_and_subject_are_saved_to_issue_md(console):
    client = console.signed_in("redaktor")
    _html, hidden = _form(client, f"/nummer/{MONTH}")
    response = client.post(f"/nummer/{MONTH}", data={
        **hidden, "subject": "December: året som gick", "preheader": "Höstmötet, remisser",
        "author": "Eva Ek", "body": "Hej alla!\n\nDet här är **ledaren**.", "action": "save"})
    assert response.status_code == 303
    issue = content.load_issue(console.site.settings, MONTH)
    assert issue.subject == "December: året som gick" and issue.author == "Eva Ek"
    assert "<strong>ledaren</strong>" in issue.editorial.html
    preview = client.post(f"/nummer/{MONTH}/markdown",
                          data={"body": "*hej* <script>x</script>"},
                          headers={"X-CSRF-Token": csrf_of(client.get(f"/nummer/{MONTH}").text)})
    assert preview.text.strip() == "<p><em>hej</em> </p>"


def test_reorder_within_an_area_writes_order_and_the_cli_follows_it(console):
    client = console.signed_in("redaktor")
    issue = content.load_issue(console.site.settings, MONTH)
    kapital = [i.id for i in issue.items_in("kapital")]
    assert len(kapital) >= 2
    csrf = csrf_of(client.get(f"/nummer/{MONTH}").text)
    response = client.post(f"/nummer/{MONTH}/ordning",
                           data={"csrf": csrf, "item": kapital[-1], "direction": "up"})
    assert response.status_code == 303
    moved = [i.id for i in content.load_issue(console.site.settings, MONTH).items_in("kapital")]
    assert moved == kapital[:-2] + [kapital[-1], kapital[-2]]
    path = console.site.root / "issues" / MONTH / "items" / f"{kapital[-1]}.md"
    assert f"order: {len(kapital) - 1}" in path.read_text(encoding="utf-8")
    listed = console.site.cli("items", "list", "--issue", MONTH).stdout
    assert listed.index(kapital[-1]) < listed.index(kapital[-2])
    # The script's way: a whole area's order at once; a foreign id is refused.
    reverse = list(reversed(moved))
    ok = client.post(f"/nummer/{MONTH}/ordning", data={"csrf": csrf, "ids": reverse},
                     headers={"X-Requested-With": "fetch"})
    assert ok.status_code == 204
    assert [i.id for i in content.load_issue(console.site.settings, MONTH)
            .items_in("kapital")] == reverse
    bad = client.post(f"/nummer/{MONTH}/ordning", data={"csrf": csrf, "ids": [ITEM, "x"]})
    assert bad.status_code == 400


def test_delete_and_a_new_month(console):
    client = console.signed_in("redaktor")
    html, hidden = _form(client, f"/nummer/{MONTH}/nyhet/{ITEM}")
    response = client.post(f"/nummer/{MONTH}/nyhet/{ITEM}/radera", data=hidden)
    assert response.status_code == 303
    assert not (console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md").exists()
    csrf = csrf_of(client.get("/").text)
    created = client.post("/nummer/", data={"csrf": csrf, "month": "2027-01"})
    assert created.headers["Location"].startswith("/nummer/2027-01")
    assert (console.site.root / "issues" / "2027-01" / "issue.md").is_file()
    assert client.get("/nummer/2027-01").status_code == 200
    assert client.post("/nummer/", data={"csrf": csrf, "month": "2027-13"}).status_code == 400
    assert client.get("/nummer/../../etc").status_code == 404


def test_items_new_takes_order(site):
    site.cli("items", "new", "--issue", MONTH, "--area", "kapital", "--title",
             "Först: räntan", "--order", "0")
    issue = content.load_issue(site.settings, MONTH)
    assert issue.items_in("kapital")[0].title == "Först: räntan"


def test_the_check_is_on_the_issue_page_linked_to_items(console):
    path = console.site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "https://", "http://", 1), encoding="utf-8")
    page = console.signed_in("redaktor").get(f"/nummer/{MONTH}").text
    section = page[page.index('id="kontroll"'):page.index('id="ledare-rubrik"')]
    assert f'href="/nummer/{MONTH}/nyhet/{ITEM}"' in section
