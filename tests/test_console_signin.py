"""Signing in: one-time links by email (the real transport into a real SMTP server), the
`newsletter staff` commands, and OIDC against a real provider on 127.0.0.1 (oidc-provider-mock)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import werkzeug.serving
from oidc_provider_mock import app as oidc_provider
from sqlalchemy import func, select

from newsletter import staff
from newsletter.console import create_app
from newsletter.models import Event, OidcFlow, SignInToken, Staff
from newsletter.signin import digest

from .console_support import (
    STAFF,
    Clock,
    csrf_of,
    sign_in_with_link,
)
from .smtp_server import RecordingSMTPServer


@pytest.fixture
def mailed(site, monkeypatch) -> Iterator[tuple[object, RecordingSMTPServer]]:
    """(console, SMTP server): the console's transport is a recording SMTP server."""
    with RecordingSMTPServer() as server:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", server.url)
        with site.transaction() as session:
            staff.add_staff(session, STAFF["redaktor"], name="Rut Redaktör", role="redaktor")
        clock = Clock()
        app = create_app(site.settings, clock=clock)
        yield app, server, clock


def _ask(client, email: str):
    page = client.get("/logga-in")
    return client.post("/logga-in", data={"csrf": csrf_of(page.text), "email": email})


def _link_in(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://127\.0\.0\.1:8001(/logga-in/lank/[\w-]+)", body).group(1)


def test_a_link_by_email_signs_in_once(mailed):
    app, server, _clock = mailed
    client = app.test_client()
    response = _ask(client, "Redaktor@Example.se")
    assert response.status_code == 200
    assert server.wait_for(1, timeout=10)
    message = server.parsed()[0]
    assert message["To"] == STAFF["redaktor"]
    # The words are templates/email/messages/sv/signin.md, the link on a line of its own.
    assert message["Subject"] == "Logga in i personalkonsolen"
    body = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Den fungerar en gång, i 15 minuter:" in " ".join(body.split())
    assert re.search(r"(?m)^http://127\.0\.0\.1:8001/logga-in/lank/\S+$", body)
    path = _link_in(message)
    page = client.get(path)
    assert page.status_code == 200
    signed = client.post(path, data={"csrf": csrf_of(page.text)})
    assert signed.status_code == 303
    assert client.get("/").status_code == 200
    # Used once: the same link again, in another browser, signs nobody in.
    other = app.test_client()
    again = other.get(path)
    assert again.status_code == 404
    other.get("/logga-in")
    assert other.post(path, data={"csrf": csrf_of(other.get("/logga-in").text)}).status_code == 404
    assert other.get("/").status_code == 303


def test_the_answer_is_the_same_for_a_stranger_and_nothing_is_mailed(mailed, site):
    app, server, _clock = mailed
    staff_answer = _ask(app.test_client(), STAFF["redaktor"])
    stranger_answer = _ask(app.test_client(), "okand@example.se")
    assert staff_answer.status_code == stranger_answer.status_code == 200
    strip = re.compile(r'name="csrf" value="[^"]+"')
    assert strip.sub("", staff_answer.text) == strip.sub("", stranger_answer.text)
    assert server.wait_for(1, timeout=10)
    time.sleep(0.3)  # a second message, were one sent, would be here by now
    assert [m["To"] for m in server.parsed()] == [STAFF["redaktor"]]
    with site.transaction() as session:  # the same work: a token row for both
        rows = session.scalars(select(SignInToken)).all()
        assert len(rows) == 2 and sum(r.staff_id is None for r in rows) == 1


def test_links_are_stored_only_as_hashes(mailed, site):
    app, server, _clock = mailed
    _ask(app.test_client(), STAFF["redaktor"])
    assert server.wait_for(1)
    token = _link_in(server.parsed()[0]).rsplit("/", 1)[1]
    with site.transaction() as session:
        stored = [r.token_hash for r in session.scalars(select(SignInToken))]
    assert stored == [digest(token)] and token not in stored


def test_a_link_expires_after_15_minutes(console):
    token = console.link_token(STAFF["redaktor"])
    console.clock.advance(minutes=14, seconds=59)
    fresh = console.client()
    assert fresh.get(f"/logga-in/lank/{token}").status_code == 200
    late = console.link_token(STAFF["redaktor"])
    console.clock.advance(minutes=15, seconds=1)
    client = console.client()
    page = client.get(f"/logga-in/lank/{late}")
    assert page.status_code == 404
    csrf = csrf_of(client.get("/logga-in").text)
    assert client.post(f"/logga-in/lank/{late}", data={"csrf": csrf}).status_code == 404
    assert client.get("/").status_code == 303


def test_a_forged_link_signs_nobody_in(console):
    client = console.client()
    csrf = csrf_of(client.get("/logga-in").text)
    for token in ("A" * 43, "", "../../etc/passwd", "x" * 500):
        response = client.post(f"/logga-in/lank/{token}", data={"csrf": csrf})
        assert response.status_code in (401, 404)
    assert client.get("/").status_code == 303


def test_link_requests_are_rate_limited_per_address_and_per_client(mailed, site):
    app, server, clock = mailed
    limit = site.settings.console.link_requests_per_address
    answers = [_ask(app.test_client(), STAFF["redaktor"]).status_code for _ in range(limit + 2)]
    assert answers == [200] * limit + [429, 429]
    assert server.wait_for(limit)
    clock.advance(minutes=16)
    assert _ask(app.test_client(), STAFF["redaktor"]).status_code == 200
    per_client = site.settings.console.link_requests_per_client
    statuses = [_ask(app.test_client(), f"person{i}@example.se").status_code
                for i in range(per_client + 1)]
    assert statuses[-1] == 429  # one client (127.0.0.1 here), many addresses


def test_a_link_request_does_not_wait_on_the_mail_relay(mailed):
    app, server, _clock = mailed
    server.delay = 2.0
    started = time.monotonic()
    assert _ask(app.test_client(), STAFF["redaktor"]).status_code == 200
    assert time.monotonic() - started < 1.5
    assert server.wait_for(1, timeout=10)


def test_staff_commands(site):
    added = site.cli("staff", "add", "Eva.Ek@example.se", "--name", "Eva Ek", "--role", "admin")
    assert "eva.ek@example.se" in added.stdout
    listed = site.cli("staff", "list").stdout
    assert "eva.ek@example.se\tEva Ek\tadmin" in listed
    url = site.cli("staff", "login-link", "eva.ek@example.se").stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8001/logga-in/lank/[\w-]{43}", url)
    bad = site.cli("staff", "add", "x@example.se", "--name", "X", "--role", "chef", ok=False)
    assert bad.exit_code == 2
    unknown = site.cli("staff", "login-link", "nobody@example.se", ok=False)
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output
    last_admin = site.cli("staff", "remove", "eva.ek@example.se", ok=False)
    assert last_admin.exit_code == 1
    site.cli("staff", "add", "rut@example.se", "--name", "Rut", "--role", "redaktor")
    site.cli("staff", "remove", "rut@example.se")
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Staff)) == 1


def test_the_printed_link_signs_in_and_the_sign_in_is_logged(console):
    url = console.site.cli("staff", "login-link", STAFF["granskare"]).stdout.strip()
    client = console.client()
    sign_in_with_link(client, urlsplit(url).path.rsplit("/", 1)[1])
    assert client.get("/").status_code == 200
    with console.site.transaction() as session:
        events = session.scalars(select(Event).where(Event.kind == "console-signed-in")).all()
    assert [e.detail["staff"] for e in events] == [STAFF["granskare"]]


# --- OIDC -------------------------------------------------------------------------------------

@pytest.fixture
def provider() -> Iterator[str]:
    """oidc-provider-mock on a free port of 127.0.0.1, nonce required: its issuer URL."""
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider(require_nonce=True),
                                          threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def oidc_console(site, provider, monkeypatch):
    (site.root / "newsletter.toml").write_text(
        (site.root / "newsletter.toml").read_text(encoding="utf-8").replace(
            'oidc_issuer = ""', f'oidc_issuer = "{provider}"'), encoding="utf-8")
    monkeypatch.setenv("NEWSLETTER_OIDC_CLIENT_ID", "nyhetsbrev-konsol")
    monkeypatch.setenv("NEWSLETTER_OIDC_CLIENT_SECRET", "test-client-secret")
    with site.transaction() as session:
        staff.add_staff(session, STAFF["granskare"], name="Gun Granskare", role="granskare")
    app = create_app(site.settings)  # the real clock: ID tokens carry the real time
    return app, provider


def _authorize(app_client, provider: str, email: str, *, next_path: str = ""):
    """Start at the console, sign in at the provider as EMAIL: the provider's redirect back."""
    requests.put(f"{provider}/users/{quote(email)}", json={"email": email}, timeout=5)
    start = app_client.get("/logga-in/oidc" + (f"?next={quote(next_path)}" if next_path else ""))
    assert start.status_code == 303
    location = start.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    answer = requests.post(location, data={"sub": email}, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303)
    return answer.headers["Location"]


def test_oidc_signs_in_a_staff_member(oidc_console):
    app, provider = oidc_console
    client = app.test_client()
    back = _authorize(client, provider, STAFF["granskare"], next_path="/nummer/2026-12")
    response = client.get(back[back.index("/logga-in/oidc/svar"):])
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/nummer/2026-12"
    assert client.get("/nummer/2026-12").status_code == 200


def test_oidc_refuses_an_address_without_a_staff_account(oidc_console):
    app, provider = oidc_console
    client = app.test_client()
    back = _authorize(client, provider, "utomstaende@example.se")
    response = client.get(back[back.index("/logga-in/oidc/svar"):])
    assert response.status_code == 403
    assert "inte tillgång till personalkonsolen" in response.text  # sv, the default
    assert client.get("/").status_code == 303


def test_oidc_state_is_bound_to_the_browser_and_used_once(oidc_console):
    app, provider = oidc_console
    victim = app.test_client()
    back = _authorize(app.test_client(), provider, STAFF["granskare"])  # the attacker's flow
    path = back[back.index("/logga-in/oidc/svar"):]
    assert victim.get(path).status_code == 403  # login CSRF: another browser's state
    assert victim.get("/").status_code == 303
    client = app.test_client()
    back = _authorize(client, provider, STAFF["granskare"])
    path = back[back.index("/logga-in/oidc/svar"):]
    tampered = re.sub(r"state=[^&]+", "state=forged", path)
    assert client.get(tampered).status_code == 403
    assert client.get(path).status_code == 303  # the real one still works...
    assert app.test_client().get(path).status_code == 403  # ...once


def test_oidc_checks_the_nonce(oidc_console, site):
    app, provider = oidc_console
    client = app.test_client()
    back = _authorize(client, provider, STAFF["granskare"])
    with site.transaction() as session:  # as if the ID token were replayed from another flow
        for flow in session.scalars(select(OidcFlow)):
            flow.nonce = "another-nonce"
    response = client.get(back[back.index("/logga-in/oidc/svar"):])
    assert response.status_code == 403
    assert "ID-token kunde inte verifieras" in response.text
    assert client.get("/").status_code == 303
