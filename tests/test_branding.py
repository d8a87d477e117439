"""`[branding]`: a logo and a primary colour for the emails and the public pages, checked when
the settings are read; the role label is a small label in every client."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from newsletter.content import load_issue
from newsletter.errors import ConfigError
from newsletter.render import IssueRenderer, render_message
from newsletter.settings import contrast_with_white, load_settings
from newsletter.web import create_app
from newsletter.web.pages import background_of

from .helpers import TEST_ENV, check_page


def _branding(site, text: str) -> None:
    config = site.root / "newsletter.toml"
    before = config.read_text(encoding="utf-8")
    start = before.index("[branding]")
    end = before.index("\n[", start + 1)
    config.write_text(before[:start] + "[branding]\n" + text + "\n" + before[end:],
                      encoding="utf-8")


def _logo(site, size=(800, 200)) -> None:
    (site.root / "media").mkdir(exist_ok=True)
    Image.new("RGB", size, (138, 21, 56)).save(site.root / "media" / "logo.png")


def test_contrast_is_wcag_s_ratio():
    assert round(contrast_with_white("#000000"), 2) == 21.0
    assert round(contrast_with_white("#767676"), 2) == 4.54  # the lightest grey that passes
    assert contrast_with_white("#777777") < 4.5


@pytest.mark.parametrize("text, words", [
    ('colour = "blå"', "branding.colour måste vara en färg"),
    ('colour = "#fc0"', "branding.colour måste vara en färg"),
    ('colour = "#ffcc00"', "branding.colour #ffcc00 har kontrasten 1.5:1 mot vitt"),
    ('colour = "#777777"', "minst 4.5:1 (WCAG AA)"),
    ("colour = 14", "branding.colour måste vara"),
    ('logo = "saknas.png"\nlogo_alt = "Föreningen"', "branding.logo måste vara namnet på en bild"),
    ('logo = "../newsletter.toml"\nlogo_alt = "x"', "branding.logo måste vara namnet på en bild"),
    ('logo = "logo.png"', "branding.logo_alt är tom"),
    ('farg = "#000000"', "branding.farg är ingen inställning"),
])
def test_a_wrong_branding_is_a_configuration_error_naming_the_key(site, text, words):
    _logo(site)
    _branding(site, text)
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_settings(site.root, env=TEST_ENV)
    result = site.cli("issue", "build", "2026-12", ok=False)
    assert result.exit_code == 78 and "newsletter.toml" in result.stderr


def test_the_logo_and_colour_are_in_the_emails(site):
    _logo(site)
    _branding(site, 'logo = "logo.png"\nlogo_alt = "Föreningen Småkommunerna"\n'
                    'colour = "#8A1538"')
    settings = site.settings
    issue = IssueRenderer(settings, load_issue(settings, "2026-12")).render(
        IssueRenderer(settings, load_issue(settings, "2026-12")).all_key)
    image = re.search(r'<img [^>]*src="https://nyhetsbrev\.example\.se/media/logo\.png"[^>]*>',
                      issue.html).group(0)
    assert 'alt="Föreningen Småkommunerna"' in image
    assert 'width="200"' in image and 'height="50"' in image  # 800 x 200, sized for email
    assert 'bgcolor="#8a1538"' in issue.html and "#14324f" not in issue.html
    message = render_message(settings, subject="Enkät", body_markdown="Svara gärna.",
                             action=("Svara här", "https://example.se/enkat"))
    assert re.search(r'<a href="https://example\.se/enkat"[^>]*background:#8a1538[^>]*>'
                     r"Svara här</a>", message.html)
    assert "Svara här: https://example.se/enkat" in message.text


def test_the_logo_and_colour_are_on_the_public_pages(site):
    _logo(site, (120, 60))
    _branding(site, 'logo = "logo.png"\nlogo_alt = "Föreningen"\ncolour = "#8a1538"')
    app = create_app(site.settings)
    client = app.test_client()
    page = client.get("/arkiv/")
    check_page(page)
    html = page.get_data(as_text=True)
    assert ('<img class="site-logo" src="/media/logo.png" alt="Föreningen" width="120" '
            'height="60">') in html
    assert '<link rel="stylesheet" href="/static/brand.css?v=8a1538">' in html
    css = client.get("/static/brand.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert ".site-header { background: #8a1538; }" in css.get_data(as_text=True)
    assert client.get("/media/logo.png").status_code == 200
    assert background_of(app).stop()


def test_the_role_label_is_a_small_label_not_a_bar_in_outlook(site):
    """Outlook on Windows (Word's engine) ignores display:inline-block and stretches a
    paragraph's background over the whole width; a table cell without a width is as wide as
    its text there too."""
    settings = site.settings
    renderer = IssueRenderer(settings, load_issue(settings, "2026-12"))
    html = renderer.render(renderer.all_key).html
    labels = re.findall(r'<table role="presentation"[^>]*>\s*<tr><td bgcolor="#fff4d6"[^>]*>'
                        r"(Till: [^<]+)</td></tr></table>", html)
    assert labels and all(label == "Till: Kommunchef" for label in labels)
    assert 'class="roles"' not in html and "display:inline-block; margin:0 0 12px" not in html
    table = re.search(r'<table role="presentation"[^>]*>\s*<tr><td bgcolor="#fff4d6"', html)
    assert "width" not in table.group(0).split("<tr>")[0]
