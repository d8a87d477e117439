"""The personal pages through the test client: unsubscribe, tokens, headers, cross-site posts."""

from __future__ import annotations

import string

import pytest
from sqlalchemy import select

from newsletter import links
from newsletter.models import Person, Suppression
from newsletter.signing import make_token

from .helpers import (
    ANNA,
    BERTIL,
    SAME_SITE,
    check_page,
    csrf_of,
    events,
    person,
    snapshot,
    token,
)

SCANNERS = [
    {"User-Agent": "Mozilla/5.0 (compatible; Microsoft Office Protocol Discovery)"},
    {"User-Agent": "BarracudaCentral Link Scanner"},
    {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) SafeLinks", "Accept": "*/*"},
    {"User-Agent": "Googlebot-Image/1.0", "Referer": "https://outlook.office.com/"},
    {"User-Agent": "curl/8.5.0", "Origin": "https://evil.example.org"},
]


# --- scanners ----------------------------------------------------------------------------------

def test_a_storm_of_scanner_gets_and_heads_changes_nothing(web):
    client, site = web
    before = snapshot(site)
    urls = [f"/u/{token(site, links.UNSUBSCRIBE)}", f"/p/{token(site, links.PREFERENCES)}"]
    for round_ in range(5):
        for url in urls:
            for headers in SCANNERS:
                for target in (url, f"{url}?utm_source=safelinks&r={round_}",
                               f"{url}?List-Unsubscribe=One-Click", f"{url}?sparat=avregistrerad"):
                    got = client.get(target, headers=headers)
                    assert got.status_code == 200
                    assert got.headers["Cache-Control"] == "no-store"
                    head = client.head(target, headers=headers)
                    assert head.status_code == 200 and head.data == b""
    assert snapshot(site) == before
    assert person(site).status == "active"


def test_the_unsubscribe_page_asks_and_posts_with_a_button(web):
    client, site = web
    page = client.get(f"/u/{token(site, links.UNSUBSCRIBE)}").get_data(as_text=True)
    assert ANNA in page
    assert '<form method="post">' in page
    assert 'type="submit"' in page and "avregistrera mig" in page


# --- RFC 8058 one-click ------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rfc8058_one_click_post_unsubscribes_with_200_and_no_redirect(web, encoding):
    client, site = web
    url = f"/u/{token(site, links.UNSUBSCRIBE)}"
    if encoding == "urlencoded":
        send = {"data": "List-Unsubscribe=One-Click",
                "content_type": "application/x-www-form-urlencoded"}
    else:
        send = {"data": {"List-Unsubscribe": "One-Click"}, "content_type": "multipart/form-data"}
    client._cookies.clear()
    first = client.post(url, **send)
    assert first.status_code == 200
    assert "Location" not in first.headers and "Set-Cookie" not in first.headers
    assert person(site).status == "unsubscribed"
    with site.transaction() as session:
        assert session.scalar(select(Suppression.reason)) == "unsubscribed"
    again = client.post(url, **send)
    assert again.status_code == 200
    logged = events(site, "unsubscribed")
    assert len(logged) == 1 and logged[0].detail == {"source": "one-click"}
    assert person(site, BERTIL).status == "active"


def test_the_button_post_unsubscribes_and_redirects_to_the_confirmation(web):
    client, site = web
    url = f"/u/{token(site, links.UNSUBSCRIBE)}"
    form = csrf_of(client.get(url).get_data(as_text=True))
    done = client.post(url, data={"csrf": form}, headers=SAME_SITE)
    assert done.status_code == 303 and done.headers["Location"] == url
    assert person(site).status == "unsubscribed"
    assert [e.detail for e in events(site, "unsubscribed")] == [{"source": "web"}]
    page = client.get(url).get_data(as_text=True)
    assert "Du är avregistrerad" in page and "<form" not in page
    assert client.post(url, data={"csrf": form}, headers=SAME_SITE).status_code == 303
    assert len(events(site, "unsubscribed")) == 1


@pytest.mark.parametrize("case", [
    "no body", "wrong one-click value", "forged csrf", "csrf of another person",
    "csrf of the preferences form", "expired csrf"])
def test_a_post_without_one_click_or_a_valid_form_token_is_refused(web, case):
    client, site = web
    url = f"/u/{token(site, links.UNSUBSCRIBE)}"
    secret = site.settings.secret_key
    from newsletter.web.csrf import make_form_token

    data = {
        "no body": {},
        "wrong one-click value": {"List-Unsubscribe": "one-click please"},
        "forged csrf": {"csrf": "1700000000." + "0" * 64},
        "csrf of another person": {"csrf": make_form_token(
            secret, f"u:{person(site, BERTIL).public_id}")},
        "csrf of the preferences form": {"csrf": make_form_token(
            secret, f"p:{person(site).public_id}")},
        "expired csrf": {"csrf": make_form_token(secret, f"u:{person(site).public_id}",
                                                 now=1_000_000_000)},
    }[case]
    before = snapshot(site)
    got = client.post(url, data=data, headers=SAME_SITE)
    assert got.status_code in (400, 403)
    assert snapshot(site) == before


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example.org"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "null"},
    {"Referer": "https://evil.example.org/page"},
])
def test_cross_site_form_posts_are_refused(web, headers):
    client, site = web
    for url, kind, extra in (
            (f"/u/{token(site, links.UNSUBSCRIBE)}", "u", {}),
            (f"/p/{token(site, links.PREFERENCES)}", "p", {"action": "avregistrerad"})):
        form = csrf_of(client.get(url).get_data(as_text=True))
        before = snapshot(site)
        got = client.post(url, data={"csrf": form, **extra}, headers=headers)
        assert got.status_code == 403, (kind, headers)
        assert "annan webbplats" in got.get_data(as_text=True)
        assert snapshot(site) == before


def test_same_origin_posts_are_accepted_with_the_sites_own_origin(web):
    client, site = web
    url = f"/u/{token(site, links.UNSUBSCRIBE)}"
    form = csrf_of(client.get(url).get_data(as_text=True))
    got = client.post(url, data={"csrf": form},
                      headers={"Origin": "https://nyhetsbrev.example.se"})
    assert got.status_code == 303
    assert person(site).status == "unsubscribed"


# --- tokens ------------------------------------------------------------------------------------

def _flips(text: str):
    alphabet = string.ascii_letters + string.digits + "-_."
    for i, char in enumerate(text):
        yield text[:i] + alphabet[(alphabet.index(char) + 1) % len(alphabet)] + text[i + 1:]


def test_every_bad_token_gets_the_same_404_page(web):
    client, site = web
    reference = client.get("/u/nonsense")
    assert reference.status_code == 404
    body = reference.data
    assert "Sidan finns inte" in reference.get_data(as_text=True)
    good_u, good_p = token(site, links.UNSUBSCRIBE), token(site, links.PREFERENCES)
    other_secret = make_token(b"another-secret-key-entirely", links.UNSUBSCRIBE,
                              person(site).public_id)
    unknown_id = make_token(site.settings.secret_key, links.UNSUBSCRIBE, "x" * 22)
    bad = ([f"/u/{t}" for t in _flips(good_u)] + [f"/p/{t}" for t in _flips(good_p)] + [
        f"/p/{good_u}", f"/u/{good_p}",                          # the wrong purpose
        f"/u/{other_secret}", f"/u/{unknown_id}",
        f"/u/{good_u[:-1]}", f"/u/{good_u}A", f"/u/{good_u.split('.')[0]}", f"/u/.{good_u}",
        "/u/.", "/u/%00", "/p/a.b.c", "/u/" + "A" * 500, "/finns-inte",
    ])
    before = snapshot(site)
    for url in bad:
        for method in ("get", "post"):
            got = getattr(client, method)(url, data={"List-Unsubscribe": "One-Click"})
            assert got.status_code == 404, (method, url)
            assert got.data == body, url
    assert snapshot(site) == before
    assert client.get(f"/u/{good_u}").status_code == 200


def test_an_erased_persons_token_is_404_and_unsubscribe_tokens_never_expire(web):
    client, site = web
    old = make_token(site.settings.secret_key, links.UNSUBSCRIBE, person(site).public_id)
    reference = client.get("/u/nonsense").data
    assert client.get(f"/u/{old}").status_code == 200  # no date in the token: it never expires
    with site.transaction() as session:
        session.scalar(select(Person).where(Person.email == ANNA)).status = "erased"
    for url in (f"/u/{old}", f"/p/{token(site, links.PREFERENCES)}"):
        got = client.get(url)
        assert got.status_code == 404 and got.data == reference


# --- headers and markup ------------------------------------------------------------------------

def test_personal_pages_are_swedish_labelled_and_send_safe_headers(web):
    client, site = web
    for url in (f"/u/{token(site, links.UNSUBSCRIBE)}", f"/p/{token(site, links.PREFERENCES)}",
                "/u/nonsense"):
        got = client.get(url)
        check_page(got)
        assert got.headers["Cache-Control"] == "no-store"
        assert 'name="viewport"' in got.get_data(as_text=True)
        assert "noindex" in got.get_data(as_text=True)
    css = client.get("/static/site.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert b":focus-visible" in css.data


def test_other_errors_are_swedish_pages(web):
    client, site = web
    url = f"/u/{token(site, links.UNSUBSCRIBE)}"
    wrong_method = client.put(url)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    assert "Metoden stöds inte" in wrong_method.get_data(as_text=True)
    too_big = client.post(url, data={"List-Unsubscribe": "One-Click", "x": "y" * 100_000})
    assert too_big.status_code == 413
    assert person(site).status == "active"
    check_page(wrong_method)
