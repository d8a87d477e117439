"""The console's rules for every route: sign-in, roles, CSRF, sessions, next=, headers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter import signin, staff
from newsletter.console import access, create_app
from newsletter.models import ConsoleSession, Event
from newsletter.signin import digest
from newsletter.web import create_app as public_app

from .console_support import (
    BASE,
    ROLES,
    STAFF,
    Clock,
    csrf_for,
    sign_in_with_link,
)

ITEM = "07-kommuninvest-rantebesked"
# Every endpoint and who may use it: a new route must be added here (and so thought about).
EXPECTED = {
    "asset": "public",
    "signin.sign_in": "public", "signin.ask_for_link": "public", "signin.link": "public",
    "signin.use_link": "public", "signin.oidc_begin": "public", "signin.oidc_return": "public",
    "signin.sign_out": "redaktor",
    "dashboard.index": "redaktor",
    "compose.new_month": "redaktor", "compose.show": "redaktor", "compose.save": "redaktor",
    "compose.move": "redaktor", "compose.markdown_preview": "redaktor",
    "items.new": "redaktor", "items.edit": "redaktor", "items.create": "redaktor",
    "items.update": "redaktor", "items.delete": "redaktor",
    "preview.show": "redaktor", "preview.email_html": "redaktor", "preview.web_html": "redaktor",
    "preview.test_send": "redaktor",
    "inbox.index": "redaktor", "inbox.decide": "redaktor", "inbox.remiss": "redaktor",
    "inbox.fetch": "redaktor",
    "statistics.index": "redaktor", "statistics.mailing": "redaktor",
    "statistics.year_document": "redaktor",
    "media.image": "redaktor",
    "staff.index": "admin", "staff.save": "admin", "staff.remove": "admin",
    "branding.show": "admin", "branding.sample": "admin", "branding.save": "admin",
    # The register: everyone reads, a granskare (or admin) changes (console/contacts_pages.py).
    "contacts.index": "redaktor", "contacts.person": "redaktor", "contacts.claims": "redaktor",
    "contacts.vacancies": "redaktor", "contacts.end_role": "granskare",
    "contacts.hand_over": "granskare", "contacts.save_areas": "granskare",
    "contacts.decide": "granskare",
    # The workflow (console/review_pages.py, mailings_pages.py, webinar_pages.py): anyone
    # submits, composes a webinar and follows the mailings; a granskare (or admin) approves,
    # sends back, sends, pauses, resumes, cancels, and mails a webinar's registered.
    "review.issue_submit": "redaktor", "review.issue_approve": "granskare",
    "review.issue_send_back": "granskare", "review.issue_send": "granskare",
    "review.webinar_submit": "redaktor", "review.webinar_approve": "granskare",
    "review.webinar_send_back": "granskare", "review.webinar_send": "granskare",
    "mailings.index": "redaktor", "mailings.show": "redaktor", "mailings.pause": "granskare",
    "mailings.resume": "granskare", "mailings.cancel": "granskare",
    "webinars.index": "redaktor", "webinars.create": "redaktor", "webinars.show": "redaktor",
    "webinars.update": "redaktor", "webinars.cancel": "granskare",
    "webinars.followup": "granskare",
}
ARGS = {"month": "2026-12", "item_id": ITEM, "token": "x" * 43, "name": "console.css",
        "entry_id": 1, "mailing_id": 1, "year": 2026,
        "public_id": "x" * 22, "slug": "bredband"}
RANK = {role: i for i, role in enumerate(ROLES)}


def _routes(app):
    for rule in app.url_map.iter_rules():
        url = rule.build({k: ARGS[k] for k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_every_route_declares_who_may_use_it(console):
    declared = {e: access.access_of(console.app, e) for e in console.app.view_functions}
    assert declared == EXPECTED


def test_an_undeclared_view_stops_the_app(console):
    console.app.view_functions["sneaky"] = lambda: "hi"
    with pytest.raises(RuntimeError, match="sneaky"):
        access.check_declared(console.app)


def test_unauthenticated_requests_get_the_sign_in_page_or_401(console):
    client = console.client()
    for endpoint, method, url in _routes(console.app):
        response = client.open(url, method=method)
        if EXPECTED[endpoint] == "public":
            assert response.status_code not in (401, 403) or method == "POST", (url, method)
            continue
        if method == "GET":
            assert response.status_code == 303, (url, response.status_code)
            assert response.headers["Location"].startswith("/logga-in"), url
        else:
            assert response.status_code == 401, (url, method, response.status_code)
    # Also a URL that does not exist: strangers learn nothing about the URL map.
    assert client.get("/nummer/2026-12/hemligt").status_code == 303
    assert client.post("/finns-inte").status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_it_may(console, role):
    for endpoint, method, url in _routes(console.app):
        needed = EXPECTED[endpoint]
        if needed == "public":
            continue
        client = console.signed_in(role)  # a fresh session: a POST may sign out or delete
        data = {"csrf": csrf_for(client)} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        allowed = RANK[role] >= RANK[needed]
        if allowed:
            assert response.status_code not in (401, 403), (role, url, method, response.text)
        else:
            assert response.status_code == 403, (role, url, method, response.status_code)


def test_every_post_needs_the_session_csrf_token(console):
    client = console.signed_in("admin")
    other = console.signed_in("admin")
    foreign = csrf_for(other)  # a valid token, of another session
    for endpoint, method, url in _routes(console.app):
        if method != "POST" or EXPECTED[endpoint] == "public":
            continue
        assert client.post(url).status_code == 403, url
        assert client.post(url, data={"csrf": foreign}).status_code == 403, url
        assert client.post(url, data={"csrf": "0" * 64}).status_code == 403, url


def test_a_cross_site_post_is_refused_even_with_the_token(console):
    client = console.signed_in("redaktor")
    token = csrf_for(client)
    response = client.post("/nummer/2026-12/ordning", data={
        "csrf": token, "item": ITEM, "direction": "up"},
        headers={"Origin": "https://evil.example.org", "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    for endpoint, method, url in _routes(console.app):  # every other form too
        if method == "POST" and EXPECTED[endpoint] != "public":
            response = client.post(url, data={"csrf": token}, headers={
                "Origin": "https://evil.example.org", "Sec-Fetch-Site": "cross-site"})
            assert response.status_code == 403, url


def test_sign_in_forms_need_the_browsers_pre_sign_in_token(console):
    client = console.client()
    token = console.link_token(STAFF["redaktor"])
    assert client.post(f"/logga-in/lank/{token}").status_code == 403
    assert client.post("/logga-in", data={"email": STAFF["redaktor"]}).status_code == 403
    # The token of another browser does not do either.
    stranger = console.client()
    foreign = csrf_for(stranger, "/logga-in")
    client.get("/logga-in")
    assert client.post(f"/logga-in/lank/{token}", data={"csrf": foreign}).status_code == 403


def test_session_fixation_a_planted_cookie_is_replaced_at_sign_in(console):
    client = console.client()
    client.set_cookie("nl_console", "planted-by-the-attacker-0123456789")
    attacker_session = "planted-by-the-attacker-0123456789"
    sign_in_with_link(client, console.link_token(STAFF["redaktor"]))
    cookie = client.get_cookie("nl_console")
    assert cookie.value != attacker_session
    attacker = console.client()
    attacker.set_cookie("nl_console", attacker_session)
    assert attacker.get("/").status_code == 303


def test_a_new_sign_in_gives_a_new_session_id_and_ends_the_old_one(console):
    client = console.signed_in("redaktor")
    first = client.get_cookie("nl_console").value
    sign_in_with_link(client, console.link_token(STAFF["redaktor"]))
    second = client.get_cookie("nl_console").value
    assert first != second
    with console.site.transaction() as session:
        hashes = set(session.scalars(select(ConsoleSession.session_hash)))
    assert digest(first) not in hashes and digest(second) in hashes


def test_the_cookie_is_httponly_samesite_lax_and_only_a_hash_is_stored(console):
    client = console.client()
    response = sign_in_with_link(client, console.link_token(STAFF["redaktor"]))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("nl_console=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http:// base URL; see the https test
    value = client.get_cookie("nl_console").value
    with console.site.transaction() as session:
        rows = session.scalars(select(ConsoleSession)).all()
    assert [r.session_hash for r in rows] == [digest(value)]


def test_over_https_the_cookie_is_secure_and_host_only(site, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_CONSOLE_URL", "https://konsol.example.se")
    with site.transaction() as session:
        staff.add_staff(session, "eva@example.se", name="Eva", role="admin")
    clock = Clock()
    app = create_app(site.settings, clock=clock)
    client = app.test_client()
    with site.transaction() as session:
        token = signin.issue_link_token(session, site.settings,
                                        staff.find_staff(session, "eva@example.se"),
                                        now=clock())
    page = client.get(f"/logga-in/lank/{token}", base_url="https://konsol.example.se")
    assert page.status_code == 200, page.text
    assert "__Host-nl_console_pre=" in page.headers["Set-Cookie"]
    assert "Secure" in page.headers["Set-Cookie"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(f"/logga-in/lank/{token}", data={"csrf": csrf},
                           base_url="https://konsol.example.se")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-nl_console=") and "Secure" in cookie
    assert "Strict-Transport-Security" in response.headers


def test_a_session_ends_after_eight_hours_idle(console):
    client = console.signed_in("redaktor")
    console.clock.advance(hours=7, minutes=59)
    assert client.get("/").status_code == 200  # still in: and this request counts as activity
    console.clock.advance(hours=7, minutes=59)
    assert client.get("/").status_code == 200
    console.clock.advance(hours=8, minutes=1)
    response = client.get("/")
    assert response.status_code == 303
    assert "nl_console=;" in response.headers.get("Set-Cookie", "")


def test_sign_out_is_a_post_and_ends_the_session(console):
    client = console.signed_in("redaktor")
    value = client.get_cookie("nl_console").value
    assert client.get("/logga-ut").status_code == 405
    response = client.post("/logga-ut", data={"csrf": csrf_for(client)})
    assert response.status_code == 303
    replay = console.client()
    replay.set_cookie("nl_console", value)
    assert replay.get("/").status_code == 303
    with console.site.transaction() as session:
        kinds = [e.kind for e in session.scalars(select(Event).order_by(Event.id))]
    assert "console-signed-in" in kinds and "console-signed-out" in kinds


@pytest.mark.parametrize("target", [
    "https://evil.example.org/", "//evil.example.org/", "/\\evil.example.org",
    "\\\\evil.example.org",
    "http:/evil.example.org", "javascript:alert(1)", "/logga-in", "/finns-inte",
    " /nummer/2026-12", "/nummer/2026-12\r\nLocation: https://evil.example.org",
])
def test_next_goes_only_to_a_console_page(console, target):
    client = console.client()
    response = sign_in_with_link(client, console.link_token(STAFF["redaktor"]), target)
    assert response.headers["Location"] == "/"


def test_next_to_a_console_page_is_followed(console):
    client = console.client()
    start = client.get("/nummer/2026-12?x=1")
    assert start.headers["Location"] == "/logga-in?next=%2Fnummer%2F2026-12%3Fx%3D1"
    page = client.get(start.headers["Location"])
    assert 'name="next" value="/nummer/2026-12?x=1"' in page.text
    response = sign_in_with_link(client, console.link_token(STAFF["redaktor"]),
                                 "/nummer/2026-12?x=1")
    assert response.headers["Location"] == "/nummer/2026-12?x=1"


def test_security_headers_on_every_page(console):
    client = console.signed_in("admin")
    for path in ("/", "/logga-in", "/nummer/2026-12", "/personal"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
    frame = client.get("/nummer/2026-12/forhandsgranska/epost").headers
    assert "script" not in frame["Content-Security-Policy"].replace("default-src 'none'", "")
    assert frame["X-Frame-Options"] == "SAMEORIGIN"


def test_the_console_and_the_public_pages_share_no_cookie(console):
    public = public_app(console.site.settings).test_client()
    for path in ("/arkiv/", "/"):
        assert "Set-Cookie" not in public.get(path).headers
    client = console.signed_in("redaktor")
    cookie = client.get_cookie("nl_console").value
    public.set_cookie("nl_console", cookie)
    assert public.get("/arkiv/").status_code == 200  # it means nothing there
    assert not any(rule.rule.startswith(("/logga-in", "/nummer", "/personal"))
                   for rule in public_app(console.site.settings).url_map.iter_rules())
    assert BASE.endswith(":8001")
