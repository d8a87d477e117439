"""Rendering: the golden sample issue, variants, webinars, placeholders and messages."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from email import message_from_string
from pathlib import Path
from zoneinfo import ZoneInfo

import mjml
import pytest

from newsletter import render
from newsletter.content import load_issue
from newsletter.render import IssueRenderer, WebinarInfo, render_message
from newsletter.sources import Recipient, personalise

GOLDEN = Path(__file__).resolve().parent / "golden"
ALL = frozenset()


def normalise_html(html: str) -> str:
    """Whitespace collapsed, timestamps replaced: what the golden HTML file is compared on."""
    html = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?", "TIME", html)
    return re.sub(r"\s+", " ", html).strip()


def compare_golden(name: str, actual: str, normalise=lambda s: s) -> None:
    """Compare with tests/golden/NAME; regenerate on purpose with UPDATE_GOLDEN=1 pytest ..."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert normalise(actual) == normalise(expected), (
        f"{name} differs from the golden file; if the change is intended, "
        "regenerate with UPDATE_GOLDEN=1 pytest tests/test_render.py")


def test_build_matches_the_golden_files(site):
    out = site.cli("issue", "build", "2026-12").stdout
    build = site.root / "issues/2026-12/build"
    assert "19 nyheter i 7 områden" in out
    compare_golden("2026-12.html", (build / "issue.html").read_text(encoding="utf-8"),
                   normalise_html)
    compare_golden("2026-12.txt", (build / "issue.txt").read_text(encoding="utf-8"))
    assert (build / "issue.mjml").read_text(encoding="utf-8").startswith("<mjml lang=\"sv\">")
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    assert [a["name"] for a in manifest["areas"]] == [a.name for a in site.settings.areas]
    assert len(manifest["items"]) == 19
    assert manifest["area_names"]["bostad"] == "Bostadsförsörjning"
    assert not list(build.glob(".*"))  # no temp files left behind


def test_sample_issue_html_is_email_shaped(site):
    issue = load_issue(site.settings, "2026-12")
    renderer = IssueRenderer(site.settings, issue)
    html = renderer.render(renderer.all_key).html
    assert html.startswith("<!DOCTYPE html>")
    assert len(html.encode("utf-8")) < 90 * 1024
    assert 'lang="sv"' in html and "max-width:600px" in html
    assert "<!--[if mso" in html  # Outlook's tables survive the inliner
    assert "!important" in html and "@media" in html  # the mobile layout survives too
    assert "Nyhetsbrev december 2026" in html
    assert site.settings.organisation.postal_address in html
    assert issue.preheader in html  # the hidden preheader
    # ... hidden without a font colour, which SpamAssassin scores as low contrast
    hidden = html[html.index('<div style="display:none'):].split(">", 1)[0]
    assert "opacity:0" in hidden and "color" not in hidden
    for label in ("Nyhet", "Utredning", "Remiss", "Rapport", "Evenemang"):
        assert f">{label}<" in html
    assert "Läs mer på regeringen.se" in html
    positions = [html.index(f">{a.name}</h2>") for a in site.settings.areas]
    assert positions == sorted(positions)
    assert "fonts.googleapis" not in html and "{{" not in html
    # Personal parts are plain tokens, in hrefs and text alike.
    assert 'href="__NL_UNSUBSCRIBE_URL__"' in html and 'href="__NL_PREFERENCES_URL__"' in html
    assert "__NL_EMAIL__" in html
    assert 'href="https://nyhetsbrev.example.se/arkiv/2026-12"' in html


def test_variants_by_area_and_role(site):
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    only_bostad = renderer.render(renderer.variant_key(frozenset({"bostad"}), frozenset({"kso"})))
    assert "Nytt förslag om strandskyddet" in only_bostad.html
    assert "lägre marginaler för små låntagare" not in only_bostad.html
    assert "lägre marginaler för små låntagare" not in only_bostad.text
    assert ">Infrastruktur</h2>" not in only_bostad.html
    assert [a["slug"] for a in only_bostad.manifest["areas"]] == ["bostad"]

    chief = renderer.render(renderer.variant_key(None, frozenset({"kommunchef"})))
    other = renderer.render(renderer.variant_key(None, frozenset({"politiker"})))
    for title in ("Kommunchefsnätverket träffas", "samordnad rekrytering av specialister"):
        assert title in chief.html and title in chief.text
        assert title not in other.html and title not in other.text
    assert "Till: Kommunchef" in chief.html

    web = renderer.web_version()
    assert "Kommunchefsnätverket" not in web.html
    assert "lägre marginaler för små låntagare" in web.html
    assert "__NL_" not in web.html and "__NL_" not in web.text
    assert "Avregistrera" not in web.html


def test_people_with_the_same_content_share_a_key_and_each_key_renders_once(site, monkeypatch):
    calls = []
    real = mjml.mjml2html

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render.mjml, "mjml2html", counting)
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    every_area = frozenset(a.slug for a in site.settings.areas)
    keys = {renderer.variant_key(None, frozenset()),
            renderer.variant_key(every_area, frozenset({"politiker", "kso"})),
            renderer.variant_key(None, frozenset({"styrelse"}))}
    assert len(keys) == 1
    key = keys.pop()
    first = renderer.render(key)
    assert renderer.render(key) is first
    personalise(first, Recipient("anna.berg@example.se", "", "", "", ""))
    assert len(calls) == 1
    # A key is usable on a fresh renderer too (the sender may render from a stored key).
    again = IssueRenderer(site.settings, load_issue(site.settings, "2026-12")).render(key)
    assert again.html == first.html


def test_empty_variant_says_so(site):
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    key = renderer.variant_key(frozenset(), frozenset())
    rendered = renderer.render(key)
    assert "inga nyheter inom dina valda områden" in rendered.html
    assert "__NL_PREFERENCES_URL__" in rendered.text


def test_personalise_escapes_and_replaces_every_token(site):
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    rendered = renderer.render(renderer.all_key)
    recipient = Recipient(name="Åsa <Ö>", email="asa.o@example.se", message_id="",
                          unsubscribe_url="https://nyhetsbrev.example.se/u/abc?x=1&y=2",
                          preferences_url="https://nyhetsbrev.example.se/p/abc")
    personal = personalise(rendered, recipient)
    assert "__NL_" not in personal.html and "__NL_" not in personal.text
    assert 'href="https://nyhetsbrev.example.se/u/abc?x=1&amp;y=2"' in personal.html
    assert "https://nyhetsbrev.example.se/u/abc?x=1&y=2" in personal.text
    assert "asa.o@example.se" in personal.html


def test_upcoming_webinars_block(site):
    issue = load_issue(site.settings, "2026-12")
    starts = datetime(2027, 1, 14, 13, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
    webinar = WebinarInfo("Bredbandsstödet 2027 – så söker ni", starts,
                          "https://nyhetsbrev.example.se/webinar/bredband", 60)
    with_webinar = IssueRenderer(site.settings, issue, [webinar]).web_version()
    assert "Kommande webbinarier" in with_webinar.html
    assert "Torsdag 14 januari 2027 kl. 13.00–14.00" in with_webinar.html
    assert "Bredbandsstödet 2027 – så söker ni" in with_webinar.text
    without = IssueRenderer(site.settings, issue).web_version()
    assert "Kommande webbinarier" not in without.html + without.text


def test_render_message_uses_the_same_frame(site):
    rendered = render_message(
        site.settings, subject="Till kommuncheferna: enkät om räddningstjänst",
        body_markdown="Hej!\n\nSvara på [enkäten](https://www.example.se/enkat) senast "
                      "fredag. <script>alert(1)</script>", preheader="Svara senast fredag")
    for part in (rendered.html, rendered.text):
        assert site.settings.organisation.postal_address in part
        assert "__NL_UNSUBSCRIBE_URL__" in part and "__NL_PREFERENCES_URL__" in part
        assert "Till kommuncheferna: enkät om räddningstjänst" in part
        assert "<script" not in part and "alert(1)" not in part
    assert 'href="https://www.example.se/enkat"' in rendered.html
    assert "enkäten (https://www.example.se/enkat)" in rendered.text
    assert "Svara senast fredag" in rendered.html


def test_text_part_is_clean_utf8_plain_text(site):
    renderer = IssueRenderer(site.settings, load_issue(site.settings, "2026-12"))
    text = renderer.render(renderer.all_key).text
    assert "<" not in text.replace("<-", "") and "&amp;" not in text
    assert "Höstmötet i Ånge" in text and "BOSTADSFÖRSÖRJNING" in text
    long_lines = [line for line in text.splitlines() if len(line) > 78 and " " in line
                  and "://" not in line]
    assert long_lines == []
    # Round trip through an email parser keeps the characters.
    msg = message_from_string(f"Content-Type: text/plain; charset=utf-8\n\n{text}")
    assert "Välkommen, Ragunda kommun!" in msg.get_payload()


@pytest.mark.parametrize("month", ["2026-12"])
def test_check_passes_on_the_sample_issue(site, month):
    result = site.cli("issue", "check", month)
    assert "0 fel, 0 varningar" in result.stdout


def test_build_shows_scheduled_future_webinars_from_the_database(site):
    from datetime import timedelta

    from newsletter.models import Webinar

    soon = datetime.now(UTC) + timedelta(days=10)
    with site.transaction() as session:
        session.add_all([
            Webinar(slug="bredband", uid="bredband@example.se", title="Bredbandsstödet i praktiken",
                    starts_at=soon, duration_minutes=45, join_url="https://example.se/join"),
            Webinar(slug="inställt", uid="x@example.se", title="Inställt webbinarium",
                    starts_at=soon, duration_minutes=45, join_url="https://example.se/j",
                    status="cancelled"),
            Webinar(slug="gammalt", uid="y@example.se", title="Förra årets webbinarium",
                    starts_at=soon - timedelta(days=400), duration_minutes=45,
                    join_url="https://example.se/j")])
    site.cli("issue", "build", "2026-12")
    html = (site.root / "issues/2026-12/build/issue.html").read_text(encoding="utf-8")
    assert "Kommande webbinarier" in html and "Bredbandsstödet i praktiken" in html
    assert 'href="https://nyhetsbrev.example.se/webinar/bredband"' in html
    assert "Inställt webbinarium" not in html and "Förra årets" not in html
