"""/inkorg (issue 13 item 3): the intake inbox in the console, on entries fetched over real
HTTPS from 127.0.0.1 (feed_server.py); accepted items read back by the CLI; "fetch now" left
to the console's background sender, never done in the request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from newsletter import intake, remisser
from newsletter.console.context import background_of
from newsletter.models import (
    ArchivedIssue,
    EntryStatus,
    Event,
    IntakeEntry,
    IntakeFeed,
    Remiss,
    RemissState,
    SiteMeta,
)

from .console_support import Console, csrf_for, start_console, stop_console
from .feed_server import FeedServer
from .helpers import ca_env, configure

ROAD = "Effektivare organisering och genomförande av statlig väg och järnväg"
FILM = "Publiken i fokus – reformer för ett starkare filmland"
EQUALISATION = ("Remiss av promemorian Justerad beräkning av administration i kostnadsutjämningen "
                "för kommuner")
PLAN = "Remiss av Trafikverkets förslag till nationell plan för transportinfrastrukturen 2026–2037"
LABOUR = "Remiss av SOU 2025:74 Ny reglering för den arbetsmarknadspolitiska verksamheten"


@pytest.fixture
def server(certs) -> Iterator[FeedServer]:
    with FeedServer(certs.server) as s:
        s.fixture("/sou", "sou.rss")
        s.fixture("/remisser", "remisser.rss")
        yield s


@pytest.fixture
def inbox(site, server, certs, monkeypatch) -> Iterator[Console]:
    """The console of a site whose feeds (sou, remisser) were fetched once by the CLI."""
    configure(site, server, {"sou": ("/sou", "utredning"), "remisser": ("/remisser", "remiss")})
    monkeypatch.setenv("NEWSLETTER_INTAKE_CA_FILE", str(certs.ca_file))
    site.cli("intake", "fetch", env=ca_env(certs))
    console = start_console(site)
    yield console
    stop_console(console)


def _entries(site) -> dict[str, IntakeEntry]:
    with site.transaction() as session:
        return {e.title: e for e in session.scalars(select(IntakeEntry))}


def _remiss(site, title: str) -> Remiss:
    with site.transaction() as session:
        return session.scalars(select(Remiss).join(IntakeEntry)
                               .where(IntakeEntry.title == title)).one()


def _next_issue(site) -> str:
    with site.transaction() as session:
        return remisser.next_issue(session, site.settings, date.today())


def _post(client, path: str = "/inkorg", **data):
    return client.post(path, data={"csrf": csrf_for(client, "/inkorg"), **data})


def test_new_entries_are_grouped_by_suggested_area_with_score_and_why(inbox):
    page = inbox.signed_in("redaktor").get("/inkorg")
    assert page.status_code == 200
    html = page.text
    got = _entries(inbox.site)
    road, film = got[ROAD], got[FILM]
    infra = html[html.index('id="omrade-infrastruktur"'):]
    infra = infra[:infra.index("</fieldset>")]
    assert ROAD in infra and f"{road.score:.2f}" in infra and "järnväg" in infra
    uncategorised = html[html.index('id="omrade-okategoriserad"'):]
    assert FILM in uncategorised[:uncategorised.index("</fieldset>")]
    select_film = re.search(rf'<select id="area-{film.id}".*?</select>', html, re.DOTALL).group(0)
    assert '<option value="" selected>' in select_film  # okategoriserad is not forced
    select_road = re.search(rf'<select id="area-{road.id}".*?</select>', html, re.DOTALL).group(0)
    assert 'value="infrastruktur" selected' in select_road
    order = [m.group(1) for m in re.finditer(r'<fieldset class="card" id="omrade-([a-z]+)"',
                                             html)]
    assert order[-1] == "okategoriserad"
    areas = [a.slug for a in inbox.site.settings.areas]
    assert [a for a in areas if a in order] == order[:-1]  # the year's order


def test_bulk_accept_writes_items_each_in_its_chosen_area_into_the_next_issue(inbox):
    client = inbox.signed_in("redaktor")
    page = client.get("/inkorg").text
    month = _next_issue(inbox.site)
    assert re.search(rf'<option value="{month}" selected>', page)
    got = _entries(inbox.site)
    road, film = got[ROAD], got[FILM]
    response = _post(client, action="accept", month=month, entry=[road.id, film.id],
                     **{f"area-{road.id}": "infrastruktur", f"area-{film.id}": "omvarld"})
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == f"/inkorg?meddelande=antagna&antal=2&nummer={month}"
    after = _entries(inbox.site)
    assert after[ROAD].status == after[FILM].status == EntryStatus.ACCEPTED
    assert (after[ROAD].area, after[FILM].area) == ("infrastruktur", "omvarld")
    listed = inbox.site.cli("items", "list", "--issue", month).stdout
    assert ROAD in listed and FILM in listed
    assert ROAD not in client.get("/inkorg").text  # no longer new
    with inbox.site.transaction() as session:
        event = session.scalars(select(Event).where(Event.kind == "console-intake-accepted")).one()
    assert sorted(event.detail["entries"]) == sorted([road.id, film.id])
    assert event.detail["month"] == month and event.detail["staff"] == "redaktor@example.se"


def test_the_default_issue_is_the_next_one_not_yet_sent(inbox):
    this = _next_issue(inbox.site)
    with inbox.site.transaction() as session:
        session.add(ArchivedIssue(month=this, subject="Skickat", preheader="", html="", text="",
                                  manifest={}))
    page = inbox.signed_in("redaktor").get("/inkorg").text
    following = (date.fromisoformat(f"{this}-01") + timedelta(days=32)).strftime("%Y-%m")
    assert re.search(rf'<option value="{following}" selected>', page)
    assert f'<option value="{this}"' not in page


def test_each_entry_fails_alone_with_its_reason(inbox):
    client = inbox.signed_in("redaktor")
    got = _entries(inbox.site)
    road, film = got[ROAD], got[FILM]
    month = _next_issue(inbox.site)
    response = _post(client, action="accept", month=month, entry=[road.id, film.id],
                     **{f"area-{road.id}": "infrastruktur"})  # none chosen for the film
    assert response.status_code == 200  # one was done, and committed
    results = response.text[response.text.index('id="resultat"'):]
    assert f"/nummer/{month}/nyhet/" in results and FILM in results
    after = _entries(inbox.site)
    assert after[ROAD].status == EntryStatus.ACCEPTED and after[FILM].status == EntryStatus.NEW
    # Accepting the same one again: it is not new any more, and nothing is written twice.
    items = sorted((inbox.site.root / "issues" / month / "items").iterdir())
    again = _post(client, action="accept", month=month, entry=[road.id],
                  **{f"area-{road.id}": "infrastruktur"})
    assert again.status_code == 400
    assert sorted((inbox.site.root / "issues" / month / "items").iterdir()) == items
    assert _post(client, action="accept", month=month).status_code == 400  # nothing ticked
    assert _post(client, action="accept", month="nästa", entry=[film.id],
                 **{f"area-{film.id}": "omvarld"}).status_code == 400


def test_bulk_reject_declines_a_remiss_among_them(inbox):
    client = inbox.signed_in("redaktor")
    got = _entries(inbox.site)
    ids = [got[FILM].id, got[LABOUR].id]
    response = _post(client, action="reject", entry=ids)
    assert response.headers["Location"] == "/inkorg?meddelande=avvisade&antal=2"
    after = _entries(inbox.site)
    assert after[FILM].status == after[LABOUR].status == EntryStatus.REJECTED
    assert _remiss(inbox.site, LABOUR).state == RemissState.DECLINED
    assert LABOUR not in client.get("/inkorg").text


def test_remisser_soonest_first_an_answer_date_set_by_hand_and_declining(inbox):
    client = inbox.signed_in("redaktor")
    html = client.get("/inkorg").text
    section = html[html.index('id="remisser"'):]
    positions = [section.index(t) for t in (EQUALISATION, LABOUR)]
    assert positions == sorted(positions)  # a date (4 februari 2026) before none
    assert "4 februari 2026" in section
    labour = _entries(inbox.site)[LABOUR]
    response = _post(client, f"/inkorg/remiss/{labour.id}", answer_by="2026-01-12")
    assert response.status_code == 303
    remiss = _remiss(inbox.site, LABOUR)
    assert (remiss.answer_by, remiss.answer_by_source) == (date(2026, 1, 12), "hand")
    section = client.get("/inkorg").text
    section = section[section.index('id="remisser"'):]
    assert section.index(LABOUR) < section.index(EQUALISATION)
    assert inbox.site.cli("remisser", "list").stdout.splitlines()[0].count("arbetsmarknads")
    assert _post(client, f"/inkorg/remiss/{labour.id}", answer_by="12/1").status_code == 400
    assert _post(client, f"/inkorg/remiss/{labour.id}").status_code == 400
    assert _post(client, f"/inkorg/remiss/{labour.id}", state="answered").status_code == 400
    assert _post(client, f"/inkorg/remiss/{_entries(inbox.site)[ROAD].id}",
                 answer_by="2026-01-12").status_code == 400  # not a remiss
    assert _post(client, "/inkorg/remiss/99999", answer_by="2026-01-12").status_code == 404
    assert _post(client, f"/inkorg/remiss/{labour.id}", state="declined").status_code == 303
    assert _remiss(inbox.site, LABOUR).state == RemissState.DECLINED
    after = client.get("/inkorg").text
    assert LABOUR not in after[after.index('id="remisser"'):]


def test_fetch_now_answers_at_once_and_the_background_sender_fetches(inbox, server):
    server.route("/sou", b"", behaviour="hang")  # the request must not wait on this
    client = inbox.signed_in("redaktor")
    before = len(server.seen)
    started = time.monotonic()
    response = _post(client, "/inkorg/hamta")
    assert response.status_code == 303
    assert time.monotonic() - started < 1.0  # the feed's timeout is 1 s, its hang longer
    page = client.get(response.headers["Location"]).text
    assert 'role="status"' in page
    assert background_of(inbox.app).idle(30)
    assert len(server.seen) > before  # fetched, outside the request
    with inbox.site.transaction() as session:
        assert session.get(SiteMeta, intake.FETCH_REQUEST) is None  # taken
        states = {f.name: f for f in session.scalars(select(IntakeFeed))}
        kinds = [e.kind for e in session.scalars(select(Event))]
    assert states["sou"].last_error and states["remisser"].last_error is None
    assert "console-fetch-requested" in kinds
    feeds = client.get("/inkorg").text
    feeds = feeds[feeds.index('id="floden"'):]
    assert 'class="badge bad"' in feeds  # the hanging feed, with its reason


def test_a_fetch_asked_for_is_done_by_the_workers_next_round_too(site, server, certs,
                                                                monkeypatch):
    configure(site, server, {"sou": ("/sou", "utredning")})
    monkeypatch.setenv("NEWSLETTER_INTAKE_CA_FILE", str(certs.ca_file))
    settings = site.settings
    with site.transaction() as session:
        assert intake.fetch_due(session, settings, intake.utcnow())  # never fetched: due
        assert intake.fetch_due(session, settings, intake.utcnow()) == []  # not due again
        intake.request_fetch(session)
        session.commit()
        assert intake.fetch_requested(session) is not None
        assert [r.name for r in intake.fetch_due(session, settings, intake.utcnow())] == ["sou"]
        assert intake.fetch_requested(session) is None
        assert intake.fetch_if_requested(session, settings) is None  # nobody asked
