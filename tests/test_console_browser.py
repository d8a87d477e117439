"""`newsletter console` for real, in headless Chromium: the main path at phone width and on a
desktop, and an axe-core accessibility scan of every page.

Screenshots are kept in test-output/ (console-*.png).
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from newsletter import content, role_claims
from newsletter.models import Event, Municipality, Person
from newsletter.positions import start_position

from .browser import chromium, require_chromium, screenshot_path
from .helpers import TEST_ENV
from .smtp_server import RecordingSMTPServer

pytestmark = pytest.mark.browser
MONTH = "2026-12"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 900}
EDITOR = "eva.ek@example.se"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running(site) -> Iterator[tuple[str, RecordingSMTPServer]]:
    """`newsletter console` on a free loopback port, mailing into a recording SMTP server."""
    require_chromium()
    site.cli("staff", "add", EDITOR, "--name", "Eva Ek", "--role", "admin")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with RecordingSMTPServer() as smtp:
        env = {**os.environ, **TEST_ENV, "NEWSLETTER_ROOT": str(site.root),
               "NEWSLETTER_CONSOLE_URL": base, "NEWSLETTER_TRANSPORT": smtp.url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "console", "--host", "127.0.0.1", "--port",
             str(port), "--threads", "2"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()
                        pytest.fail(f"newsletter console did not start:\n{proc.communicate()[0]}")
                    time.sleep(0.1)
            yield base, smtp
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _sign_in(page, base: str, smtp: RecordingSMTPServer) -> None:
    page.goto(f"{base}/nummer/{MONTH}")
    assert "/logga-in" in page.url
    page.fill("#email", EDITOR)
    page.click("#skicka-lank")
    page.wait_for_selector("p.notice")
    assert smtp.wait_for(1, timeout=15)
    body = smtp.parsed()[-1].get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/logga-in/lank/[\w-]+", body).group(0)
    page.goto(link)
    page.click("#logga-in")
    page.wait_for_url(f"{base}/")


def _fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1600, 900), (40, 120, 70)).save(out, "JPEG")
    return out.getvalue()


def test_main_path_on_a_phone_and_a_desktop(site, running):
    base, smtp = running
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        _sign_in(page, base, smtp)
        _fits(page, PHONE["width"])
        page.screenshot(path=str(screenshot_path("console-dashboard-375.png")), full_page=True)

        # Add an item with an image.
        page.goto(f"{base}/nummer/{MONTH}/nyhet/ny?omrade=kapital")
        _fits(page, PHONE["width"])
        page.fill("#title", "Kommuninvest: nya villkor för gröna lån")
        page.select_option("#kind", "nyhet")
        page.fill("#url", "https://www.kommuninvest.se/")
        page.fill("#body", "Villkoren ändras den 1 januari.")
        page.set_input_files("#image", files=[{"name": "foto.jpg", "mimeType": "image/jpeg",
                                               "buffer": _photo()}])
        page.fill("#image_alt", "Solpaneler på ett skoltak")
        page.click("#spara")
        page.wait_for_url(re.compile(rf"{base}/nummer/{MONTH}\?meddelande=sparat.*"))
        item = content.item_path(site.settings, MONTH, "kommuninvest-nya-villkor-for-grona-lan")
        assert "![Solpaneler på ett skoltak](" in item.read_text(encoding="utf-8")
        _fits(page, PHONE["width"])

        # Reorder: move it up twice within its area.
        before = [i.id for i in content.load_issue(site.settings, MONTH).items_in("kapital")]
        assert before[-1] == item.stem
        page.click(f'#nyhet-{item.stem} button[aria-label^="Flytta upp"]')
        page.wait_for_load_state()
        page.click(f'#nyhet-{item.stem} button[aria-label^="Flytta upp"]')
        page.wait_for_load_state()
        after = [i.id for i in content.load_issue(site.settings, MONTH).items_in("kapital")]
        assert after.index(item.stem) == len(after) - 3
        page.screenshot(path=str(screenshot_path("console-issue-375.png")), full_page=True)

        # Preview as a kommunchef and as a KSO, on a desktop.
        desktop = browser.new_page(viewport=DESKTOP)
        desktop.context.add_cookies(page.context.cookies())
        for role, sees_kommunchef_items in (("kommunchef", True), ("kso", False)):
            desktop.goto(f"{base}/nummer/{MONTH}/forhandsgranska")
            desktop.check(f'input[name="roll"][value="{role}"]')
            desktop.click("#visa-variant")
            desktop.wait_for_load_state("load")
            for frame_id, width in (("ram-375", 375), ("ram-600", 640)):
                frame = desktop.frame_locator(f"#{frame_id}")
                text = frame.locator("body").inner_text()
                assert "Kommuninvest: nya villkor för gröna lån" in text
                assert ("Kommunchefsnätverket träffas" in text) is sees_kommunchef_items, role
                handle = desktop.query_selector(f"#{frame_id}").content_frame()
                assert handle.evaluate("document.documentElement.scrollWidth") <= width
                images = handle.evaluate(
                    "[...document.images].filter(i => i.alt === 'Solpaneler på ett skoltak')"
                    ".map(i => [i.naturalWidth, i.getAttribute('width')])")
                assert images == [[1200, "552"]], images
            text = desktop.inner_text("#textversion")
            assert ("Kommunchefsnätverket" in text) is sees_kommunchef_items
            desktop.screenshot(path=str(screenshot_path(f"console-preview-{role}.png")),
                               full_page=True)
        page.goto(f"{base}/nummer/{MONTH}/forhandsgranska?roll=kso")
        _fits(page, PHONE["width"])


def _axe(page) -> list[dict]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_every_console_page_passes_axe(site, running):
    base, smtp = running
    item = "07-kommuninvest-rantebesked"
    pages = ["/", f"/nummer/{MONTH}", f"/nummer/{MONTH}/nyhet/ny", f"/nummer/{MONTH}/nyhet/{item}",
             f"/nummer/{MONTH}/forhandsgranska?roll=kommunchef",
             f"/nummer/{MONTH}/forhandsgranska?sok=example", "/personal", "/nummer/2031-01",
             "/finns-inte", "/kontakter", "/kontakter?q=eva", "/kontakter/roller",
             "/kontakter/vakanser"]
    found = {}
    with chromium() as browser:
        # bypass_csp: only so that the test can inject axe; the pages' own CSP is tested apart.
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        for path in ("/logga-in",):
            page.goto(base + path)
            found[path] = _axe(page)
        _sign_in(page, base, smtp)
        _claimed(site)
        with site.transaction() as session:
            eva = session.scalar(select(Person.public_id).where(Person.email == CLAIMANT))
        pages.append(f"/kontakter/person/{eva}")
        for path in pages:
            page.goto(base + path)
            found[path] = _axe(page)
        page.goto(f"{base}/nummer/{MONTH}/forhandsgranska/webb")
        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        for path in ("/", f"/nummer/{MONTH}", f"/nummer/{MONTH}/nyhet/{item}"):
            phone.goto(base + path)
            found[f"{path} (375 px)"] = _axe(phone)
            _fits(phone, PHONE["width"])
    assert {path: v for path, v in found.items() if v} == {}


CLAIMANT = "eva.lind@asele.se"


def _claimed(site) -> None:
    """Eva Lind of Åsele (a member), who declared herself kommunchef on the sign-up page (a
    claim that waits for staff; she holds ovrig meanwhile) and holds tjansteperson in
    Dorotea."""
    today = date.today()
    with site.transaction() as session:
        eva = Person(email=CLAIMANT, name="Eva Lind")
        session.add(eva)
        session.flush()
        asele = session.scalar(select(Municipality).where(Municipality.kommunkod == "2463"))
        asele.member = True
        dorotea = session.scalar(select(Municipality.id).where(
            Municipality.kommunkod == "2425"))
        start_position(session, eva, dorotea, "tjansteperson", today, source="test")
        role_claims.claim(session, site.settings, eva, asele.id, "kommunchef",
                          page="/prenumerera", today=today)


def test_the_register_pages_verify_a_role_and_end_another(site, running):
    base, smtp = running
    _claimed(site)
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        _sign_in(page, base, smtp)
        page.get_by_role("link", name="Kontakter").first.click()
        page.wait_for_url(f"{base}/kontakter")
        assert "1 roll som angetts på anmälningssidan väntar på kontroll." in page.inner_text(
            "main")
        page.fill("#q", "Åsele")
        page.get_by_role("button", name="Sök").click()
        page.get_by_role("link", name=CLAIMANT).click()
        page.wait_for_url(re.compile(rf"{base}/kontakter/person/.+"))
        _fits(page, PHONE["width"])
        page.screenshot(path=str(screenshot_path("console-contact-375.png")), full_page=True)
        assert "Angivna, väntar på kontroll" in page.inner_text("main")
        page.get_by_role("button", name="Godkänn").click()
        page.wait_for_selector("p.notice")
        assert "Rollen är kontrollerad" in page.inner_text("p.notice")

        page.select_option("#avsluta-roll", label="Tjänsteperson, Dorotea")
        page.get_by_role("button", name="Avsluta rollen").click()
        page.wait_for_selector("p.notice")
        assert "Rollen är avslutad" in page.inner_text("p.notice")
        _fits(page, PHONE["width"])

        page.goto(f"{base}/kontakter/vakanser")
        vacant = page.inner_text("table")
        assert "Åsele" in vacant and "Kommunstyrelsens ordförande" in vacant  # no kso there
        assert "Kommunchef" not in vacant  # Eva, now verified
        _fits(page, PHONE["width"])

    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == CLAIMANT))
        held = sorted((p.municipality.name, p.role) for p in eva.positions_on())
        assert held == [("Dorotea", "ovrig"), ("Åsele", "kommunchef")]
        audit = [e.kind for e in session.scalars(select(Event).where(
            Event.kind.like("console-%")).order_by(Event.id))]
        assert audit[-2:] == ["console-role-verified", "console-position-ended"]
        detail = session.scalars(select(Event).where(
            Event.kind == "console-role-verified")).one().detail
        assert detail["staff"] == EDITOR
