"""The browser harness itself works: a page at phone width has no horizontal scrolling."""

from __future__ import annotations

from .browser import chromium, screenshot_path


def test_chromium_renders_a_page_at_phone_width():
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 700})
        page.set_content('<html lang="sv"><body><p>Hej Åsele!</p></body></html>')
        assert page.inner_text("p") == "Hej Åsele!"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(screenshot_path("smoke.png")))
