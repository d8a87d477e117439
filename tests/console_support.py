"""Shared pieces of the console tests: the app on a test site with a settable clock, staff
members of each role, and signing in through the real one-time link. The `console` fixture
(conftest.py) builds a Console."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from newsletter import signin, staff
from newsletter.console import create_app
from newsletter.console.context import background_of

ROLES = ("redaktor", "granskare", "admin")
STAFF = {role: f"{role}@example.se" for role in ROLES}
BASE = "http://127.0.0.1:8001"  # the default console.base_url


@dataclass
class Clock:
    """The console's time, moved on by tests instead of sleeping."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Console:
    site: object
    app: object
    clock: Clock

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def link_token(self, email: str) -> str:
        with self.site.transaction() as session:
            member = staff.find_staff(session, email)
            return signin.issue_link_token(session, self.site.settings, member,
                                           now=self.clock())

    def signed_in(self, role: str) -> FlaskClient:
        """A client signed in as the staff member of ROLE, through a one-time link."""
        client = self.client()
        sign_in_with_link(client, self.link_token(STAFF[role]))
        return client


def start_console(site) -> Console:
    """The console app of SITE (its settings as they are now) with one staff member of each
    role; `stop_console` afterwards stops its background sender."""
    with site.transaction() as session:
        for role, email in STAFF.items():
            staff.add_staff(session, email, name=f"Test {role}", role=role)
    clock = Clock()
    app = create_app(site.settings, clock=clock)
    app.testing = True
    return Console(site, app, clock)


def stop_console(console: Console) -> None:
    assert background_of(console.app).stop(), "the console's background sender did not stop"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no form with a csrf field"
    return match.group(1)


def sign_in_with_link(client: FlaskClient, token: str, next_path: str = "/"):
    page = client.get(f"/logga-in/lank/{token}")
    assert page.status_code == 200, page.text
    response = client.post(f"/logga-in/lank/{token}",
                           data={"csrf": csrf_of(page.text), "next": next_path})
    assert response.status_code == 303, response.text
    return response


def csrf_for(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the client's session (read from a page's form)."""
    return csrf_of(client.get(path).text)
