"""Registrations asked for on the public webinar page: recorded by the request, handled in the
background.

The page must not tell who is a contact, not even by how long it takes (issue 17). So the
request does the same work for every well-formed address: `record` looks the address up (one
indexed query for a person's id, found or not) and inserts one `signups` row (with that id, or
none), the request commits, wakes the background sender and answers. What the address is (an
active contact, already registered, unsubscribed, on the suppression list, unknown) matters
only afterwards, in `handle_pending` (a task of background.BackgroundSender, also for a
worker): it registers an active contact through `webinars.register` (dated when the request
came), returns the confirmation's mailing id for the sender, and deletes the row. Anyone else
gets nothing, today; open registration for others (confirm by email, "The register follows
reality") is the branch marked in `_handle`, and the row is where it would keep what it needs.

No address is stored: a row names a person by id (erasure deletes it with the person) or no one.
Each row is handled in its own transaction and deleted in it, so two processes (a worker,
another web process) never handle one twice: the second finds it gone, or waits for its lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import db, webinars
from .errors import NewsletterError
from .events import is_suppressed
from .models import Person, Signup, Webinar
from .settings import Settings

BATCH = 100  # sign-ups handled per round


def record(session: Session, webinar: Webinar, email: str, *,
           now: datetime | None = None) -> None:
    """Record that EMAIL (normalised) asked to register for WEBINAR: one lookup and one insert,
    the same whoever it is."""
    person_id = session.scalar(select(Person.id).where(Person.email == email))
    session.add(Signup(webinar_id=webinar.id, person_id=person_id,
                       created_at=now or datetime.now(UTC)))


def handle_pending(settings: Settings, writers: sessionmaker[Session]) -> list[int]:
    """Handle the sign-ups recorded so far (up to BATCH), each in its own transaction; the ids of
    the mailings they caused (confirmations), to be sent."""
    with writers() as s:
        ids = list(s.scalars(select(Signup.id).order_by(Signup.id).limit(BATCH)))
    mailings: list[int] = []
    for signup_id in ids:
        with db.transaction(writers) as s:
            signup = s.scalar(select(Signup).where(Signup.id == signup_id).with_for_update())
            if signup is None:
                continue  # another process handled it
            mailings += _handle(s, settings, signup)
            s.delete(signup)
    return mailings


def _handle(session: Session, settings: Settings, signup: Signup) -> list[int]:
    webinar = session.get(Webinar, signup.webinar_id)
    person = session.get(Person, signup.person_id) if signup.person_id is not None else None
    if (webinar is None or person is None or person.status != "active"
            or is_suppressed(session, settings.secret_key, person.email)):
        return []  # open registration for others (confirm by email) belongs here
    try:
        outcome = webinars.register(session, settings, webinar, person, now=signup.created_at)
    except NewsletterError:
        return []  # closed (cancelled, started) since the request: the page said so already
    return outcome.mailings
