"""/l/TOKEN on the real app: readers counted, scanners filtered, nothing that leads to a person.

A tracked issue is sent over SMTP to the test server; the scripted readers and scanners follow
the links in the messages they received, replaying tests/data/click_patterns.json.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, select

from newsletter import db, tracking
from newsletter.models import Mailing, TrackedLink
from newsletter.signing import make_token
from newsletter.web import clicks, create_app

from .helpers import (
    CLICK,
    PATTERNS,
    Clock,
    check_message,
    enable_tracking,
    replay,
    seed,
)

COUNTERS = ("clicks", "unique_clicks", "readers", "area_readers", "scanner_hits")


@pytest.fixture
def tracked(site, smtp_server):
    """(test client, app, site, {link number: /l/ path as received}) after a scripted send."""
    enable_tracking(site)
    seed(site, 12)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    msg = check_message(smtp_server.messages[0].data)
    html = msg.get_body(("html",)).get_content()
    paths = {}
    for token in CLICK.findall(html):
        number = int(token.split(".")[0].split("-")[1])
        paths[number] = f"/l/{token}"
    assert sorted(paths) == list(range(1, PATTERNS["links"] + 1))
    app = create_app(site.settings)
    app.testing = True
    return app.test_client(), app, site, paths


def counts(site) -> dict[str, int]:
    with db.transaction(site.sessions()) as s:
        rows = s.scalars(select(TrackedLink)).all()
        return {c: sum(getattr(r, c) for r in rows) for c in COUNTERS}


def per_link(site) -> dict[int, tuple[int, ...]]:
    with db.transaction(site.sessions()) as s:
        return {r.number: tuple(getattr(r, c) for c in COUNTERS)
                for r in s.scalars(select(TrackedLink))}


@pytest.mark.parametrize("scenario", PATTERNS["scenarios"], ids=lambda s: s["name"])
def test_recorded_request_patterns(tracked, scenario):
    client, app, site, paths = tracked
    clock = Clock()
    clicks.install(app, now=clock)
    before = counts(site)
    responses = replay(client, paths, scenario["requests"], clock)
    # Scanner or reader, everyone is sent on to the page: only the counting differs.
    assert {r.status_code for r in responses} == {302}
    after = counts(site)
    assert {c: after[c] - before[c] for c in COUNTERS} == scenario["expect"], scenario["note"]


def test_every_pattern_together_on_one_filter(tracked):
    """The scenarios one after another (an hour apart) on one filter add up to their sum."""
    client, app, site, paths = tracked
    clock = Clock()
    clicks.install(app, now=clock)
    for i, scenario in enumerate(PATTERNS["scenarios"]):
        shifted = [{**r, "t": r["t"] + 3600 * i} for r in scenario["requests"]]
        replay(client, paths, shifted, clock)
    total = counts(site)
    assert total == {c: sum(s["expect"][c] for s in PATTERNS["scenarios"]) for c in COUNTERS}


def test_a_click_goes_to_the_stored_url_and_counts_on_its_item(tracked):
    client, app, site, paths = tracked
    clicks.install(app, now=Clock())
    human = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}
    got = client.get(paths[8], headers=human, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert got.status_code == 302
    assert got.headers["Location"] == "https://www.regeringen.se/remisser/"
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["Referrer-Policy"] == "no-referrer"  # the token never leaks onwards
    assert not got.headers.getlist("Set-Cookie")
    links = per_link(site)
    assert links[8] == (1, 1, 1, 1, 0)
    assert all(v == (0, 0, 0, 0, 0) for n, v in links.items() if n != 8)
    # The same page in the other area (link 2: bostad) is another link with its own count.
    client.get(paths[2], headers=human, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert per_link(site)[2] == (1, 1, 0, 1, 0)  # the same reader, another area


def test_a_bad_token_gets_the_same_404_as_other_forged_tokens(tracked):
    client, _app, site, paths = tracked
    secret = site.settings.secret_key
    forged_unsubscribe = client.get("/u/abc.def")
    assert forged_unsubscribe.status_code == 404
    good = paths[3].removeprefix("/l/")
    value, _, sig = good.rpartition(".")
    mailing_id = int(value.split("-")[0])
    bad = [
        "garbage", good[:-1] + ("A" if good[-1] != "A" else "B"),  # altered signature
        f"{mailing_id}-4.{sig}",  # altered link number, old signature
        f"{mailing_id + 1}-3.{sig}",  # altered mailing
        tracking.click_token(b"another-secret-key-000000", mailing_id, 3),
        make_token(secret, "unsubscribe", value),  # a real signature for another purpose
        tracking.click_token(secret, mailing_id, 99),  # signed, but no such link
        tracking.click_token(secret, mailing_id + 1, 1),  # signed, but no such mailing
        f"{value}", f"{value}.",
    ]
    before = counts(site)
    for token in bad:
        got = client.get(f"/l/{token}")
        assert got.status_code == 404, token
        assert got.get_data() == forged_unsubscribe.get_data(), token
        assert "Location" not in got.headers
    assert counts(site) == before


def test_the_redirect_goes_nowhere_but_the_url_in_the_mailing(tracked):
    client, _app, site, paths = tracked
    with db.transaction(site.sessions()) as s:
        stored = {link.url for link in s.scalars(select(TrackedLink))}
    evil = "https://evil.example.org/phish"
    for path in paths.values():
        for suffix in (f"?url={evil}", f"?next={evil}&to={evil}", f"/..%2F{evil}", f"//{evil}"):
            got = client.get(path + suffix)
            if got.status_code == 302:
                assert got.headers["Location"] in stored
            else:
                assert got.status_code == 404
    # A URL that is in no mailing cannot be reached even with a valid signature of our own:
    # the token carries only numbers, and numbers only lead to stored URLs.
    with db.transaction(site.sessions()) as s:
        mailing = s.scalar(select(Mailing))
        s.add(TrackedLink(mailing_id=mailing.id, number=500, url="javascript:alert(1)"))
    token = tracking.click_token(site.settings.secret_key, mailing.id, 500)
    assert client.get(f"/l/{token}").status_code == 404


def test_tracking_switched_off_later_still_leads_on_but_counts_nothing(tracked):
    client, _app, site, paths = tracked
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("clicks = true",
                                                                 "clicks = false"))
    app = create_app(site.settings)
    got = app.test_client().get(paths[1], headers={"User-Agent": "Mozilla/5.0 Firefox/121.0"})
    assert got.status_code == 302 and got.headers["Location"] == "https://www.ragunda.se/"
    assert counts(site) == dict.fromkeys(COUNTERS, 0)


def _dump(site) -> dict[str, list[tuple]]:
    """Every row of every table, as text."""
    engine = db.make_engine(site.settings.db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: [tuple(map(str, row)) for row in conn.execute(table.select())]
                for name, table in meta.tables.items()}


def test_the_database_links_no_click_to_a_person(tracked):
    """After readers and scanners: nothing but counters changed, and nothing names a client."""
    client, app, site, paths = tracked
    clock = Clock()
    clicks.install(app, now=clock)
    before = _dump(site)
    files = sorted(p.name for p in site.root.rglob("*"))
    requests = [r for s in PATTERNS["scenarios"] for r in s["requests"]]
    replay(client, paths, requests, clock)
    after = _dump(site)
    assert sorted(p.name for p in site.root.rglob("*")) == files  # no log, no other file
    assert {k: v for k, v in after.items() if k != "tracked_links"} == {
        k: v for k, v in before.items() if k != "tracked_links"}
    assert len(after["tracked_links"]) == len(before["tracked_links"])
    everything = json.dumps(after, ensure_ascii=False)
    for req in requests:
        assert req["ip"] not in everything
        if req["ua"]:
            assert req["ua"] not in everything
    # The click counters are bare numbers; the rest of each row is what was frozen at send time.
    for old, new in zip(sorted(before["tracked_links"]), sorted(after["tracked_links"]),
                        strict=True):
        assert old[:7] == new[:7]
        assert all(re.fullmatch(r"\d+", value) for value in new[7:])
    with db.transaction(site.sessions()) as s:
        assert s.scalar(select(TrackedLink.clicks).where(TrackedLink.number == 2)) > 0


def test_a_scanner_unmasked_later_takes_back_only_its_own_clicks(tracked):
    client, app, site, paths = tracked
    clock = Clock()
    clicks.install(app, now=clock)
    edge = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0")
    reader = {"headers": {"User-Agent": edge}, "environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
    scanner = {"headers": {"User-Agent": edge}, "environ_base": {"REMOTE_ADDR": "40.94.1.1"}}
    client.get(paths[1], **reader)
    client.get(paths[1], **scanner)
    clock.now += timedelta(seconds=2)
    client.get(paths[2], **scanner)
    assert counts(site)["clicks"] == 3
    clock.now += timedelta(seconds=2)
    client.get(paths[3], **scanner)
    links = per_link(site)
    assert links[1] == (1, 1, 1, 1, 1) and links[2] == (0, 0, 0, 0, 1)
    assert links[3] == (0, 0, 0, 0, 1)

