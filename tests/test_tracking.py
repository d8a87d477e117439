"""Click tracking at send time: which links are rewritten, the tokens, what a mailing stores."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import select

from newsletter import tracking
from newsletter.content import load_issue
from newsletter.errors import ConfigError
from newsletter.kinds.targeted import TargetedSource
from newsletter.models import Mailing, MailingVariant, Person, TrackedLink
from newsletter.outbox import creating
from newsletter.render import IssueRenderer
from newsletter.settings import load_settings
from newsletter.tracking import LinkMap, Target

from .helpers import (
    CLICK,
    TEST_ENV,
    check_message,
    enable_tracking,
    future_start,
    new_webinar,
    seed,
)

SECRET = b"test-secret-key-not-for-production"
BASE = "https://nyhetsbrev.example.se"
# --- the pure rewrite --------------------------------------------------------------------------

HTML = """<p><a href="https://nyhetsbrev.example.se/arkiv/2026-12">Läs i webbläsaren</a></p>
<ul><li><a href="#omrade-bostad">Bostad</a></li></ul>
<p>Ledare med <a href="https://www.regeringen.se/remisser/">en länk</a>.</p>
<h2 class="area-name" id="omrade-bostad" style="x">Bostad</h2>
<div><h3 class="title" style="y">Strandskyddet &amp; remissen</h3>
<p>Se <a href="https://example.org/a?x=1&amp;y=2" rel="noopener">detaljer</a></p>
<p class="more"><a href="https://www.regeringen.se/remisser/">Läs mer</a></p></div>
<h2 class="area-name" id="omrade-omvarld">Omvärld</h2>
<div><h3 class="title">Remisser i januari</h3>
<p class="more"><a href='https://www.regeringen.se/remisser/'>Läs mer</a></p></div>
<h2 class="area-name">Kommande webbinarier</h2>
<p><a href="https://nyhetsbrev.example.se/webinar/bredband">Bredband</a></p>
<p><a href="mailto:kansliet@example.se">Mejla</a>
<a href="__NL_PREFERENCES_URL__">Välj</a> · <a href="__NL_UNSUBSCRIBE_URL__">Avregistrera</a>
<a href="https://nyhetsbrev.example.se/u/abc.def">u</a> <a href="https://nyhetsbrev.example.se/">hem</a></p>
"""
TEXT = """Läs i webbläsaren: https://nyhetsbrev.example.se/arkiv/2026-12
Ledare med en länk (https://www.regeringen.se/remisser/).
Se detaljer (https://example.org/a?x=1&y=2)
Läs mer: https://www.regeringen.se/remisser/
Läs mer: https://www.regeringen.se/remisser/.
https://nyhetsbrev.example.se/webinar/bredband
Också https://www.regeringen.se/remisser/extra som är en annan sida.
Välj: __NL_PREFERENCES_URL__
"""
ITEMS = (Target("04-strandskyddet", "Strandskyddet & remissen", "bostad"),
         Target("18-remisser", "Remisser i januari", "omvarld"))
LINKS = LinkMap(ITEMS, {"https://www.regeringen.se/remisser/": ITEMS[0]})


def test_links_are_attributed_by_where_they_stand():
    located = LINKS.locate(HTML, BASE)
    assert located == [
        ("https://www.regeringen.se/remisser/", Target()),  # the editorial: no item
        ("https://example.org/a?x=1&y=2", ITEMS[0]),
        ("https://www.regeringen.se/remisser/", ITEMS[0]),
        ("https://www.regeringen.se/remisser/", ITEMS[1]),  # same page, the other area's item
        ("https://nyhetsbrev.example.se/webinar/bredband", Target()),
    ]


def test_rewrite_changes_only_trackable_links_and_keeps_the_rest_byte_for_byte():
    numbers = {key: n for n, key in enumerate(dict.fromkeys(LINKS.locate(HTML, BASE)), 1)}
    html, text = tracking.rewrite(HTML, TEXT, 7, LINKS, numbers, secret=SECRET, base_url=BASE)
    assert tracking.rewrite(HTML, TEXT, 7, LINKS, numbers, secret=SECRET, base_url=BASE) == (
        html, text)  # pure
    token = {n: tracking.click_token(SECRET, 7, n) for n in range(1, 6)}
    hrefs = re.findall(r"""href=["']([^"']*)["']""", html)
    assert hrefs == [
        "https://nyhetsbrev.example.se/arkiv/2026-12", "#omrade-bostad",
        f"{BASE}/l/{token[1]}", f"{BASE}/l/{token[2]}", f"{BASE}/l/{token[3]}",
        f"{BASE}/l/{token[4]}", f"{BASE}/l/{token[5]}",
        "mailto:kansliet@example.se", "__NL_PREFERENCES_URL__", "__NL_UNSUBSCRIBE_URL__",
        "https://nyhetsbrev.example.se/u/abc.def", "https://nyhetsbrev.example.se/"]
    # Outside the rewritten attributes nothing changed.
    assert re.sub(r"/l/[\w.-]+", "", html).count("href") == HTML.count("href")
    assert html.count(f"{BASE}/l/{token[2]}") == 1
    lines = text.splitlines()
    assert lines[0] == "Läs i webbläsaren: https://nyhetsbrev.example.se/arkiv/2026-12"
    assert lines[1] == f"Ledare med en länk ({BASE}/l/{token[1]})."
    assert lines[2] == f"Se detaljer ({BASE}/l/{token[2]})"
    assert lines[3] == f"Läs mer: {BASE}/l/{token[3]}"  # the k-th occurrence, as in the HTML
    assert lines[4] == f"Läs mer: {BASE}/l/{token[4]}."
    assert lines[5] == f"{BASE}/l/{token[5]}"
    assert lines[6] == "Också https://www.regeringen.se/remisser/extra som är en annan sida."
    assert lines[7] == "Välj: __NL_PREFERENCES_URL__"


def test_nothing_to_track_leaves_the_content_alone():
    html = '<a href="__NL_UNSUBSCRIBE_URL__">x</a><a href="https://nyhetsbrev.example.se/arkiv/">a</a>'
    assert LinkMap().locate(html, BASE) == []
    assert tracking.rewrite(html, "t", 1, LinkMap(), {}, secret=SECRET, base_url=BASE) == (
        html, "t")


def test_a_template_without_area_anchors_falls_back_to_the_url():
    html = '<p><a href="https://www.regeringen.se/remisser/">x</a><a href="https://b.se/">y</a></p>'
    assert LINKS.locate(html, BASE) == [("https://www.regeringen.se/remisser/", ITEMS[0]),
                                        ("https://b.se/", Target())]


def test_the_link_map_of_the_sample_issue(site):
    issue = load_issue(site.settings, "2026-12")
    links = LinkMap.from_items(issue.items)
    pts = links.by_url["https://www.pts.se/"]
    assert pts.item == "09-pts-mobiltackning" and pts.area == "digitalisering"
    html = IssueRenderer(site.settings, issue).render(
        IssueRenderer(site.settings, issue).all_key).html
    located = links.locate(html, BASE)
    assert [t.item for _u, t in located] == [
        i.id for a in site.settings.areas for i in issue.items_in(a.slug) if i.url]
    assert all(t.area == next(i.area for i in issue.items if i.id == t.item)
               for _u, t in located)


# --- tokens ------------------------------------------------------------------------------------

def test_a_token_names_a_mailing_and_a_link_and_nothing_else():
    token = tracking.click_token(SECRET, 42, 7)
    value, _, sig = token.rpartition(".")
    assert value == "42-7"
    assert len(base64.urlsafe_b64decode(sig)) == 18  # the HMAC, nothing more
    assert tracking.read_click_token(SECRET, token) == (42, 7)
    assert tracking.read_click_token(SECRET, "43-7." + sig) is None  # altered
    assert tracking.read_click_token(b"another-secret-key-0000", token) is None
    assert tracking.read_click_token(SECRET, tracking.make_token(SECRET, "unsubscribe", "42-7"))\
        is None
    assert tracking.read_click_token(SECRET, tracking.make_token(SECRET, "click", "x-1")) is None


# --- settings ----------------------------------------------------------------------------------

def test_tracking_is_off_by_default_and_validated(site):
    assert site.settings.tracking.clicks is False
    enable_tracking(site, scanner_links="4")
    assert site.settings.tracking.clicks is True
    assert site.settings.tracking.scanner_links == 4
    config = site.root / "newsletter.toml"
    for bad, key in [("clicks = true", 'clicks = "yes"'),
                     ("scanner_links = 4", "scanner_links = 1"),
                     ("scanner_seconds = 10", "scanner_seconds = -1")]:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(bad, key), encoding="utf-8")
        field = key.split(" ")[0]
        with pytest.raises(ConfigError, match=rf"newsletter\.toml: tracking\.{field}"):
            load_settings(site.root, env=TEST_ENV)
        result = site.cli("segments", "list", ok=False)
        assert result.exit_code == ConfigError.exit_code
        assert f"tracking.{field}" in result.stderr and "Traceback" not in result.output
        config.write_text(text, encoding="utf-8")


# --- a mailing ---------------------------------------------------------------------------------

def _links_in(message) -> tuple[list[str], list[str]]:
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return CLICK.findall(html), CLICK.findall(text)


def test_a_sent_issue_carries_the_same_click_links_for_everyone(site, smtp_server):
    enable_tracking(site)
    addresses = seed(site, 12)
    site.cli("contacts", "add", "p001@example.se", "--area", "bostad")  # another variant
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    assert sorted(smtp_server.copies()) == addresses
    with site.transaction() as s:
        mailing = s.scalar(select(Mailing))
        links = {link.number: link for link in s.scalars(select(TrackedLink))}
        persons = list(s.scalars(select(Person)))
    assert len(links) == 16 and mailing.meta["tracked_links"] == 16
    assert links[2].item == "04-strandskyddet-remiss" and links[2].area == "bostad"
    assert links[8].item == "18-remisser-i-januari" and links[8].area == "omvarld"
    assert links[2].url == links[8].url == "https://www.regeringen.se/remisser/"
    personal = {v for p in persons for v in (p.email, p.public_id, p.name, str(p.id))}
    seen: dict[str, tuple[str, ...]] = {}
    for received in smtp_server.messages:
        msg = check_message(received.data)
        in_html, in_text = _links_in(msg)
        assert in_html == in_text  # the text part goes through the same links, in order
        seen[received.rcpt_tos[0]] = tuple(in_html)
        for token in in_html:
            assert tracking.read_click_token(site.settings.secret_key, token) == (
                mailing.id, int(token.split(".")[0].split("-")[1]))
            assert not any(value in token for value in personal if len(value) > 3)
        html = msg.get_body(("html",)).get_content()
        # Personal links and "view in browser" are never rewritten.
        assert "/u/" in html and "/p/" in html and "/l/" not in msg["List-Unsubscribe"]
        assert "https://nyhetsbrev.example.se/arkiv/2026-12" in html
        assert "https://www.regeringen.se" not in html  # every item link goes through /l/
    # One token per link for every recipient, whatever their variant: nobody can be told apart.
    everything, bostad = seen["p000@example.se"], seen["p001@example.se"]
    assert set(seen.values()) == {everything, bostad} and len(everything) == 16
    assert bostad == tuple(t for t in everything if t in bostad) and len(bostad) == 3


def test_tracking_off_sends_the_links_as_they_are(site, smtp_server):
    seed(site, 6)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    msg = check_message(smtp_server.messages[0].data)
    assert _links_in(msg) == ([], [])
    assert "https://www.regeringen.se/remisser/" in msg.get_body(("html",)).get_content()
    with site.transaction() as s:
        assert s.scalars(select(TrackedLink)).all() == []


def test_a_targeted_mailing_counts_per_mailing_and_a_tiny_one_not_at_all(site):
    enable_tracking(site)
    seed(site, 9)  # 3 kommunchefer, 6 politiker
    settings = site.settings
    body = "Svara på [enkäten](https://enkat.example.se/bredband) senast fredag."

    def create(segment: str) -> int:
        with site.transaction() as s:
            source = TargetedSource(settings, "Enkät", body)
            return creating.create_mailing(s, settings, source, segment).mailing.id

    big, tiny = create("role:politiker"), create("role:kommunchef")
    with site.transaction() as s:
        links = s.scalars(select(TrackedLink)).all()
        assert [(x.mailing_id, x.url, x.item, x.area) for x in links] == [
            (big, "https://enkat.example.se/bredband", None, None)]
        tiny_html = s.scalar(select(MailingVariant.html).where(MailingVariant.mailing_id == tiny))
        assert "https://enkat.example.se/bredband" in tiny_html and "/l/" not in tiny_html


def test_the_tracked_links_table_holds_no_person():
    columns = {c.key for c in TrackedLink.__table__.columns}
    assert columns == {"id", "mailing_id", "number", "url", "item", "title", "area", "clicks",
                       "unique_clicks", "readers", "area_readers", "scanner_hits"}
    assert {fk.column.table.name for fk in TrackedLink.__table__.foreign_keys} == {"mailings"}


def test_a_test_copy_is_not_tracked(site):
    enable_tracking(site)
    seed(site, 6)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "test@example.se")
    with site.transaction() as s:
        assert s.scalars(select(TrackedLink)).all() == []


def test_a_webinar_announcement_counts_per_mailing_and_keeps_its_calendar(site, smtp_server):
    enable_tracking(site)
    seed(site, 9)
    new_webinar(site, future_start())
    site.cli("webinar", "announce", "bredband", "--to", "role:politiker", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    with site.transaction() as s:
        links = [(x.url, x.item, x.area) for x in s.scalars(select(TrackedLink))]
    assert links and all(item is None and area is None for _u, item, area in links)
    assert ("https://nyhetsbrev.example.se/webinar/bredband", None, None) in links
    msg = smtp_server.parsed()[0]
    assert _links_in(msg)[0]
    calendar = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert "/l/" not in calendar.get_content()  # attachments are never rewritten
