"""The preferences page /p/TOKEN: areas, pause, resume, unsubscribe and coming back."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter import links, preferences
from newsletter.events import is_suppressed, suppress
from newsletter.models import Person, PersonArea, Suppression

from .helpers import ANNA, BERTIL, SAME_SITE, check_page, csrf_of, events, person, snapshot, token


def post(client, site, data: dict, *, email: str = ANNA):
    url = f"/p/{token(site, links.PREFERENCES, email)}"
    form = csrf_of(client.get(url).get_data(as_text=True))
    return url, client.post(url, data={"csrf": form, **data}, headers=SAME_SITE)


def stored_areas(site, email: str = ANNA) -> set[str]:
    with site.transaction() as session:
        pid = session.scalar(select(Person.id).where(Person.email == email))
        return set(session.scalars(select(PersonArea.area).where(PersonArea.person_id == pid)))


def test_the_page_lists_the_areas_by_their_swedish_names_in_order(web):
    client, site = web
    got = client.get(f"/p/{token(site, links.PREFERENCES)}")
    check_page(got)
    page = got.get_data(as_text=True)
    names = [a.name for a in site.settings.areas]
    positions = [page.index(name) for name in names]
    assert positions == sorted(positions)
    assert page.count('type="checkbox"') == len(names)
    assert page.count(" checked") == len(names) + 1  # every area (no rows) and the 1-month pause
    assert "Bredbandsutbyggnad, mobiltäckning och digitalisering" in page


def test_choosing_areas_stores_them_logs_it_and_confirms_after_a_redirect(web):
    client, site = web
    url, got = post(client, site, {"action": "omraden", "area": ["bostad", "infrastruktur"]})
    assert got.status_code == 303
    assert got.headers["Location"] == f"{url}?sparat=omraden"
    assert stored_areas(site) == {"bostad", "infrastruktur"}
    assert stored_areas(site, BERTIL) == set()
    logged = events(site, "preferences")
    assert [e.detail for e in logged] == [
        {"change": "areas", "areas": ["bostad", "infrastruktur"]}]
    page = client.get(got.headers["Location"]).get_data(as_text=True)
    assert "Dina val av områden är sparade." in page
    assert page.count(" checked") == 2 + 1

    # Choosing every area again means "everything": no rows.
    post(client, site, {"action": "omraden", "area": site.settings.area_slugs})
    assert stored_areas(site) == set()
    assert len(events(site, "preferences")) == 2
    # Saving the same choice again changes nothing and logs nothing.
    post(client, site, {"action": "omraden", "area": site.settings.area_slugs})
    assert len(events(site, "preferences")) == 2


def test_choosing_no_area_or_an_unknown_one_is_refused_and_changes_nothing(web):
    client, site = web
    before = snapshot(site)
    _, none = post(client, site, {"action": "omraden"})
    assert none.status_code == 400
    assert "Välj minst ett område" in none.get_data(as_text=True)
    check_page(none)
    _, unknown = post(client, site, {"action": "omraden", "area": ["bostad", "skatt"]})
    assert unknown.status_code == 400
    _, nonsense = post(client, site, {"action": "radera-allt"})
    assert nonsense.status_code == 400
    assert snapshot(site) == before


@pytest.mark.parametrize("months", [1, 3, 6])
def test_pause_for_a_while_and_resume(web, months):
    client, site = web
    _, got = post(client, site, {"action": "paus", "months": str(months)})
    assert got.status_code == 303
    paused_until = person(site).paused_until
    # The site's day, as the page counts it: in Stockholm it is already tomorrow after 23.00 UTC.
    today = datetime.now(ZoneInfo(site.settings.organisation.timezone)).date()
    assert paused_until == preferences.add_months(today, months)
    assert 28 * months <= (paused_until - today).days <= 31 * months + 1
    page = client.get(got.headers["Location"]).get_data(as_text=True)
    assert "Utskicken är pausade" in page and "Avsluta pausen nu" in page

    _, resumed = post(client, site, {"action": "aterupptaget"})
    assert resumed.status_code == 303 and person(site).paused_until is None
    assert [e.detail["change"] for e in events(site, "preferences")] == ["paused", "resumed"]
    assert events(site, "preferences")[0].detail["until"] == paused_until.isoformat()


def test_a_pause_length_not_offered_is_refused(web):
    client, site = web
    before = snapshot(site)
    for months in ("2", "120", "-1", "", "tre"):
        _, got = post(client, site, {"action": "paus", "months": months})
        assert got.status_code == 400
    assert snapshot(site) == before


def test_unsubscribe_from_everything_and_come_back(web):
    client, site = web
    _, got = post(client, site, {"action": "avregistrerad"})
    assert got.status_code == 303
    assert person(site).status == "unsubscribed"
    with site.transaction() as session:
        assert is_suppressed(session, site.settings.secret_key, ANNA)
    page = client.get(got.headers["Location"]).get_data(as_text=True)
    assert "Du är avregistrerad" in page and "Prenumerera igen" in page
    assert 'type="checkbox"' not in page

    _, back = post(client, site, {"action": "prenumererar"})
    assert back.status_code == 303
    assert person(site).status == "active"
    with site.transaction() as session:
        assert not is_suppressed(session, site.settings.secret_key, ANNA)
    assert [e.detail for e in events(site, "unsubscribed")] == [{"source": "preferences"}]
    assert [e.detail for e in events(site, "resubscribed")] == [{"source": "preferences"}]


def test_an_address_suppressed_for_a_complaint_cannot_come_back_from_the_web(web):
    client, site = web
    with site.transaction() as session:
        anna = session.scalar(select(Person).where(Person.email == ANNA))
        anna.status = "unsubscribed"
        suppress(session, site.settings.secret_key, ANNA, "complaint")
    _, got = post(client, site, {"action": "prenumererar"})
    assert got.status_code == 409
    assert person(site).status == "unsubscribed"
    with site.transaction() as session:
        assert session.scalar(select(Suppression.reason)) == "complaint"


def test_the_event_log_holds_no_personal_data(web):
    client, site = web
    post(client, site, {"action": "omraden", "area": ["kapital"]})
    post(client, site, {"action": "paus", "months": "3"})
    post(client, site, {"action": "aterupptaget"})
    post(client, site, {"action": "avregistrerad"})
    post(client, site, {"action": "prenumererar"})
    details = json.dumps([e.detail for kind in ("preferences", "unsubscribed", "resubscribed")
                          for e in events(site, kind)])
    assert len(json.loads(details)) == 5
    for secret in (ANNA, "Anna", "Andersson", person(site).public_id):
        assert secret not in details


def test_add_months_keeps_to_the_calendar():
    assert preferences.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert preferences.add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert preferences.add_months(date(2027, 11, 15), 3) == date(2028, 2, 15)
