"""The built issue in headless Chromium: no horizontal scrolling on a phone, fine on a desktop.

Screenshots are kept in test-output/ (issue-375.png, issue-640.png, issue-hostile-375.png).
"""

from __future__ import annotations

import pytest

from .browser import chromium, screenshot_path
from .helpers import add_hostile_issue

pytestmark = pytest.mark.browser


def _look(browser, html: str, width: int, name: str) -> dict:
    page = browser.new_page(viewport={"width": width, "height": 900})
    # Nothing may be fetched from the network: the email has to stand on its own.
    page.route("**/*", lambda route: route.abort())
    page.set_content(html, wait_until="load")
    facts = page.evaluate("""() => ({
        scrollWidth: document.documentElement.scrollWidth,
        bodyWidth: document.body.scrollWidth,
        heading: document.querySelector('h2') && document.querySelector('h2').innerText,
        preheaderVisible: [...document.querySelectorAll('div')].some(d =>
            d.innerText.includes('Kommuninvests räntebesked och PTS') && d.offsetHeight > 2),
    })""")
    page.screenshot(path=str(screenshot_path(name)), full_page=True)
    page.close()
    return facts


def test_sample_issue_fits_a_phone_and_a_desktop(site):
    site.cli("issue", "build", "2026-12")
    html = (site.root / "issues/2026-12/build/issue.html").read_text(encoding="utf-8")
    with chromium() as browser:
        phone = _look(browser, html, 375, "issue-375.png")
        desktop = _look(browser, html, 640, "issue-640.png")
    assert phone["scrollWidth"] <= 375, phone
    assert desktop["scrollWidth"] <= 640, desktop
    assert phone["heading"] == "Våra medlemmar"
    assert not phone["preheaderVisible"]


def test_long_titles_and_words_do_not_scroll_sideways(site):
    add_hostile_issue(site)
    site.cli("issue", "build", "2026-12")
    html = (site.root / "issues/2026-12/build/issue.html").read_text(encoding="utf-8")
    with chromium() as browser:
        phone = _look(browser, html, 375, "issue-hostile-375.png")
    assert phone["scrollWidth"] <= 375, phone
