"""Sign-up and open webinar registration through `newsletter serve` in headless Chromium at
phone width, with the confirmation mails taken from a recording SMTP server and their links
followed in the browser. Screenshots are kept in test-output/ (signup-*.png)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.models import Consent, Person, Registration, RoleClaim

from .browser import chromium, require_chromium, screenshot_path
from .helpers import CONFIRM_LINK, check_message, future_start, new_webinar, serve_site
from .smtp_server import RecordingSMTPServer

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 800}
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


@pytest.fixture
def served(site) -> Iterator[tuple[str, RecordingSMTPServer]]:
    """`newsletter serve` on a free loopback port of the test site, sending through a
    recording SMTP server: (base URL, server)."""
    require_chromium()
    with RecordingSMTPServer() as smtp, serve_site(
            site, {"NEWSLETTER_TRANSPORT": smtp.url}, threads=2) as (port, _proc):
        yield f"http://127.0.0.1:{port}", smtp


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def _axe(page) -> list[dict]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def _link(smtp: RecordingSMTPServer, count: int, base: str) -> tuple[str, object]:
    """The confirmation link of the COUNT-th message (on this server's base URL), and the
    message; every message passes the conformance checks."""
    assert smtp.wait_for(count, timeout=20), "the confirmation did not come"
    check_message(smtp.messages[count - 1].data)
    message = smtp.parsed()[count - 1]
    found = CONFIRM_LINK.search(message.get_body(("plain",)).get_content())
    assert found, "no confirmation link"
    return base + found.group(1), message


def test_sign_up_in_a_browser_and_confirm_from_the_mailbox(site, served):
    base, smtp = served
    with chromium() as browser:
        # bypass_csp: only so that the test can inject axe; the pages' CSP is tested apart.
        page = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
        page.goto(f"{base}/prenumerera")
        _fits(page)
        assert _axe(page) == []
        page.get_by_label("Din e-postadress").fill("Eva.Lind@Asele.se")
        page.get_by_role("button", name="Fortsätt").click()
        page.wait_for_selector("#municipality")
        assert page.eval_on_selector("#municipality", "s => s.value") == "2463"  # from @asele.se
        assert page.get_by_text("Vald utifrån din adress").is_visible()
        box = page.locator("#webbplats").bounding_box()  # the honeypot: out of sight
        assert box is None or box["x"] + box["width"] <= 0
        _fits(page)
        assert _axe(page) == []
        page.screenshot(path=str(screenshot_path("signup-details-375.png")), full_page=True)
        page.get_by_label("Ditt namn").fill("Eva Lind")
        page.select_option("#role", "kommunchef")
        page.get_by_label("Bostadsförsörjning").check()
        page.get_by_role("button", name="Prenumerera").click()
        page.wait_for_url(f"{base}/prenumerera/skickat")
        assert "Titta i din inkorg" in page.inner_text("h1")
        _fits(page)

        link, message = _link(smtp, 1, base)
        assert message["To"].addresses[0].addr_spec == "eva.lind@asele.se"
        page.goto(link)
        _fits(page)
        assert _axe(page) == []
        page.screenshot(path=str(screenshot_path("signup-confirm-375.png")), full_page=True)
        page.get_by_role("button", name="Ja, bekräfta").click()
        page.wait_for_url(re.compile(r".*/prenumerera/klart.*"))
        assert "Din prenumeration är bekräftad" in page.inner_text("main")
        page.screenshot(path=str(screenshot_path("signup-confirmed-375.png")), full_page=True)

        page.goto(link)  # the link again: used
        assert page.inner_text("h1") == "Sidan finns inte"

    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == "eva.lind@asele.se"))
        assert (eva.status, eva.name, [a.area for a in eva.areas]) == (
            "active", "Eva Lind", ["bostad"])
        assert [p.role for p in eva.positions_on()] == ["ovrig"]
        assert [c.role for c in session.scalars(select(RoleClaim))] == ["kommunchef"]
        assert [c.purpose for c in session.scalars(select(Consent))] == ["newsletter"]


def test_open_webinar_registration_in_a_browser(site, served):
    base, smtp = served
    new_webinar(site, future_start())
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.goto(f"{base}/webinar/bredband")
        _fits(page)
        page.get_by_label("Din e-postadress").fill("ny.person@example.se")
        page.get_by_label("Ditt namn").fill("Ny Person")
        page.get_by_role("button", name="Anmäl mig").click()
        page.wait_for_selector("p.notice")
        assert "Titta i din e-post" in page.inner_text("p.notice")
        _fits(page)

        link, message = _link(smtp, 1, base)
        assert message["Subject"] == "Bekräfta din anmälan: Bredband på landsbygden"
        page.goto(link)
        page.get_by_role("button", name="Ja, bekräfta").click()
        page.wait_for_url(re.compile(r".*anmalan=anmald.*"))
        assert "Du är anmäld" in page.inner_text("main")
        page.screenshot(path=str(screenshot_path("signup-webinar-confirmed-375.png")),
                        full_page=True)
        page.get_by_role("link", name="Tillbaka till webbinariet").click()
        page.wait_for_url(f"{base}/webinar/bredband")

    assert smtp.wait_for(2, timeout=20), "the registration's confirmation did not come"
    check_message(smtp.messages[1].data)
    confirmation = smtp.parsed()[1]
    assert confirmation["Subject"].startswith("Bekräftelse: Bredband på landsbygden")
    assert any(p.get_content_type() == "text/calendar" for p in confirmation.walk())
    with site.transaction() as session:
        newcomer = session.scalar(select(Person).where(Person.email == "ny.person@example.se"))
        assert (newcomer.status, newcomer.subscribed) == ("active", False)
        assert session.scalar(select(Registration.status)) == "registered"
