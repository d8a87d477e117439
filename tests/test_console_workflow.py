"""The workflow in the console (issue 11, item 5): review and approval on the issue page, the
diff after an edit, scheduling in Stockholm time, the worker sending at that time, /utskick
with pause and resume, /webbinarier, and the worker's heartbeat on the dashboard. Real site,
real SMTP server on 127.0.0.1, the core's worker round with an injected time."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from newsletter import db, heartbeat, schedule
from newsletter.console.context import background_of
from newsletter.models import Event, Mailing, MailingStatus, Registration
from newsletter.worker import Worker

from .console_support import STAFF, csrf_for, start_console, stop_console
from .helpers import future_start, require_approval, seed

MONTH = "2026-12"
ISSUE = f"/nummer/{MONTH}"
ITEM = "07-kommuninvest-rantebesked"
ZONE = ZoneInfo("Europe/Stockholm")
PEOPLE = 6
EVERYONE = [f"p{i:03d}@example.se" for i in range(PEOPLE)]


@pytest.fixture
def flow(site, smtp_server, monkeypatch):
    """The console of a site that requires approval, six members, mail to smtp_server."""
    require_approval(site)
    seed(site, PEOPLE)
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", smtp_server.url)
    console = start_console(site)
    yield console
    stop_console(console)


def _post(client, path: str, page: str = ISSUE, **data):
    return client.post(path, data={"csrf": csrf_for(client, page), **data})


def _state(client, page: str = ISSUE) -> str:
    html = client.get(page).text
    return re.search(r'id="arbetsflode-tillstand">([^<]+)<', html).group(1)


def _error(html: str) -> str:
    return re.search(r'id="arbetsflode-fel">([^<]+)<', html).group(1)


def _mailings(site) -> list[Mailing]:
    with site.transaction() as session:
        return list(session.scalars(select(Mailing).order_by(Mailing.id)))


def _worker(console) -> Worker:
    settings = console.site.settings
    engine = db.make_engine(settings.db_url)
    return Worker(settings, db.session_factory(engine),
                  db.session_factory(db.writer(engine)), worker_id="test:1")


def _edit_item(site) -> None:
    path = site.root / "issues" / MONTH / "items" / f"{ITEM}.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + "\n\nRäntan sänks med en halv procentenhet.\n",
                    encoding="utf-8")


def test_compose_review_send_back_approve_edit_schedule_and_the_worker_sends(flow,
                                                                            smtp_server):
    console, site = flow, flow.site
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    assert _state(redaktor) == "utkast"

    # The redaktör submits; may neither approve nor send (the route's role).
    assert _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar").status_code == 303
    assert _state(redaktor) == "på granskning"
    assert _post(redaktor, f"{ISSUE}/godkann").status_code == 403
    assert _post(redaktor, f"{ISSUE}/skicka", segment="medlemmar", when="now").status_code == 403
    assert "Skicka eller schemalägg" not in redaktor.get(ISSUE).text

    # A granskare who submitted it cannot approve it: the core's reason is shown.
    admin = console.signed_in("admin")
    assert _post(admin, f"{ISSUE}/granskning", segment="medlemmar").status_code == 303
    refused = _post(admin, f"{ISSUE}/godkann")
    assert refused.status_code == 409
    assert "admin@example.se" in _error(refused.text) and "annan granskare" in _error(
        refused.text)
    assert _state(admin) == "på granskning"

    # Another granskare sends it back with a comment; it is a draft again.
    response = _post(granskare, f"{ISSUE}/skicka-tillbaka", comment="Länken saknas i ledaren")
    assert response.status_code == 303
    page = redaktor.get(ISSUE).text
    assert _state(redaktor) == "utkast" and "Länken saknas i ledaren" in page
    assert _post(granskare, f"{ISSUE}/skicka-tillbaka", comment=" ").status_code == 400

    # Submitted again by the redaktör, approved by the granskare.
    assert _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar").status_code == 303
    assert _post(granskare, f"{ISSUE}/godkann").status_code == 303
    assert _state(granskare) == "godkänt"

    # An edit voids the approval, visibly, with the diff; a send is refused with the reason.
    _edit_item(site)
    page = granskare.get(ISSUE).text
    assert _state(granskare) == "ändrad efter godkännandet"
    diff = re.search(r'<pre class="diff"[^>]*>(.*?)</pre>', page, re.DOTALL).group(1)
    assert '<span class="add">+Räntan sänks med en halv procentenhet.</span>' in diff
    refused = _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="now")
    assert refused.status_code == 409
    assert "är ändrad efter godkännandet" in _error(refused.text)
    assert _mailings(site) == []

    # Submitted and approved again; scheduled five minutes ahead, in Stockholm time.
    assert _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar").status_code == 303
    assert _post(granskare, f"{ISSUE}/godkann").status_code == 303
    at = (console.clock() + timedelta(minutes=5)).astimezone(ZONE).replace(second=0,
                                                                           microsecond=0)
    response = _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="at",
                     at=at.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 303, response.text
    assert response.headers["Location"].endswith("?steg=schemalagt#arbetsflode")
    [mailing] = _mailings(site)
    assert mailing.status == MailingStatus.SCHEDULED
    assert mailing.scheduled_at == at
    assert _state(granskare) == "schemalagt"
    assert not smtp_server.copies()  # the request sent nothing

    # The worker, a minute early: nothing; at the minute: everyone, once.
    worker = _worker(console)
    assert worker.round(now=at - timedelta(minutes=1)).started == []
    assert not smtp_server.copies()
    report = worker.round(now=at + timedelta(seconds=5))
    assert report.started == [mailing.id] and not report.errors
    assert smtp_server.wait_for(PEOPLE, timeout=15)
    assert sorted(smtp_server.copies().elements()) == EVERYONE
    assert _state(granskare) == "skickat"
    with site.transaction() as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(
            Event.kind.like("console-%")).order_by(Event.id))]
        assert kinds.count("console-review-approved") == 2
        assert "console-mailing-scheduled" in kinds


def test_a_time_the_clocks_skip_is_refused_and_a_past_time_too(flow):
    console = flow
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar")
    _post(granskare, f"{ISSUE}/godkann")
    year = console.clock().year + 1
    skipped = _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="at",
                    at=f"{year}-03-{_last_sunday(year, 3):02d}T02:30")
    assert skipped.status_code == 400
    assert "finns inte" in _error(skipped.text) or "does not exist" in _error(skipped.text)
    past = _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="at",
                 at="2020-01-01T08:00")
    assert past.status_code == 400
    assert _mailings(console.site) == []


def _last_sunday(year: int, month: int) -> int:
    last = monthrange(year, month)[1]
    return max(d for d in range(last - 6, last + 1) if date(year, month, d).weekday() == 6)


def test_pause_and_resume_on_utskick(flow, smtp_server):
    console, site = flow, flow.site
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar")
    _post(granskare, f"{ISSUE}/godkann")
    at = (console.clock() + timedelta(minutes=3)).astimezone(ZONE)
    _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="at",
          at=at.strftime("%Y-%m-%dT%H:%M"))
    [mailing] = _mailings(site)
    listing = redaktor.get("/utskick").text
    assert 'data-live="1"' in listing and "schemalagt" in listing
    # The worker's first step (the start: recipients fixed), then a pause before any send.
    with site.transaction() as session:
        schedule.start(session, site.settings, mailing.id, now=at + timedelta(minutes=1))
    page = redaktor.get(f"/utskick/{mailing.id}").text
    assert re.search(r'data-count="waiting">6<', page) and "Pausa" not in page  # redaktör
    assert _post(redaktor, f"/utskick/{mailing.id}/pausa", f"/utskick/{mailing.id}"
                 ).status_code == 403
    response = _post(granskare, f"/utskick/{mailing.id}/pausa", f"/utskick/{mailing.id}")
    assert response.status_code == 303
    assert "pausat" in granskare.get(f"/utskick/{mailing.id}").text
    report = _worker(console).round(now=at + timedelta(minutes=2))
    assert report.sent == [] and not smtp_server.copies()  # paused: the worker leaves it
    # Resume: the console's background sender and a worker share it, one copy each.
    response = _post(granskare, f"/utskick/{mailing.id}/fortsatt", f"/utskick/{mailing.id}")
    assert response.status_code == 303
    _worker(console).round(now=at + timedelta(minutes=3))
    assert background_of(console.app).idle(20)
    assert smtp_server.wait_for(PEOPLE, timeout=15)
    assert sorted(smtp_server.copies().elements()) == EVERYONE
    page = granskare.get(f"/utskick/{mailing.id}").text
    assert re.search(r'data-count="sent">6<', page) and "klart" in page
    assert 'data-live="1"' not in page
    # A done mailing cannot be cancelled: the ledger's reason, nothing changed.
    refused = _post(granskare, f"/utskick/{mailing.id}/avbryt", f"/utskick/{mailing.id}")
    assert refused.status_code == 409 and "inte schemalagt" in refused.text


def test_cancel_a_scheduled_mailing(flow):
    console, site = flow, flow.site
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar")
    _post(granskare, f"{ISSUE}/godkann")
    at = (console.clock() + timedelta(hours=2)).astimezone(ZONE)
    _post(granskare, f"{ISSUE}/skicka", segment="medlemmar", when="at",
          at=at.strftime("%Y-%m-%dT%H:%M"))
    [mailing] = _mailings(site)
    response = _post(granskare, f"/utskick/{mailing.id}/avbryt", f"/utskick/{mailing.id}")
    assert response.status_code == 303
    assert _mailings(site)[0].status == MailingStatus.CANCELLED
    assert _state(granskare) == "godkänt"  # the approval stays: it can be scheduled again


def test_forged_and_cross_site_posts_are_refused(flow):
    console = flow
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    _post(redaktor, f"{ISSUE}/granskning", segment="medlemmar")
    for path in (f"{ISSUE}/godkann", f"{ISSUE}/skicka", "/utskick/1/pausa"):
        assert granskare.post(path, data={"segment": "medlemmar"}).status_code == 403
        assert granskare.post(path, data={"csrf": "0" * 64}).status_code == 403
        token = csrf_for(granskare, ISSUE)
        assert granskare.post(path, data={"csrf": token}, headers={
            "Origin": "https://evil.example.org", "Sec-Fetch-Site": "cross-site"}
        ).status_code == 403
    assert _state(granskare) == "på granskning"


def test_the_dashboard_shows_when_the_worker_was_seen(flow):
    console, site = flow, flow.site
    client = console.signed_in("redaktor")
    assert "Ingen arbetare har körts" in client.get("/").text
    with site.transaction() as session:
        heartbeat.beat(session, "host:1", console.clock() - timedelta(seconds=12))
    assert "Arbetaren sågs för 12 s sedan." in client.get("/").text
    console.clock.advance(minutes=10)
    page = client.get("/").text
    assert "Arbetaren sågs för 10 min sedan:" in page and 'class="error" id="arbetaren"' in page


def test_webinars_create_edit_announce_through_approval_cancel_and_follow_up(flow,
                                                                            smtp_server):
    console, site = flow, flow.site
    redaktor, granskare = console.signed_in("redaktor"), console.signed_in("granskare")
    start = future_start(20).replace(" ", "T")
    form = {"title": "Bredband på landsbygden", "start": start, "duration": "60",
            "join_url": "https://teams.example.se/l/abc", "area": "digitalisering",
            "capacity": "2", "description": "Hur **Åsele** byggde ut fibern."}
    bad = _post(redaktor, "/webbinarier", "/webbinarier", **{**form, "join_url": "ftp://x"})
    assert bad.status_code == 400 and 'id="w-join_url-fel"' in bad.text
    response = _post(redaktor, "/webbinarier", "/webbinarier", **form)
    assert response.status_code == 303
    page_url = response.headers["Location"].split("?")[0]
    assert page_url == "/webbinarier/bredband-pa-landsbygden"
    assert "Bredband på landsbygden" in redaktor.get("/webbinarier").text

    # Announce through approval: the redaktör submits, the granskare approves and sends.
    assert _post(redaktor, f"{page_url}/granskning", page_url,
                 segment="kommunchefer").status_code == 303
    assert _post(redaktor, f"{page_url}/skicka", page_url, segment="kommunchefer",
                 when="now").status_code == 403
    refused = _post(granskare, f"{page_url}/skicka", page_url, segment="kommunchefer",
                    when="now")
    assert refused.status_code == 409 and "granskning" in _error(refused.text)
    assert _post(granskare, f"{page_url}/godkann", page_url).status_code == 303
    response = _post(granskare, f"{page_url}/skicka", page_url, segment="kommunchefer",
                     when="now")
    assert response.status_code == 303, response.text
    assert background_of(console.app).idle(20)
    kommunchefer = [f"p{i:03d}@example.se" for i in range(0, PEOPLE, 3)]
    assert smtp_server.wait_for(len(kommunchefer), timeout=15)
    assert sorted(smtp_server.copies().elements()) == kommunchefer

    # Three register for two places: the page lists those registered and the waiting list.
    for address in ("p000@example.se", "p001@example.se", "p002@example.se"):
        site.cli("webinar", "register", "bredband-pa-landsbygden", address)
    page = redaktor.get(page_url).text
    registered = re.search(r'id="lista-registered">(.*?)</ol>', page, re.DOTALL).group(1)
    waiting = re.search(r'id="lista-waitlisted">(.*?)</ol>', page, re.DOTALL).group(1)
    assert "p000@example.se" in registered and "p001@example.se" in registered
    assert "p002@example.se" in waiting

    # Edit: a third place moves the first on the waiting list up.
    response = _post(redaktor, page_url, page_url, **{**form, "capacity": "3"})
    assert response.status_code == 303
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Registration).where(
            Registration.status == "registered")) == 3

    # Cancel with the staff's own message (a granskare's), then no follow-up.
    assert _post(redaktor, f"{page_url}/installa", page_url).status_code == 403
    before = len(smtp_server.copies())
    response = _post(granskare, f"{page_url}/installa", page_url,
                     message="Vi återkommer med ett nytt datum i vår.")
    assert response.status_code == 303
    assert background_of(console.app).idle(20)
    assert smtp_server.wait_for(before + 3, timeout=15)
    cancellation = smtp_server.parsed()[-1]
    assert "Vi återkommer med ett nytt datum i vår." in cancellation.get_body(
        ("plain",)).get_content()
    refused = _post(granskare, f"{page_url}/uppfoljning", page_url,
                    recording="https://play.example.se/1")
    assert refused.status_code == 400 and "inställt" in refused.text


def test_a_follow_up_sends_the_recording_to_those_registered(flow, smtp_server):
    console, site = flow, flow.site
    site.cli("webinar", "new", "--title", "Skolskjuts", "--start", future_start(3),
             "--duration", "45", "--join-url", "https://teams.example.se/l/x", "--slug",
             "skolskjuts")
    site.cli("webinar", "register", "skolskjuts", "p004@example.se")
    granskare = console.signed_in("granskare")
    response = _post(granskare, "/webbinarier/skolskjuts/uppfoljning", "/webbinarier/skolskjuts",
                     recording="https://play.example.se/skolskjuts")
    assert response.status_code == 303
    assert background_of(console.app).idle(20)
    assert smtp_server.wait_for(2, timeout=15)  # the confirmation, then the follow-up
    assert "https://play.example.se/skolskjuts" in smtp_server.parsed()[-1].get_body(
        ("plain",)).get_content()
    assert STAFF["granskare"] in str(_events(site, "console-webinar-followed-up"))


def _events(site, kind: str) -> list[dict]:
    with site.transaction() as session:
        return [e.detail for e in session.scalars(select(Event).where(Event.kind == kind))]
