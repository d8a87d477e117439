"""What every console request shares: settings, database sessions, the clock, the mail thread,
the background sender; and the small helpers views use (the request's database session,
rendering, the audit log, `send_later`: a request never sends mail itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, g, render_template, request
from sqlalchemy.orm import Session, sessionmaker

from .. import dates
from ..background import BackgroundSender
from ..events import EventKind, log_event
from ..settings import Settings
from .mailer import LinkMailer
from .oidc import OidcClient


@dataclass
class ConsoleContext:
    settings: Settings
    sessions: sessionmaker[Session]
    writers: sessionmaker[Session]  # read-then-write transactions, one at a time (db.writer)
    clock: Callable[[], datetime]
    mailer: LinkMailer
    oidc: OidcClient | None  # None: no [console] oidc_issuer, or no client id
    background: BackgroundSender  # sends what requests recorded (test copies), fetches feeds


def context() -> ConsoleContext:
    return current_app.extensions["newsletter-console"]


def background_of(app: Flask) -> BackgroundSender:
    """APP's background sender: `newsletter console` starts and stops it, tests wait for it."""
    return app.extensions["newsletter-console"].background


def send_later(mailing_ids: list[int] | tuple[int, ...] = ()) -> None:
    """Send MAILING_IDS (created by this request, which commits first) in the background; with
    none, wake the background tasks (e.g. a fetch of the feeds was asked for). Returns at once."""
    context().background.submit(mailing_ids)


def settings() -> Settings:
    return context().settings


def now() -> datetime:
    """The console's clock (injectable in create_app, for tests of expiry)."""
    return context().clock()


def utc_now() -> datetime:
    return datetime.now(UTC)


def db() -> Session:
    """The request's database session, committed when the request succeeds: a writer for a
    POST, or for a GET that calls `writes()` first (the OIDC return, which starts a session)."""
    if "db" not in g:
        ctx = context()
        writer = request.method == "POST" or g.get("writes", False)
        g.db = (ctx.writers if writer else ctx.sessions)()
        g.db.begin()
    return g.db


def writes() -> None:
    """Declare that this GET request writes (before its first db())."""
    g.writes = True


def signed_in():
    """The request's SignedIn (staff member, session id), or None."""
    return g.get("signed_in")


def audit(kind: EventKind, **detail: Any) -> None:
    """Record a change made in the console in the event log, with who made it.

    kind: one of EventKind's CONSOLE_ members ("console-" and a short verb).
    """
    who = signed_in()
    log_event(db(), kind, staff=who.staff.email if who else None, **detail)


def page(template: str, status: int = 200, **values: Any) -> Response:
    """Render templates/console/TEMPLATE."""
    body = render_template(f"console/{template}", org=settings().organisation,
                           me=signed_in(), **values)
    return Response(body, status=status, mimetype="text/html")


def _zone():
    return ZoneInfo(settings().organisation.timezone)


def swedish_date(value: date) -> str:
    """'3 mars 2026' (dates.py: one way everywhere, in the site's language)."""
    return dates.day(value)


def swedish_datetime(value: datetime) -> str:
    """E.g. "3 mars 2026 kl. 10.00" in the organisation's time zone."""
    return dates.moment(value, _zone(), with_weekday=False)


def swedish_month(month: str) -> str:
    """'2026-03' -> 'mars 2026'."""
    return dates.month(month)


def this_month() -> str:
    return now().astimezone(_zone()).strftime("%Y-%m")


def today() -> date:
    """The console's date in the organisation's time zone."""
    return now().astimezone(_zone()).date()
