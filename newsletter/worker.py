"""`newsletter worker`: a loop that runs what is due, every `[worker] interval` seconds.

Each round, in this order and each task in transactions of its own:

1. a heartbeat (heartbeat.beat; also every BEAT_EVERY while a long send runs), so that doctor
   and the console can tell that a worker is alive;
2. scheduled mailings whose time has come are started (schedule.start: recipients fixed, the
   start claimed by compare-and-set, so two workers never start one twice);
3. webinar reminders that are due are created (reminders.py) and remiss reminders handed out
   (remisser.reminders_due), each as a one-address mailing to the staff address
   (outbox.creating.create_message_to), committed together with the reminder's record;
4. every sending mailing with a message due now is sent (sender.send_mailing: claims are
   compare-and-set, so several workers share a mailing and nobody gets a second copy; retries
   of deferred messages come here when their time comes, nobody runs a command again). The
   engine returns when nothing more is due now (Backoff.linger 0); later retries wait for a
   later round;
5. the bounce mailbox (`[bounces] mailbox`) is read, at most every BOUNCES_EVERY;
6. the intake feeds due are fetched (intake.fetch_due), at most every INTAKE_EVERY;
7. retention (retention.apply_retention) and the query planner's statistics
   (db.refresh_statistics), at most every RETENTION_EVERY.

The periodic tasks (5-7) are taken by one worker at a time: each keeps its last run in
site_meta (`worker:TASK`), claimed with a compare-and-set.

Failure modes. One failing task (a broken feed, an unreadable mailbox, a mailing whose
transport is misconfigured) never stops the round's other tasks: it is logged in one line and
tried again next round. SIGTERM (or Ctrl-C) sets `stop`: the engine finishes the messages in
flight and puts the rest back, and the loop ends after the task under way. kill -9 loses
nothing: the outbox holds every row's state (see sender.py for the one-message-per-connection
window a crash leaves), the start of a scheduled mailing is one transaction, and the next
round of any worker takes back a dead worker's claims. Time comes from `clock` (tests move it
instead of sleeping).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import bounces, db, heartbeat, intake, reminders, remisser, retention, schedule
from .errors import NewsletterError
from .i18n import _
from .kinds.targeted import TargetedSource
from .models import SiteMeta
from .outbox import creating, lifecycle, sending
from .sender import Backoff, SendReport, send_mailing
from .settings import Settings
from .transports import Transport

BEAT_EVERY = timedelta(seconds=30)  # heartbeats during a long send
BOUNCES_EVERY = timedelta(minutes=1)
INTAKE_EVERY = timedelta(minutes=1)  # how often fetch_due is asked; it has its own interval
RETENTION_EVERY = timedelta(days=1)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class RoundReport:
    """What one round did, and the tasks that failed (task name, one-line reason)."""

    started: list[int] = field(default_factory=list)  # scheduled mailings started
    reminders: list[int] = field(default_factory=list)  # reminder mailings created
    sent: list[SendReport] = field(default_factory=list)
    bounces: bounces.BounceSummary | None = None
    feeds: list[intake.FeedReport] = field(default_factory=list)
    retention: retention.RetentionReport | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


class Worker:
    """Runs rounds on one site's database (see the module). LOG(line) gets one line per thing
    done or failed; CLOCK() is now (aware UTC); TRANSPORT replaces the configured one."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 writers: sessionmaker[Session], *, clock: Callable[[], datetime] | None = None,
                 transport: Transport | None = None, worker_id: str | None = None,
                 stop: threading.Event | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.writers = writers
        self.clock = clock or (lambda: datetime.now(UTC))
        self.transport = transport
        self.worker_id = worker_id or heartbeat.default_worker_id()
        self.stop = stop or threading.Event()
        self.log = log or (lambda line: None)
        self._last_beat: datetime | None = None

    # --- the loop
    def run(self, *, once: bool = False, interval: float | None = None) -> None:
        """Run rounds until STOP is set (or one, with ONCE)."""
        interval = self.settings.worker.interval if interval is None else interval
        while not self.stop.is_set():
            started = time.monotonic()
            self.round()
            if once:
                return
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def round(self, now: datetime | None = None) -> RoundReport:
        """One round at NOW (default: the clock): every task, each on its own."""
        now = now or self.clock()
        report = RoundReport()
        tasks: list[tuple[str, Callable[[datetime, RoundReport], None]]] = [
            ("heartbeat", self._beat), ("schedule", self._start_due),
            ("webinar reminders", self._webinar_reminders),
            ("remiss reminders", self._remiss_reminders), ("send", self._send),
            ("bounces", self._bounces), ("intake", self._intake),
            ("retention", self._retention)]
        for name, task in tasks:
            if self.stop.is_set():
                break
            try:
                task(now, report)
            except Exception as exc:  # noqa: BLE001 - one failing task must not stop the others
                self._failed(report, name, exc)
        return report

    def _failed(self, report: RoundReport, name: str, exc: BaseException) -> None:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
        report.errors.append((name, reason))
        self.log(_("{task} failed: {reason}").format(task=name, reason=reason[:300]))

    def _tx(self):
        return db.transaction(self.writers)

    # --- the tasks
    def _beat(self, now: datetime, report: RoundReport | None = None) -> None:
        with self._tx() as s:
            heartbeat.beat(s, self.worker_id, now)
        self._last_beat = now

    def _start_due(self, now: datetime, report: RoundReport) -> None:
        with self.sessions() as s:
            due = lifecycle.due_scheduled(s, now)
        for mailing_id in due:
            if self.stop.is_set():
                return
            try:
                with self._tx() as s:
                    created = schedule.start(s, self.settings, mailing_id, now=now)
            except (NewsletterError, SQLAlchemyError) as exc:
                self._failed(report, f"schedule {mailing_id}", exc)
                continue
            if created is not None:
                report.started.append(mailing_id)
                self.log(_("Mailing {id} started: {n} recipients.").format(
                    id=mailing_id, n=created.recipients))

    def _webinar_reminders(self, now: datetime, report: RoundReport) -> None:
        with self._tx() as s:
            ids = reminders.create_due(s, self.settings, now)
        for mailing_id in ids:
            report.reminders.append(mailing_id)
            self.log(_("Webinar reminder: mailing {id}.").format(id=mailing_id))

    def _remiss_reminders(self, now: datetime, report: RoundReport) -> None:
        with self._tx() as s:
            for reminder in remisser.reminders_due(s, self.settings, now):
                source = TargetedSource(self.settings, reminder.subject, reminder.body)
                mailing = creating.create_message_to(s, self.settings, source, reminder.to,
                                                     label="remiss")
                report.reminders.append(mailing.id)
                self.log(_("Remiss reminder to {to}: mailing {id}.").format(
                    to=reminder.to, id=mailing.id))

    def _send(self, now: datetime, report: RoundReport) -> None:
        with self.sessions() as s:
            due = sending.with_work_due(s, now)
        for mailing_id in due:
            if self.stop.is_set():
                return
            try:
                result = send_mailing(self.settings, self.sessions, mailing_id,
                                      transport=self.transport, stop=self.stop,
                                      backoff=Backoff(linger=0), clock=self.clock,
                                      progress=self._progress)
            except (NewsletterError, SQLAlchemyError, OSError) as exc:
                self._failed(report, f"send {mailing_id}", exc)
                continue
            report.sent.append(result)
            if result.handled or result.reclaimed or result.paused_reason:
                line = _("Mailing {id}: {sent} sent, {failed} failed, {left} left.").format(
                    id=mailing_id, sent=result.sent, failed=result.failed + result.bounced,
                    left=result.remaining)
                if result.paused_reason:
                    line += " " + _("Paused: {reason}").format(reason=result.paused_reason)
                self.log(line)

    def _progress(self, _report: SendReport) -> None:
        """Beat now and then while a long send runs (the engine calls this twice a second)."""
        now = self.clock()
        if self._last_beat is None or now - self._last_beat >= BEAT_EVERY:
            try:
                self._beat(now)
            except SQLAlchemyError:
                return  # a busy database: the next beat will do

    def _bounces(self, now: datetime, report: RoundReport) -> None:
        mailbox = self.settings.worker.bounce_mailbox
        if mailbox is None or not self._take("bounces", BOUNCES_EVERY, now):
            return
        with self._tx() as s:
            summary = bounces.process_mailbox(s, self.settings, mailbox)
        report.bounces = summary
        if summary.hard or summary.soft or summary.complaints:
            self.log(_("Bounces: {hard} hard, {soft} soft, {complaints} complaints.").format(
                hard=summary.hard, soft=summary.soft, complaints=summary.complaints))

    def _intake(self, now: datetime, report: RoundReport) -> None:
        if not self.settings.intake.feeds or not self._take("intake", INTAKE_EVERY, now):
            return
        with self.writers() as s:
            report.feeds = intake.fetch_due(s, self.settings, now)
            s.commit()
        for feed in report.feeds:
            if feed.error:
                self._failed(report, f"intake {feed.name}", NewsletterError(feed.error))
            elif feed.new:
                self.log(_("Feed {name}: {n} new.").format(name=feed.name, n=feed.new))

    def _retention(self, now: datetime, report: RoundReport) -> None:
        if not self._take("retention", RETENTION_EVERY, now):
            return
        with self._tx() as s:
            report.retention = retention.apply_retention(s, self.settings, now=now)
            db.refresh_statistics(s.connection())  # daily, with the day's changes in
        if report.retention.changed:  # the old pages out of the -wal file too, when it can
            db.checkpoint(self.sessions.kw["bind"])
        if report.retention.events or report.retention.mailings:
            self.log(_("Retention: {events} events and {mailings} mailings anonymised.").format(
                events=report.retention.events, mailings=report.retention.mailings))

    def _take(self, task: str, every: timedelta, now: datetime) -> bool:
        """Claim periodic TASK for this round if it did not run within EVERY (any worker)."""
        key = f"worker:{task}"
        stamp = now.astimezone(UTC).strftime(_STAMP)
        try:
            with self._tx() as s:
                row = s.get(SiteMeta, key)
                if row is None:
                    s.add(SiteMeta(key=key, value=stamp))
                    return True
                last = datetime.strptime(row.value, _STAMP).replace(tzinfo=UTC)
                if now - last < every and last <= now:
                    return False
                return s.execute(update(SiteMeta).where(SiteMeta.key == key,
                                                        SiteMeta.value == row.value)
                                 .values(value=stamp)
                                 .execution_options(synchronize_session=False)).rowcount == 1
        except IntegrityError:  # another worker inserted it first
            return False
