"""The archive: the list of sent issues, each issue's web version and the Atom feed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from newsletter.models import ArchivedIssue

from .helpers import check_headers, check_page

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "https://nyhetsbrev.example.se"


def web_version(subject: str) -> str:
    return (f'<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>{subject}</title>'
            f'<style>p {{ color: #333 }}</style></head><body><div style="max-width:600px">'
            f"<h1>{subject}</h1><p>Hej __NL_NAME__! Nyheter om bredband i Åsele och Dorotea.</p>"
            f'<a href="{BASE}/arkiv/">Arkiv</a></div></body></html>')


def archive(site, *issues: tuple[str, str, str]) -> None:
    with site.transaction() as session:
        for month, subject, preheader in issues:
            year, mon = map(int, month.split("-"))
            session.add(ArchivedIssue(
                month=month, subject=subject, preheader=preheader, html=web_version(subject),
                text=subject, manifest={"areas": {"bostad": "Bostadsförsörjning"}},
                published_at=datetime(year, mon, 15, 8, 30, tzinfo=UTC)))


ISSUES = [
    ("2026-01", "Nyhetsbrev januari: bredband & bostäder", "Nytt år, nya satsningar"),
    ("2025-12", "Nyhetsbrev december", ""),
    ("2026-03", "Nyhetsbrev mars <b>extra</b>", "Remissvar om kapitalförsörjning"),
]


def test_an_empty_archive_says_so(web):
    client, _ = web
    got = client.get("/arkiv/")
    assert got.status_code == 200
    check_page(got)
    assert "Inga nyhetsbrev har skickats ännu." in got.get_data(as_text=True)
    feed = ET.fromstring(client.get("/arkiv/feed.atom").data)
    assert feed.findall(f"{ATOM}entry") == []
    assert feed.find(f"{ATOM}updated").text


def test_the_archive_lists_issues_newest_first_with_swedish_month_names(web):
    client, site = web
    archive(site, *ISSUES)
    got = client.get("/arkiv/")
    check_page(got)
    assert got.headers["Cache-Control"].startswith("public")
    page = got.get_data(as_text=True)
    months = [page.index(m) for m in ("mars 2026", "januari 2026", "december 2025")]
    assert months == sorted(months)
    assert 'href="/arkiv/2026-03"' in page and 'href="/arkiv/2025-12"' in page
    assert "Nyhetsbrev mars &lt;b&gt;extra&lt;/b&gt;" in page  # autoescaped
    assert "bredband &amp; bostäder" in page
    assert "Remissvar om kapitalförsörjning" in page
    assert 'type="application/atom+xml"' in page
    assert client.get("/").data == got.data


def test_each_issue_is_served_as_its_web_version_without_personal_tokens(web):
    client, site = web
    archive(site, *ISSUES)
    got = client.get("/arkiv/2026-01")
    assert got.status_code == 200 and got.mimetype == "text/html"
    html = got.get_data(as_text=True)
    assert "Nyheter om bredband i Åsele och Dorotea." in html
    for personal in ("__NL_", "/u/", "/p/"):
        assert personal not in html
    check_headers(got)
    assert "style-src 'unsafe-inline'" in got.headers["Content-Security-Policy"]
    assert got.headers["Cache-Control"].startswith("public")


def test_unknown_or_malformed_months_are_404(web):
    client, site = web
    archive(site, *ISSUES)
    reference = client.get("/u/nonsense").data
    for url in ("/arkiv/2026-02", "/arkiv/2026-13", "/arkiv/26-01", "/arkiv/2026-1",
                "/arkiv/2026-01.html", "/arkiv/feed.rss"):
        got = client.get(url)
        assert got.status_code == 404 and got.data == reference, url


def test_the_atom_feed_is_valid_and_lists_every_issue(web):
    client, site = web
    archive(site, *ISSUES)
    got = client.get("/arkiv/feed.atom")
    assert got.status_code == 200 and got.mimetype == "application/atom+xml"
    feed = ET.fromstring(got.data)
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}id").text == f"{BASE}/arkiv/feed.atom"
    assert "nyhetsbrev" in feed.find(f"{ATOM}title").text
    assert feed.find(f"{ATOM}updated").text == "2026-03-15T08:30:00Z"
    assert feed.find(f"{ATOM}author/{ATOM}name").text
    rels = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert rels == {"self": f"{BASE}/arkiv/feed.atom", "alternate": f"{BASE}/arkiv/"}
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}id").text for e in entries] == [
        f"{BASE}/arkiv/2026-03", f"{BASE}/arkiv/2026-01", f"{BASE}/arkiv/2025-12"]
    first = entries[0]
    assert first.find(f"{ATOM}title").text == "Nyhetsbrev mars <b>extra</b>"
    assert first.find(f"{ATOM}link").get("href") == f"{BASE}/arkiv/2026-03"
    assert first.find(f"{ATOM}updated").text == "2026-03-15T08:30:00Z"
    assert first.find(f"{ATOM}summary").text == "Remissvar om kapitalförsörjning"
    assert entries[2].find(f"{ATOM}summary") is None
    for entry in entries:  # RFC 4287: every entry has id, title, updated and a link
        for tag in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM}{tag}") is not None


def test_the_real_web_version_of_the_sample_issue_has_no_personal_tokens(web):
    from newsletter.content import load_issue
    from newsletter.render import IssueRenderer

    client, site = web
    issue = load_issue(site.settings, "2026-12")
    rendered = IssueRenderer(site.settings, issue).web_version()
    with site.transaction() as session:
        session.add(ArchivedIssue(month="2026-12", subject=issue.subject,
                                  preheader=issue.preheader, html=rendered.html,
                                  text=rendered.text, published_at=datetime.now(UTC)))
    got = client.get("/arkiv/2026-12")
    assert got.status_code == 200
    html = got.get_data(as_text=True)
    assert issue.subject in html
    for personal in ("__NL_", "/u/", "/p/"):
        assert personal not in html
    assert "<script" not in html.lower()
    assert issue.subject in client.get("/arkiv/").get_data(as_text=True)
