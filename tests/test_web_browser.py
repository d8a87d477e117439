"""`newsletter serve` for real, clicked through in headless Chromium at phone width (375 px)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter import links, preferences
from newsletter.content import load_issue
from newsletter.events import is_suppressed
from newsletter.models import ArchivedIssue, Event, Person
from newsletter.render import IssueRenderer

from .browser import chromium, require_chromium, screenshot_path
from .helpers import ANNA, BERTIL, person, serve_site, token

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def server(web) -> Iterator[tuple[str, object]]:
    """`newsletter serve` on a free loopback port of the test site: (base URL, site)."""
    require_chromium()
    _, site = web
    with serve_site(site, {}, threads=2) as (port, _proc):
        yield f"http://127.0.0.1:{port}", site


def _fits_the_phone(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("document.documentElement.lang") == "sv"


def _focus_is_visible(page, selector: str) -> None:
    page.focus(selector)
    outline = page.eval_on_selector(selector, "e => getComputedStyle(e).outlineStyle")
    # Focus set from script is shown by :focus-visible only for keyboard-style focus; tab to it.
    if outline == "none":
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        outline = page.eval_on_selector(selector, "e => getComputedStyle(e).outlineStyle")
    assert outline not in ("none", ""), selector


def test_unsubscribe_and_preferences_clicked_through_at_phone_width(server):
    base, site = server
    with site.transaction() as session:
        session.add(ArchivedIssue(
            month="2026-03", subject="Nyhetsbrev mars: bredband i Jämtland",
            preheader="Remissvar, bostäder och kapitalförsörjning", html="<p>Mars</p>",
            text="Mars", published_at=datetime(2026, 3, 12, 9, 0, tzinfo=UTC)))
        sample = load_issue(site.settings, "2026-12")
        rendered = IssueRenderer(site.settings, sample).web_version()
        session.add(ArchivedIssue(month="2026-12", subject=sample.subject, html=rendered.html,
                                  text=rendered.text, published_at=datetime.now(UTC)))
    unsubscribe = f"{base}/u/{token(site, links.UNSUBSCRIBE, ANNA)}"
    prefs = f"{base}/p/{token(site, links.PREFERENCES, BERTIL)}"

    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)

        # A scanner-like look first: opening the link changes nothing.
        page.goto(unsubscribe)
        assert page.inner_text("h1") == "Avregistrera dig"
        _fits_the_phone(page)
        _focus_is_visible(page, "button[type=submit]")
        page.screenshot(path=str(screenshot_path("web-unsubscribe.png")), full_page=True)
        assert person(site, ANNA).status == "active"

        page.get_by_role("button", name="Ja, avregistrera mig").click()
        page.wait_for_selector("text=Du är avregistrerad")
        assert page.url == unsubscribe
        _fits_the_phone(page)
        page.screenshot(path=str(screenshot_path("web-unsubscribed.png")), full_page=True)

        page.goto(prefs)
        _fits_the_phone(page)
        assert page.locator("input[type=checkbox]:checked").count() == len(site.settings.areas)
        page.screenshot(path=str(screenshot_path("web-preferences.png")), full_page=True)
        page.click("label[for=omrade-medlemmar]")
        page.get_by_label("Kapitalförsörjning").uncheck()
        page.uncheck("#omrade-arbetsmarknad")
        page.get_by_role("button", name="Spara mina val").click()
        page.wait_for_selector("text=Dina val av områden är sparade.")
        _fits_the_phone(page)
        page.screenshot(path=str(screenshot_path("web-preferences-saved.png")), full_page=True)

        page.get_by_label("3 månader").check()
        page.get_by_role("button", name="Pausa utskicken").click()
        page.wait_for_selector("text=Avsluta pausen nu")
        _fits_the_phone(page)
        page.screenshot(path=str(screenshot_path("web-preferences-paused.png")), full_page=True)

        page.goto(f"{base}/arkiv/")
        _fits_the_phone(page)
        assert "Mars 2026" in page.inner_text("main")  # capitalised by the stylesheet
        page.screenshot(path=str(screenshot_path("web-archive.png")), full_page=True)

        page.goto(f"{base}/arkiv/2026-12")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert "/u/" not in page.content() and "__NL_" not in page.content()
        page.screenshot(path=str(screenshot_path("web-archive-issue.png")), full_page=True)

        page.goto(f"{base}/p/{token(site, links.PREFERENCES, BERTIL)[:-2]}xx")
        assert page.inner_text("h1") == "Sidan finns inte"
        _fits_the_phone(page)
        page.screenshot(path=str(screenshot_path("web-404.png")), full_page=True)

    anna, bertil = person(site, ANNA), person(site, BERTIL)
    assert anna.status == "unsubscribed"
    with site.transaction() as session:
        assert is_suppressed(session, site.settings.secret_key, ANNA)
        assert not is_suppressed(session, site.settings.secret_key, BERTIL)
        assert preferences.chosen_areas(session, site.settings, bertil) == [
            "bostad", "omvarld", "digitalisering", "infrastruktur"]
        kinds = [(e.kind, e.detail.get("source") or e.detail.get("change"))
                 for e in session.scalars(select(Event).order_by(Event.id))]
    assert bertil.status == "active"
    site_today = datetime.now(ZoneInfo(site.settings.organisation.timezone)).date()
    assert bertil.paused_until == preferences.add_months(site_today, 3)  # the site's day
    assert kinds == [("unsubscribed", "web"), ("preferences", "areas"),
                     ("preferences", "paused")]


def test_webinar_registration_clicked_through_at_phone_width(server):
    from newsletter import webinars
    from newsletter.models import Registration

    base, site = server
    with site.transaction() as session:
        webinars.create_webinar(
            session, site.settings, title="Bostadsförsörjning i små kommuner",
            starts_at=datetime(2030, 10, 8, 8, 0, tzinfo=UTC), duration_minutes=60,
            join_url="https://example.se/mote/456", area="bostad", capacity=1,
            description="Erfarenheter från **Dorotea** och Vilhelmina.", slug="bostad-2030")
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.goto(f"{base}/webinar/bostad-2030")
        _fits_the_phone(page)
        assert "tisdag 8 oktober 2030 kl. 10.00–11.00" in page.inner_text("main")
        page.screenshot(path=str(screenshot_path("web-webinar.png")), full_page=True)
        page.get_by_label("Din e-postadress").fill(ANNA)
        page.get_by_role("button", name="Anmäl mig").click()
        page.wait_for_selector("text=Tack! Titta i din e-post")
        _fits_the_phone(page)
        # The registration is made by the background sender just after the answer: the page
        # shows the webinar as full once it is (a bounded wait).
        full = page.get_by_role("button", name="Ställ mig på väntelistan")
        deadline = time.monotonic() + 20
        while not full.is_visible() and time.monotonic() < deadline:
            time.sleep(0.2)
            page.reload()
        assert full.is_visible()
        page.screenshot(path=str(screenshot_path("web-webinar-full.png")), full_page=True)
        page.get_by_label("Din e-postadress").fill(BERTIL)
        page.get_by_role("button", name="Ställ mig på väntelistan").click()
        page.wait_for_selector("text=Tack! Titta i din e-post")
    deadline = time.monotonic() + 20
    while True:  # the background sender registers Bertil just after the answer
        with site.transaction() as session:
            statuses = {session.get(Person, r.person_id).email: r.status
                        for r in session.scalars(select(Registration))}
        if len(statuses) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert statuses == {ANNA: "registered", BERTIL: "waitlisted"}
