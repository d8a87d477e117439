"""Retention: personal traces older than `[retention]` says are anonymised; the counts stay.

Two kinds of trace name a person without being the register itself:

* the event log (imported, updated, unsubscribed, bounced, position_started ...): an event
  older than `events_days` loses its person (person_id NULL). The event stays, so counts by
  kind and month stay right; its detail never holds personal data (events.log_event).
* the outbox, one row per recipient of each mailing: the rows of a mailing finished more than
  `outbox_days` ago lose their person, their Message-ID (which holds the person's public id) and any
  error text; a variant frozen for one person (a calendar invite names its attendee) is deleted; a
  test mailing's address goes (outbox.forgetting.anonymise_finished). Each row keeps its state, so
  `send status` shows the same counts as before.

A finished mailing is done once and marked in its meta ("retained"); events are done up to a
watermark kept in site_meta, so a round of the worker costs a few small queries however large
the history is. The price: once a mailing is anonymised, "nobody gets the same issue twice"
cannot tell who got it (a re-send of a two-year-old issue reaches everyone again).

Unconfirmed sign-ups go here too: a sign-up whose confirmation link expired (`[register]
confirm_days`) is deleted, with the pending person it made (signups.purge_expired).

Erasure (contacts.forget) is separate and immediate; retention is for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from .events import EventKind, log_event
from .models import Event, SiteMeta
from .outbox import forgetting
from .settings import Settings
from .signups import purge_expired

_EVENTS_UNTIL = "retention_events_until"  # site_meta: events before this are done


@dataclass
class RetentionReport:
    events: int = 0  # events that lost their person
    mailings: int = 0  # finished mailings anonymised
    rows: int = 0  # outbox rows that lost their person
    variants: int = 0  # variants frozen for one person, deleted
    signups: int = 0  # expired sign-ups and the unconfirmed persons they made, deleted

    @property
    def changed(self) -> bool:
        """Whether anything was anonymised or deleted: then, on SQLite, db.checkpoint after
        the commit, or the -wal file keeps the old pages (see contacts.forget)."""
        return any((self.events, self.mailings, self.rows, self.variants, self.signups))


def apply_retention(session: Session, settings: Settings, *,
                    now: datetime | None = None) -> RetentionReport:
    """Anonymise what `[retention]` says is too old at NOW (default: now). Idempotent; the
    caller's transaction (roll it back for a dry run). The worker calls it every round."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    days = settings.retention
    if days.events_days:
        report.events = _events(session, now - timedelta(days=days.events_days))
    if days.outbox_days:
        _mailings(session, now - timedelta(days=days.outbox_days), report)
    report.signups = purge_expired(session, settings, now=now)
    if report.events or report.mailings:
        log_event(session, EventKind.RETENTION, events=report.events, mailings=report.mailings,
                  rows=report.rows)
    return report


def _events(session: Session, cutoff: datetime) -> int:
    mark = session.get(SiteMeta, _EVENTS_UNTIL)
    since = datetime.fromisoformat(mark.value) if mark else None
    if since is not None and since >= cutoff:
        return 0
    query = update(Event).where(Event.at < cutoff, Event.person_id.is_not(None))
    if since is not None:
        query = query.where(Event.at >= since)
    count = session.execute(query.values(person_id=None)
                            .execution_options(synchronize_session=False)).rowcount
    if mark is None:
        session.add(SiteMeta(key=_EVENTS_UNTIL, value=cutoff.isoformat()))
    else:
        mark.value = cutoff.isoformat()
    return count or 0


def _mailings(session: Session, cutoff: datetime, report: RetentionReport) -> None:
    done = forgetting.anonymise_finished(session, cutoff)
    report.mailings, report.rows, report.variants = done.mailings, done.rows, done.variants
