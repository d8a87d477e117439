"""The public pages under hostile input: never a 500 for what a visitor sends (non-ASCII and
superscript digits, NUL bytes, which PostgreSQL cannot even compare), and the HTTP details:
redirects name the configured base URL, never the Host header; HSTS when the base is https."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter import links, webinars
from newsletter.models import Person
from newsletter.signing import make_token
from newsletter.web import create_app
from newsletter.web.pages import background_of

ANNA = "anna.andersson@example.se"
SAME_SITE = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def web(site):
    """(test client, site, Anna's public id) with one contact and an open webinar; the app's
    background sender is stopped afterwards."""
    with site.transaction() as session:
        anna = Person(email=ANNA, name="Anna Andersson")
        session.add(anna)
        webinars.create_webinar(
            session, site.settings, title="Bredband", slug="bredband",
            starts_at=datetime.now(UTC) + timedelta(days=30), duration_minutes=60,
            join_url="https://example.se/mote/1")
        session.flush()
        public_id = anna.public_id
    client = client_for(site.settings)
    yield client, site, public_id
    assert background_of(client.application).stop()


def client_for(settings):
    app = create_app(settings)
    app.testing = False  # errors become pages, as for a visitor
    return app.test_client()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def preferences(web) -> tuple[str, str]:
    client, site, public_id = web
    url = f"/p/{make_token(site.settings.secret_key, links.PREFERENCES, public_id)}"
    page = client.get(url)
    assert page.status_code == 200
    return url, csrf_of(page.get_data(as_text=True))


# --- tokens and form fields ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/u/ä.ä", "/u/x.²", "/p/abc.ÅÄÖ", "/u/%C2%B2.x",
                                  "/arkiv/２０２６-10", "/arkiv/2026-1%D9%A0", "/u/%00.x",
                                  "/webinar/%00", "/webinar/bred%00band", "/p/ab%00c.x"])
def test_a_hostile_path_is_a_404(web, path):
    client, _, _ = web
    assert client.get(path).status_code == 404
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code in (404, 405)


def test_a_superscript_or_non_ascii_form_token_is_a_400(web):
    client, _, _ = web
    url, token = preferences(web)
    stamp, mac = token.split(".")
    for bad in (f"{stamp}².{mac}", f"²{stamp[1:]}.{mac}", f"{stamp}.ä{mac[1:]}",
                f"{stamp[:-1]}٣.{mac}", "١٢٣.abc"):
        got = client.post(url, data={"csrf": bad, "action": "paus", "months": "1"},
                          headers=SAME_SITE)
        assert got.status_code == 400, bad


@pytest.mark.parametrize("months", ["³", "١", "1\x00", "01", " 1", "3.0", ""])
def test_a_month_count_that_only_looks_like_one_is_a_400(web, months):
    client, site, _ = web
    url, token = preferences(web)
    got = client.post(url, data={"csrf": token, "action": "paus", "months": months},
                      headers=SAME_SITE)
    assert got.status_code == 400
    with site.transaction() as session:
        assert session.scalar(select(Person.paused_until).where(Person.email == ANNA)) is None


def test_the_real_form_still_works(web):
    client, site, _ = web
    url, token = preferences(web)
    got = client.post(url, data={"csrf": token, "action": "paus", "months": "3"},
                      headers=SAME_SITE)
    assert got.status_code == 303
    with site.transaction() as session:
        assert session.scalar(select(Person.paused_until).where(Person.email == ANNA))


@pytest.mark.parametrize("address", [f"{ANNA}\x00", "anna\x00@example.se", "²@example.se",
                                     "anna@exämple\x00.se"])
def test_a_registration_with_a_nul_or_odd_digits_is_not_a_500(web, address):
    client, _, _ = web
    token = csrf_of(client.get("/webinar/bredband").get_data(as_text=True))
    got = client.post("/webinar/bredband", data={"csrf": token, "email": address},
                      headers=SAME_SITE)
    assert got.status_code in (303, 400)


def test_a_nul_in_a_field_name_or_query_is_a_400(web):
    client, _, _ = web
    token = csrf_of(client.get("/webinar/bredband").get_data(as_text=True))
    got = client.post("/webinar/bredband", data={"csrf": token, "email": ANNA, "x\x00": "1"},
                      headers=SAME_SITE)
    assert got.status_code == 400
    assert client.get("/arkiv/?q=\x00").status_code == 400


# --- redirects and HSTS -------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example.org", "127.0.0.1:8000", "internal-proxy:8080"])
def test_the_slash_redirect_names_the_base_url_not_the_host_header(web, host):
    client, site, _ = web
    got = client.get("/arkiv", headers={"Host": host})
    assert got.status_code == 308
    assert got.headers["Location"] == links.archive_url(site.settings)
    got = client.get("/arkiv?sida=2", base_url=f"http://{host}")
    assert got.headers["Location"] == links.archive_url(site.settings) + "?sida=2"


def test_a_base_url_with_a_path_keeps_it_in_the_redirect(site):
    settings = replace(site.settings, organisation=replace(
        site.settings.organisation, base_url="https://www.example.se/nyhetsbrev/"))
    got = client_for(settings).get("/arkiv", headers={"Host": "evil.example.org"})
    assert got.headers["Location"] == "https://www.example.se/nyhetsbrev/arkiv/"


def test_our_own_redirects_stay_relative(web):
    client, _, _ = web
    url, token = preferences(web)
    got = client.post(url, data={"csrf": token, "action": "aterupptaget"}, headers=SAME_SITE)
    assert got.status_code == 303 and got.headers["Location"].startswith("/p/")


def test_hsts_is_sent_when_the_base_url_is_https(web):
    client, site, _ = web
    assert site.settings.organisation.base_url.startswith("https://")
    for path in ("/arkiv/", "/arkiv", "/webinar/bredband", "/no-such-page"):
        assert client.get(path).headers["Strict-Transport-Security"] == "max-age=31536000"


def test_no_hsts_when_the_base_url_is_plain_http(site):
    settings = replace(site.settings, organisation=replace(
        site.settings.organisation, base_url="http://localhost:8000"))
    got = client_for(settings).get("/arkiv/")
    assert got.status_code == 200 and "Strict-Transport-Security" not in got.headers


# --- the staff console --------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/kontakter?q=a%00b", "/kontakter?q=%00", "/?x=%00",
                                  "/kontakter/%00"])
def test_a_nul_sent_to_the_console_is_a_400_or_404_not_a_500(console, path):
    # PostgreSQL refuses to compare a NUL (a contact search with one was a 500 there).
    client = console.signed_in("redaktor")
    assert client.get(path).status_code == (404 if "/%00" in path else 400)
    assert client.get("/kontakter?q=anna").status_code == 200
