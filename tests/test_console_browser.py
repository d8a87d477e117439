"""`newsletter console` for real, in headless Chromium: the main path at phone width and on a
desktop (sign in with a mailed link, an item with an image, reordering, the preview as a
kommunchef and as a KSO, a test send into a recording SMTP server), and an axe-core
accessibility scan of every page the console has, checked against its URL map.

Screenshots are kept in test-output/ (console-*.png).
"""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from newsletter import content, role_claims
from newsletter.console import create_app
from newsletter.console.context import background_of
from newsletter.models import Event, Mailing, Municipality, Person
from newsletter.positions import start_position

from .browser import chromium, require_chromium, screenshot_path
from .feed_server import FeedServer
from .helpers import (
    ca_env,
    configure,
    enable_tracking,
    future_start,
    maildir,
    new_webinar,
    read_tracked_issue,
    require_approval,
    seed,
    serve_site,
)
from .smtp_server import RecordingSMTPServer

pytestmark = pytest.mark.browser
MONTH = "2026-12"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 900}
EDITOR = "eva.ek@example.se"
YEAR = 2026
# GET pages the scan leaves out, and why: each other GET route of the console must be scanned.
NOT_PAGES = {"asset": "the stylesheet and the script", "media.image": "an image",
             "signin.oidc_begin": "a redirect to the identity provider"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running(site) -> Iterator[tuple[str, RecordingSMTPServer]]:
    """`newsletter console` on a free loopback port, mailing into a recording SMTP server."""
    require_chromium()
    site.cli("staff", "add", EDITOR, "--name", "Eva Ek", "--role", "admin")
    config = site.root / "newsletter.toml"  # an identity provider (never asked in these tests)
    config.write_text(config.read_text(encoding="utf-8").replace(
        'oidc_issuer = ""', 'oidc_issuer = "https://idp.example.se"'), encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with RecordingSMTPServer() as smtp, serve_site(
            site, {"NEWSLETTER_CONSOLE_URL": base, "NEWSLETTER_TRANSPORT": smtp.url,
                   "NEWSLETTER_OIDC_CLIENT_ID": "konsolen"},
            command="console", port=port, threads=2):
        yield base, smtp


def _sign_in(page, base: str, smtp: RecordingSMTPServer, found: dict | None = None) -> None:
    """Sign in with a mailed link; with FOUND, scan each page on the way (path -> violations)."""
    page.goto(f"{base}/nummer/{MONTH}")
    assert "/logga-in" in page.url
    if found is not None:
        found["/logga-in"] = _axe(page)
    page.fill("#email", EDITOR)
    page.click("#skicka-lank")
    page.wait_for_selector("p.notice")
    if found is not None:
        found["/logga-in (link sent)"] = _axe(page)
    assert smtp.wait_for(1, timeout=15)
    body = smtp.parsed()[-1].get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/logga-in/lank/[\w-]+", body).group(0)
    page.goto(link)
    if found is not None:
        found["/logga-in/lank/TOKEN"] = _axe(page)
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

        # Test send, on the phone: the kommunchef variant to the editor's own address.
        page.goto(f"{base}/nummer/{MONTH}/forhandsgranska?roll=kommunchef")
        assert page.input_value("#test-adresser") == EDITOR
        page.click("#skicka-test")
        page.wait_for_url(re.compile(r".*meddelande=test.*"))
        assert smtp.wait_for(2, timeout=20)  # the sign-in link, then the test copy
        copy = smtp.parsed()[-1]
        assert copy["To"].endswith(f"<{EDITOR}>") or copy["To"] == EDITOR
        assert copy["Subject"].startswith("[TEST] ")
        text = copy.get_body(("plain",)).get_content()
        assert "Kommuninvest: nya villkor för gröna lån" in text
        assert "Kommunchefsnätverket träffas" in text
        for _attempt in range(40):  # the page says what became of it once it is shown again
            page.reload()
            if page.locator("#testkopior .badge.good").count():
                break
            page.wait_for_timeout(250)
        assert EDITOR in page.inner_text("#testkopior")
        assert page.locator("#testkopior .badge.good").count() == 1
        _fits(page, PHONE["width"])
        page.screenshot(path=str(screenshot_path("console-test-send-375.png")), full_page=True)
        desktop.goto(f"{base}/nummer/{MONTH}/forhandsgranska?roll=kommunchef#testutskick")
        assert desktop.locator("#testkopior .badge.good").count() == 1
        desktop.screenshot(path=str(screenshot_path("console-test-send.png")), full_page=True)


def _axe(page) -> list[dict]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture
def filled(site, certs) -> Iterator[None]:
    """Something on every page: intake entries (fetched over HTTPS from 127.0.0.1), a tracked
    issue sent to twelve contacts (into the site's Maildir) and read, a test copy."""
    with FeedServer(certs.server) as feeds:
        feeds.fixture("/sou", "sou.rss")
        feeds.fixture("/remisser", "remisser.rss")
        configure(site, feeds, {"sou": ("/sou", "utredning"), "remisser": ("/remisser", "remiss")})
        site.cli("intake", "fetch", env=ca_env(certs))
    enable_tracking(site)
    seed(site, 12)
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--yes")
    first = next(iter(maildir(site).values()))
    read_tracked_issue(site, first.as_bytes())
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--test-to", "red@example.se")
    new_webinar(site, future_start())
    site.cli("webinar", "register", "bredband", "p001@example.se")
    yield


def _conflict(page, base: str, site) -> None:
    """An item saved over a version that changed on disk meanwhile: the 409 page."""
    item = "07-kommuninvest-rantebesked"
    page.goto(f"{base}/nummer/{MONTH}/nyhet/{item}")
    path = content.item_path(site.settings, MONTH, item)
    path.write_text(path.read_text(encoding="utf-8") + "\nÄndrat i en textredigerare.\n",
                    encoding="utf-8")
    page.click("#spara")
    page.wait_for_selector("#konflikt-rubrik")


def test_every_console_page_passes_axe(site, filled, running):
    base, smtp = running
    item = "07-kommuninvest-rantebesked"
    pages = ["/", f"/nummer/{MONTH}", f"/nummer/{MONTH}/nyhet/ny", f"/nummer/{MONTH}/nyhet/{item}",
             f"/nummer/{MONTH}/forhandsgranska?roll=kommunchef",
             f"/nummer/{MONTH}/forhandsgranska?sok=example",
             f"/nummer/{MONTH}/forhandsgranska/epost?roll=kso",
             f"/nummer/{MONTH}/forhandsgranska/webb", "/personal", "/installningar/profil",
             "/installningar/profil/prov?farg=%238a1538",
             "/nummer/2031-01", "/finns-inte", "/inkorg", f"/statistik?ar={YEAR}",
             "/statistik/utskick/1", f"/statistik/ar/{YEAR}", "/statistik?ar=1900", "/kontakter",
             "/kontakter?q=eva", "/kontakter/roller", "/kontakter/vakanser", "/utskick",
             "/utskick/1", "/webbinarier", "/webbinarier/bredband"]
    phone_pages = ["/", f"/nummer/{MONTH}", f"/nummer/{MONTH}/nyhet/{item}", "/utskick",
                   "/utskick/1", "/webbinarier", "/webbinarier/bredband",
                   f"/nummer/{MONTH}/forhandsgranska?roll=kommunchef", "/inkorg",
                   f"/statistik?ar={YEAR}", "/statistik/utskick/1", f"/statistik/ar/{YEAR}",
                   "/installningar/profil"]
    found: dict[str, list] = {}
    with chromium() as browser:
        # bypass_csp: only so that the test can inject axe; the pages' own CSP is tested apart.
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        for path in ("/logga-in/lank/" + "x" * 43, "/logga-in/oidc/svar?state=x&code=y"):
            page.goto(base + path)  # a used or forged link; an answer from nobody's sign-in
            found[path] = _axe(page)
        _sign_in(page, base, smtp, found)
        _claimed(site)
        with site.transaction() as session:
            eva = session.scalar(select(Person.public_id).where(Person.email == CLAIMANT))
        pages.append(f"/kontakter/person/{eva}")
        for path in pages:
            page.goto(base + path)
            found[path] = _axe(page)
        _conflict(page, base, site)
        found["item saved over a changed file (409)"] = _axe(page)
        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        for path in phone_pages:
            phone.goto(base + path)
            found[f"{path} (375 px)"] = _axe(phone)
            _fits(phone, PHONE["width"])
        phone.goto(f"{base}/statistik?ar={YEAR}")
        phone.screenshot(path=str(screenshot_path("console-statistics-375.png")), full_page=True)
        phone.goto(f"{base}/inkorg")
        phone.screenshot(path=str(screenshot_path("console-inbox-375.png")), full_page=True)
        page.goto(f"{base}/inkorg")
        page.screenshot(path=str(screenshot_path("console-inbox.png")), full_page=True)
        page.goto(f"{base}/statistik?ar={YEAR}")
        page.screenshot(path=str(screenshot_path("console-statistics.png")), full_page=True)
    assert {path: v for path, v in found.items() if v} == {}
    # Every page the console has was scanned: its URL map, less what is not a page.
    app = create_app(site.settings)
    try:
        adapter = app.url_map.bind("127.0.0.1")
        scanned = {adapter.match(path.split("?")[0], method="GET")[0]
                   for path in pages + ["/logga-in", "/logga-in/lank/x", "/logga-in/oidc/svar"]
                   if path != "/finns-inte"}
    finally:
        background_of(app).stop()
    pages_of_app = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert pages_of_app - scanned - set(NOT_PAGES) == set()


@pytest.fixture
def submitted(site) -> None:
    """A site that requires approval, six members, the issue submitted by a redaktör (before
    the console starts: it reads the settings once)."""
    require_approval(site)
    seed(site, 6)
    site.cli("staff", "add", "redaktor@example.se", "--name", "Rut Redaktör", "--role",
             "redaktor")
    site.cli("issue", "submit", MONTH, "--by", "redaktor@example.se")


def _state(page) -> str:
    return page.inner_text("#arbetsflode-tillstand")


def test_approve_and_schedule_on_a_phone(site, submitted, running):
    base, smtp = running
    found: dict[str, list] = {}
    with chromium() as browser:
        context = browser.new_context(viewport=PHONE, bypass_csp=True)  # axe, as above
        page = context.new_page()
        _sign_in(page, base, smtp)
        page.goto(f"{base}/nummer/{MONTH}#arbetsflode")
        assert _state(page) == "på granskning"
        _fits(page, PHONE["width"])
        found["in review"] = _axe(page)
        page.click("#godkann")
        page.wait_for_url(re.compile(r".*steg=godkant.*"))
        assert _state(page) == "godkänt"
        assert "Godkänt." in page.inner_text("#arbetsflode p.notice")
        found["approved"] = _axe(page)
        at = (datetime.now(UTC) + timedelta(minutes=10)).astimezone(ZoneInfo(
            "Europe/Stockholm")).replace(second=0, microsecond=0)
        page.check("#nar-tid")
        page.fill("#skicka-tid", at.strftime("%Y-%m-%dT%H:%M"))
        page.select_option("#skicka-segment", "medlemmar")
        page.click("#skicka")
        page.wait_for_url(re.compile(r".*steg=schemalagt.*"))
        assert _state(page) == "schemalagt"
        _fits(page, PHONE["width"])
        found["scheduled"] = _axe(page)
        page.screenshot(path=str(screenshot_path("console-workflow-375.png")), full_page=True)
        page.click("#arbetsflode a[href^='/utskick/']")
        page.wait_for_url(re.compile(rf"{base}/utskick/\d+"))
        assert "schemalagt" in page.inner_text("#utskick-tillstand")
        _fits(page, PHONE["width"])
        found["the mailing"] = _axe(page)
    assert {name: v for name, v in found.items() if v} == {}
    with site.transaction() as session:
        [mailing] = session.scalars(select(Mailing)).all()
    assert mailing.status == "scheduled" and mailing.scheduled_at == at
    assert smtp.wait_for(1, timeout=5) and len(smtp.copies()) == 1  # only the sign-in link


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


def test_the_profile_page_samples_a_colour_as_it_is_typed_and_saves_a_logo(site, running,
                                                                            tmp_path):
    base, smtp = running
    logo = tmp_path / "Logga.png"
    Image.new("RGB", (1000, 250), (11, 93, 30)).save(logo)
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        _sign_in(page, base, smtp)
        page.get_by_role("link", name="Profil").click()
        page.wait_for_url(f"{base}/installningar/profil")
        assert page.is_visible("#colour-picker")  # the script shows the picker
        page.fill("#colour", "#0B5D1E")
        page.wait_for_selector('#prov[src$="farg=%230b5d1e"]')
        # The sample frame loads the email in the colour typed (waits until it has).
        page.frame_locator("#prov").locator('[bgcolor="#0b5d1e"]').first.wait_for(
            state="attached", timeout=10_000)
        page.set_input_files("#logo", str(logo))
        page.fill("#logo_alt", "Föreningen")
        page.click("#spara")
        page.wait_for_selector("p.notice")
        assert page.get_attribute("img.logo-now", "alt") == "Föreningen"
        sample_logo = page.frame_locator("#prov").locator('img[alt="Föreningen"]')
        sample_logo.wait_for(state="visible", timeout=10_000)  # the saved logo, inline
        assert sample_logo.get_attribute("src").startswith("data:image/png;base64,")
        page.screenshot(path=str(screenshot_path("console-profile.png")), full_page=True)
        page.fill("#colour", "#ffcc00")
        page.click("#spara")
        page.wait_for_selector("#colour-fel")
        assert "1.5:1" in page.inner_text("#colour-fel")
    assert 'colour = "#0b5d1e"' in (site.root / "branding.toml").read_text("utf-8")
