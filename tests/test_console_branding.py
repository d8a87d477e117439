"""/installningar/profil: an admin sets the logo, its alt text and the colour in the console;
saved in branding.toml, checked as newsletter.toml's [branding] is, and used by the public
pages, the console and the emails of processes already running (no restart)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from newsletter import branding, media
from newsletter.errors import ConfigError
from newsletter.events import EventKind
from newsletter.models import Event
from newsletter.render import render_message
from newsletter.settings import BRANDING_FILE, load_settings
from newsletter.web import create_app as public_app
from newsletter.web.pages import background_of

from .console_support import STAFF
from .helpers import png_bomb

PATH = "/installningar/profil"


def png(size=(1600, 400), colour=(138, 21, 56)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _post(client, *, colour="#8a1538", alt="Föreningens logotyp", logo=None, filename="logo.png",
          remove=False, stamp=None):
    html = client.get(PATH).text
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    if stamp is not None:
        hidden["stamp"] = stamp
    form = {**hidden, "colour": colour, "logo_alt": alt}
    if logo is not None:
        form["logo"] = (io.BytesIO(logo), filename)
    if remove:
        form["remove_logo"] = "1"
    return client.post(PATH, data=form, content_type="multipart/form-data")


def _saved(site) -> str | None:
    path = site.root / BRANDING_FILE
    return path.read_text("utf-8") if path.exists() else None


def _media(site) -> list:
    folder = site.root / "media"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_page_shows_the_branding_and_a_sample_of_the_header(console):
    client = console.signed_in("admin")
    page = client.get(PATH)
    assert page.status_code == 200
    assert "#14324f" in page.text and "Ingen logotyp" in page.text
    assert 'src="/installningar/profil/prov"' in page.text and 'sandbox=""' in page.text
    assert 'href="/installningar/profil"' in page.text  # in the admin's menu
    sample = client.get(PATH + "/prov")
    assert sample.status_code == 200
    assert "script-src" not in sample.headers["Content-Security-Policy"]
    assert "default-src 'none'" in sample.headers["Content-Security-Policy"]
    assert 'bgcolor="#14324f"' in sample.text or "background:#14324f" in sample.text
    # The live sample: a colour not saved yet, as the page's script asks for it.
    other = client.get(PATH + "/prov", query_string={"farg": "#8A1538"}).text
    assert "#8a1538" in other and "#14324f" not in other
    assert "__NL_" not in other
    # A redaktör does not see the menu entry.
    assert 'href="/installningar/profil"' not in console.signed_in("redaktor").get("/").text


def test_an_admin_saves_a_logo_and_colour_used_at_once_everywhere(console):
    site = console.site
    settings = site.settings  # as a running serve or worker loaded them, before the save
    web = public_app(settings)
    before = web.test_client().get("/arkiv/").text
    assert "site-logo" not in before
    client = console.signed_in("admin")
    response = _post(client, logo=png(), filename="Logga PRESS.png")
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == PATH + "?meddelande=sparad"
    [stored] = _media(site)
    assert re.fullmatch(r"[0-9a-f]{20}\.png", stored)
    with Image.open(site.root / "media" / stored) as img:
        assert img.size == (400, 100)  # twice the email's logo box (200 × 80), not 1200 wide
    text = _saved(site)
    assert f'logo = "{stored}"' in text and 'colour = "#8a1538"' in text
    assert 'logo_alt = "Föreningens logotyp"' in text
    # A fresh start reads it over newsletter.toml's [branding], through the same checks.
    assert load_settings(site.root, env=site.env).branding == branding.Branding(
        logo=stored, logo_alt="Föreningens logotyp", colour="#8a1538")
    # Processes already running use it without a restart: the public pages ...
    page = web.test_client().get("/arkiv/")
    html = page.text
    assert (f'<img class="site-logo" src="/media/{stored}" alt="Föreningens logotyp" '
            'width="200" height="50">') in html
    assert 'href="/static/brand.css?v=8a1538"' in html  # a new URL: no stale cached colour
    css = web.test_client().get("/static/brand.css?v=8a1538").text
    assert ".site-header { background: #8a1538; }" in css
    assert background_of(web).stop()
    # ... and the emails the worker renders (same old settings object).
    message = render_message(settings, subject="Påminnelse", body_markdown="Text.")
    assert media.media_url(settings, stored) in message.html
    assert 'alt="Föreningens logotyp"' in message.html and "#8a1538" in message.html
    # The console shows it, and the change is in the audit log with who made it.
    page = client.get(PATH + "?meddelande=sparad")
    assert "Sparat." in page.text and f'src="/media/{stored}"' in page.text
    with site.transaction() as session:
        [event] = session.scalars(select(Event).where(
            Event.kind == EventKind.CONSOLE_BRANDING_SAVED)).all()
    assert event.detail["staff"] == STAFF["admin"]
    assert event.detail["colour"] == "#8a1538" and event.detail["uploaded"] == stored


def test_a_colour_without_contrast_is_refused_with_the_reason(console):
    client = console.signed_in("admin")
    response = _post(client, colour="#ffcc00", logo=png())
    assert response.status_code == 400
    assert "#ffcc00" in response.text and "1.5:1" in response.text and "4.5:1" in response.text
    assert 'aria-invalid="true"' in response.text
    assert _saved(console.site) is None and _media(console.site) == []  # nothing stored
    response = _post(client, colour="blå")
    assert response.status_code == 400 and "#14324f" in response.text
    assert _saved(console.site) is None


def test_a_logo_needs_alt_text(console):
    client = console.signed_in("admin")
    response = _post(client, alt="  ", logo=png())
    assert response.status_code == 400
    assert "logo_alt-fel" in response.text
    assert _saved(console.site) is None and _media(console.site) == []


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="200" height="80">'
       b'<script>alert(document.cookie)</script><rect width="200" height="80"/></svg>')
PHP = b"<?php system($_GET['c']); ?>\n"


@pytest.mark.parametrize("data, filename", [(PHP, "logo.png"), (SVG, "logo.svg"),
                                            (SVG, "logo.png"), (png_bomb(), "logo.png")],
                         ids=["php-named-png", "svg-with-script", "svg-named-png", "bomb"])
def test_an_upload_that_is_not_an_image_is_refused(console, data, filename):
    client = console.signed_in("admin")
    response = _post(client, logo=data, filename=filename)
    assert response.status_code == 400, response.text
    assert 'id="logo-fel"' in response.text
    assert _saved(console.site) is None and _media(console.site) == []


def test_a_save_over_a_newer_save_is_refused(console):
    client = console.signed_in("admin")
    stale = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                            client.get(PATH).text))["stamp"]
    assert _post(client, colour="#0b5d1e", alt="").status_code == 303
    response = _post(client, colour="#8a1538", alt="", stamp=stale)
    assert response.status_code == 409
    assert 'colour = "#0b5d1e"' in _saved(console.site)


def test_removing_the_logo_keeps_its_file_for_the_archive(console):
    client = console.signed_in("admin")
    assert _post(client, logo=png()).status_code == 303
    [stored] = _media(console.site)
    assert _post(client, alt="", remove=True).status_code == 303
    assert 'logo = ""' in _saved(console.site)
    assert _media(console.site) == [stored]  # sent emails in the archive still show it
    assert branding.current(console.site.settings).logo == ""


def test_a_broken_branding_toml_names_the_file_and_key(site):
    (site.root / BRANDING_FILE).write_text('[branding]\ncolour = "#ffff00"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"branding\.toml: branding\.colour #ffff00"):
        load_settings(site.root, env=site.env)
    result = site.cli("doctor", "--timeout", "1", ok=False)  # before any network check
    assert result.exit_code == 78 and "branding.toml: branding.colour" in result.output


def test_a_running_process_keeps_its_branding_when_the_file_is_broken_by_hand(site):
    settings = site.settings
    (site.root / BRANDING_FILE).write_text('[branding]\ncolour = "#0b5d1e"\n', "utf-8")
    assert branding.current(settings).colour == "#0b5d1e"
    (site.root / BRANDING_FILE).write_text('[branding]\ncolour = "#ffff00"\n', "utf-8")
    assert branding.current(settings) == settings.branding  # what it started with
    (site.root / BRANDING_FILE).write_text("[branding\n", "utf-8")
    assert branding.current(settings) == settings.branding
