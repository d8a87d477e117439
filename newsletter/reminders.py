"""Webinar reminders that go by themselves: `[webinars] reminders = ["1d", "1h"]`, sent by the
worker to those registered at that moment.

Each lead time has a window: from the start minus the lead until the start minus the next
shorter lead (the shortest: until the start). A reminder is due while the worker's clock is in
its window, and goes once per webinar and lead: its mailing (`SLUG:remind-day` for "1d",
`SLUG:remind-hour` for "1h", the same mailings as `webinar remind --when day|hour`, else
`SLUG:remind-LEAD`) is created to the segment `registered:SLUG` when the window opens, with the
persons registered then, and a mailing that exists is never made again. So someone who
registers after the day-before reminder still gets the hour-before one, and a worker that was
down through a whole window skips that reminder rather than send "tomorrow" an hour before.
A cancelled webinar, or one that has started, gets none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .kinds import webinar as messages
from .models import MailingKind, Webinar
from .outbox import creating
from .settings import Lead, Settings

_NAMED = {86400: "remind-day", 3600: "remind-hour"}  # the manual `webinar remind --when`


def what(lead: Lead) -> str:
    """The message name of LEAD's reminder (the tail of its mailing's source key)."""
    return _NAMED.get(lead.seconds, f"remind-{lead.text}")


def due(session: Session, settings: Settings, now: datetime) -> list[tuple[Webinar, Lead]]:
    """The (webinar, lead) reminders whose window NOW is in (see the module), soonest first."""
    leads = sorted(settings.worker.reminders, key=lambda lead: -lead.seconds)
    if not leads:
        return []
    horizon = now + timedelta(seconds=leads[0].seconds)
    found = []
    for webinar in session.scalars(select(Webinar).where(
            Webinar.status == "scheduled", Webinar.starts_at > now,
            Webinar.starts_at <= horizon).order_by(Webinar.starts_at, Webinar.id)):
        for i, lead in enumerate(leads):
            opens = webinar.starts_at - timedelta(seconds=lead.seconds)
            shorter = leads[i + 1].seconds if i + 1 < len(leads) else 0
            closes = webinar.starts_at - timedelta(seconds=shorter)
            if opens <= now < closes:
                found.append((webinar, lead))
    return found


def create_due(session: Session, settings: Settings, now: datetime) -> list[int]:
    """Create the mailing of each due reminder not made before; their ids (the caller sends
    them after its commit)."""
    created = []
    for webinar, lead in due(session, settings, now):
        source = messages.to_registered(settings, webinar, what(lead), now=now)
        segment = f"registered:{webinar.slug}"
        if creating.find_mailing(session, MailingKind.WEBINAR, source.key, segment) is not None:
            continue
        created.append(creating.create_mailing(session, settings, source, segment).mailing.id)
    return created
