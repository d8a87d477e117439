"""Content not in the repository: hostile markup, long titles, emoji, errors; `issue check`."""

from __future__ import annotations

import re
import shutil

from newsletter.content import load_issue
from newsletter.render import IssueRenderer

from .helpers import add_hostile_issue

FORBIDDEN = [
    r"<script", r"onerror", r"onclick", r"onload", r"javascript:", r"vbscript:", r"<iframe",
    r"data:text", r"data:image", r"expression\(", r"position:fixed", r"<form", r"<input",
    r"<meta http-equiv=\"refresh", r"<object", r"<embed", r"<svg", r"file:///", r"alert\(",
    r"evil\.example\.se/\?c=", r"display:none }",
]


def test_hostile_content_never_reaches_the_output(site):
    add_hostile_issue(site)
    site.cli("issue", "build", "2026-12")
    build = site.root / "issues/2026-12/build"
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    outputs = {
        "issue.html": (build / "issue.html").read_text(encoding="utf-8"),
        "issue.txt": (build / "issue.txt").read_text(encoding="utf-8"),
        "issue.mjml": (build / "issue.mjml").read_text(encoding="utf-8"),
        "web.html": renderer.web_version().html, "web.txt": renderer.web_version().text,
    }
    for name, text in outputs.items():
        for pattern in FORBIDDEN:
            assert not re.search(pattern, text, re.IGNORECASE), f"{pattern} in {name}"
    html = outputs["issue.html"]
    assert "Farlig rubrik" in html and "Farlig rubrik" in outputs["issue.txt"]
    assert '<a href="https://www.regeringen.se/" rel="noopener"' in html
    assert "<strong>fetstil</strong>" in html
    # An image on https stays (with its alt text); every href is http(s), mailto or a token.
    assert 'src="https://evil.example.se/p.gif"' in html
    for href in re.findall(r'href="([^"]*)"', html):
        assert re.match(r"(https?://|mailto:|#omrade-|__NL_[A-Z_]+__$)", href), href


def test_long_titles_emoji_and_swedish_characters_survive(site):
    add_hostile_issue(site)
    site.cli("issue", "build", "2026-12")
    build = site.root / "issues/2026-12/build"
    html = (build / "issue.html").read_text(encoding="utf-8")
    text = (build / "issue.txt").read_text(encoding="utf-8")
    for part in (html, text):
        assert "🎉🏡🚆" in part and "👍 ÅÄÖ åäö é ü ß „citat” – tankstreck." in part
        assert "Å" * 120 in part
        assert "Bostadsförsörjning" in part or "BOSTADSFÖRSÖRJNING" in part
    assert "&#" not in html  # characters kept as UTF-8, not turned into entities


def test_check_reports_errors_and_warnings_and_exits_non_zero(site):
    add_hostile_issue(site)
    items = site.root / "issues/2026-12/items"
    (items / "trasig.md").write_text("---\ntitle: Fel område\narea: skola\n---\nText\n",
                                     encoding="utf-8")
    (items / "osaker.md").write_text(
        "---\ntitle: Http\narea: kapital\nurl: http://www.kommuninvest.se/\n---\n"
        "Se ![](https://www.kommuninvest.se/bild.png) och [här](http://example.se/).\n",
        encoding="utf-8")
    result = site.cli("issue", "check", "2026-12", ok=False)
    assert result.exit_code != 0
    out = result.stdout
    assert re.search(r"FEL: .*trasig\.md \[area\]: okänt område ”skola” \(giltiga: medlemmar", out)
    assert re.search(r"VARNING: .*osaker\.md \[url\]: länken är inte https", out)
    assert re.search(r"VARNING: .*osaker\.md: 1 bild utan alt-text", out)
    assert re.search(r"VARNING: .*osaker\.md: länken är inte https: http://example\.se/", out)
    assert re.search(r"VARNING: .*99-fientlig\.md: rå HTML utelämnad", out)
    assert "1 fel" in out
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_flags_an_issue_without_subject_items_or_preheader(site):
    site.cli("issue", "new", "2027-02")
    issue_md = site.root / "issues/2027-02/issue.md"
    issue_md.write_text("---\nsubject: \"\"\n---\nLedare.\n", encoding="utf-8")
    result = site.cli("issue", "check", "2027-02", ok=False)
    assert result.exit_code != 0
    assert "[subject]: ämnesrad saknas" in result.stdout
    assert "numret har inga nyheter" in result.stdout
    assert "ingen förhandstext" in result.stdout
    assert "området bostad (Bostadsförsörjning) har inga nyheter" in result.stdout
    build = site.cli("issue", "build", "2027-02", ok=False)
    assert build.exit_code != 0 and "[subject]" in build.stderr


def test_check_warns_about_size_over_90_kb(site):
    items = site.root / "issues/2026-12/items"
    for n in range(40):
        shutil.copy(items / "04-strandskyddet-remiss.md", items / f"kopia-{n:02}.md")
    result = site.cli("issue", "check", "2026-12")
    assert "Gmail klipper mejl över ungefär 102 kB" in result.stdout


def test_bad_front_matter_is_one_line_naming_file_and_field(site):
    items = site.root / "issues/2026-12/items"
    (items / "datum.md").write_text("---\ntitle: X\narea: bostad\ndate: 31/12\n---\n",
                                    encoding="utf-8")
    result = site.cli("issue", "build", "2026-12", ok=False)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "datum.md [date]: felaktigt datum" in lines[0]
    assert "Traceback" not in result.output


def test_preview_as_a_contact_uses_their_variant_and_links(site):
    from newsletter.models import Person, PersonArea, Position

    with site.transaction() as session:
        person = Person(email="anna.berg@example.se", name="Anna <Berg>")
        session.add(person)
        session.flush()
        session.add_all([PersonArea(person_id=person.id, area="medlemmar"),
                         Position(person_id=person.id, role="kommunchef")])
        public_id = person.public_id
    out = site.cli("issue", "preview", "2026-12", "--as", "anna.berg@example.se").stdout
    html = (site.root / "issues/2026-12/build/preview.html").read_text(encoding="utf-8")
    assert "preview.html" in out
    assert "Kommunchefsnätverket" in html and "Höstmötet i Ånge" in html
    assert "Nytt förslag om strandskyddet" not in html
    assert "__NL_" not in html and "anna.berg@example.se" in html
    assert f"https://nyhetsbrev.example.se/u/{public_id}." in html
    missing = site.cli("issue", "preview", "2026-12", "--as", "ingen@example.se", ok=False)
    assert missing.exit_code != 0 and "ingen@example.se" in missing.stderr
    plain = site.cli("issue", "preview", "2026-12")
    assert plain.exit_code == 0
