"""The send engine: claim outbox rows, re-check the person, personalise, send, record.

`send_mailing(settings, sessions, mailing_id)` works through a mailing's outbox with
`transport.connections` workers (threads; SMTP I/O releases the GIL), each with its own transport
connection and database connection, both reused for every message it sends; every claim, re-check
and record is its own short transaction on that database connection. The statements are
outbox/sending.py's (the ledger's); this module decides when to run them and what a transport's
answer means. `deliver(settings, sessions, ids)` sends several mailings in a row.

Exactly once, and its window. Rows move pending -> sending -> sent | deferred | failed |
suppressed. A worker claims a few rows with one compare-and-set UPDATE (only rows still pending or
deferred and due are taken, stamped with the worker's claim id; on PostgreSQL chosen FOR UPDATE
SKIP LOCKED), so any number of senders on one mailing, in threads, processes or on other hosts,
take disjoint rows; each claims about CLAIM_SECONDS of sending at a time, so that against a slow
server nobody sits on rows the others could send. Right before each message the person is read
again: if they unsubscribed, bounced, paused or were erased after the mailing was created, the
row becomes `suppressed` and nothing is sent. After the transport accepts a message its row is
committed as `sent` in its own small transaction. A sender killed at any moment leaves rows in
`sending`; the next run (the same command again), and any sender still working on the mailing
once it runs out of rows, takes back rows claimed by a dead process on this host, or claimed more
than outbox.sending.STALE_AFTER ago, and sends them. The one case that yields a second copy:
the server's 250 arrived (or the server kept the message while its reply was lost) but the kill came
before the commit. Each connection has at most one message in that state, so a crash can cause at
most `connections` duplicates. `send status` counts such rows as "possibly sent" while they wait,
and as "sent after a crash" once re-sent.

One recipient never stops the others: a message that cannot be built (a frozen variant gone,
an address with no wire form) or whose send raises fails alone, with a one-line reason naming
the address, counted like any failure (`max_consecutive_failures` of them in a row pause the
mailing: then the cause is not one recipient). An address only SMTPUTF8 can carry fails the
same way where the server does not offer it (transports.py).

SMTP replies (classified in transports.py): 4xx or a lost connection -> deferred with exponential
backoff and jitter (Backoff); 5.1.x -> failed, and the hard-bounce policy (events.hard_bounce)
suppresses the address; other 5xx -> failed; 5.7.x, a refused sender or failed authentication ->
the mailing pauses, nobody is blamed. `max_consecutive_failures` failures in a row also pause
it. Global and per-domain rate limits come from settings.transport (rate, per_domain_rate) or the
`rate` argument.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import db, events, labels
from .errors import ConfigError, SendError
from .i18n import _
from .messages import DkimSigner, MessageTemplate
from .models import MailingKind, MailingStatus, OutboxStatus, Person
from .outbox import creating, lifecycle, sending
from .settings import Settings
from .signing import address_hash
from .sources import Recipient, recipient_for
from .transports import Connection, Outcome, Result, Transport, from_settings

DOMAIN_MAX_WAIT = 2.0  # longer than this for a domain's turn: put the row back, take another
CLAIM_SECONDS = 0.5  # a worker claims about this much sending at a time (see _Worker.batch)


@dataclass(frozen=True)
class Backoff:
    """Retry schedule of deferred messages: BASE * 2**(attempt-1) seconds, capped, +-50% jitter.

    A run waits for deferred rows that fall due within LINGER seconds; later ones are left for the
    next run. After MAX_ATTEMPTS a message fails. `send_mailing` takes BASE from the setting
    `[transport] retry_after`.
    """

    base: float = 60.0
    cap: float = 3600.0
    max_attempts: int = 8
    linger: float = 900.0

    def delay(self, attempts: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.5)


@dataclass
class SendReport:
    mailing_id: int
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0
    reclaimed: int = 0
    remaining: int = 0
    total: int = 0
    done: bool = False
    interrupted: bool = False
    paused_reason: str | None = None
    next_attempt_at: datetime | None = None
    transport: str = ""

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.bounced + self.suppressed


class _Limiter:
    """Messages per second, shared by the workers; per key (a recipient domain) if keyed."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str = "", max_wait: float | None = None) -> float | None:
        """Seconds to wait for the next slot (reserved), or None if longer than MAX_WAIT."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, 0.0))
            if max_wait is not None and slot - now > max_wait:
                return None
            self._next[key] = slot + self.interval
            return slot - now

    def free_in(self, key: str) -> float:
        with self._lock:
            return max(0.0, self._next.get(key, 0.0) - time.monotonic())


@dataclass(frozen=True)
class _Someone:
    """A stand-in person for links.py (a test address that is not in the database)."""

    name: str
    email: str
    public_id: str


@dataclass
class _Worker:
    """One sending thread's own resources, kept for the whole run."""

    me: str  # the claim id stamped on the rows it takes
    db: DbConnection  # claims, re-checks and records, each in its own short transaction
    conn: Connection  # the transport connection
    seconds: float = 0.0  # a message's time, a moving average: how many rows to claim

    def batch(self) -> int:
        """Rows to claim next: about CLAIM_SECONDS' worth (at most outbox.sending.CLAIM_BATCH),
        so that against a slow server no worker sits on rows the others could be sending."""
        if self.seconds <= 0:
            return 1
        return max(1, min(sending.CLAIM_BATCH, int(CLAIM_SECONDS / self.seconds)))

    def timed(self, seconds: float) -> None:
        self.seconds = seconds if self.seconds <= 0 else 0.8 * self.seconds + 0.2 * seconds


@dataclass
class _Run:
    settings: Settings
    sessions: sessionmaker[Session]
    mailing_id: int
    transport: Transport
    backoff: Backoff
    stop: threading.Event
    test_to: str | None
    transactional: bool
    confirmation: bool  # a sign-up's confirmation (events.may_confirm says who may get it)
    rate: _Limiter
    per_domain: _Limiter
    dkim: DkimSigner | None
    report: SendReport
    lock: threading.Lock = field(default_factory=threading.Lock)
    templates: dict[str, MessageTemplate] = field(default_factory=dict)
    consecutive_failures: int = 0
    pause_reason: str | None = None
    error: BaseException | None = None
    finished: bool = False  # the mailing is no longer sending (done, cancelled ...)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # "now"

    # --- shared state
    def halted(self) -> bool:
        return (self.stop.is_set() or self.finished or self.pause_reason is not None
                or self.error is not None)

    def tx(self):
        """A transaction that reads, then writes (reclaiming a dead sender's rows): through
        db.writer, since on SQLite a plain one fails at once with "database is locked" when
        another sender commits between its read and its write."""
        return db.transaction(_writers(self.sessions))

    def template(self, key: str) -> MessageTemplate:
        with self.lock:
            if key not in self.templates:
                with self.sessions() as s:
                    content = creating.frozen(s, self.mailing_id, key)
                self.templates[key] = MessageTemplate(self.settings, content, dkim=self.dkim)
            return self.templates[key]

    def pause(self, reason: str) -> None:
        with self.tx() as s:
            sending.set_paused(s, self.mailing_id, reason)
        with self.lock:
            self.pause_reason = self.pause_reason or reason

    def snapshot(self) -> SendReport:
        """The report as it stands, copied at one moment: the workers change it meanwhile, and a
        progress line read field by field said "102/110 done (103 sent ...)"."""
        with self.lock:
            return replace(self.report)

    def count(self, outcome: str, failure: bool, result: Result | None = None) -> None:
        limit = self.settings.transport.max_consecutive_failures
        with self.lock:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
            if outcome != "deferred":  # the row is finished: one less left (for progress)
                self.report.remaining = max(0, self.report.remaining - 1)
            self.consecutive_failures = self.consecutive_failures + 1 if failure else 0
            tripped = failure and limit and self.consecutive_failures >= limit
        if tripped:
            self.pause(_("{n} failed sends in a row, the last: {result}").format(
                n=limit, result=result))

    # --- one worker: claim -> re-check -> personalise -> send -> record
    def work(self, number: int) -> None:
        me = sending.claimant(number)
        conn = self.transport.connection()
        try:
            with self.sessions.kw["bind"].connect() as dbc:
                self.loop(_Worker(me, dbc, conn))
        except BaseException as exc:  # noqa: BLE001 - re-raised by send_mailing's thread
            with self.lock:
                self.error = self.error or exc
            self.release_all(me)
        finally:
            conn.close()

    def loop(self, w: _Worker) -> None:
        while not self.halted():
            rows = self.claim(w)
            if not rows:
                if self.reclaim():
                    continue
                wait = self.next_due()
                if wait is None or wait > self.backoff.linger:
                    return
                self.stop.wait(min(max(wait, 0.05), 1.0))
                continue
            for i, row in enumerate(rows):
                if self.halted():
                    self.release(w, [r.id for r in rows[i:]])
                    break
                self.one(row, w)

    def claim(self, w: _Worker) -> list[sending.Claimed]:
        with w.db.begin():
            rows = sending.claim(w.db, self.mailing_id, w.me, self.clock(),
                                 limit=w.batch())
            if not rows:
                status, reason = sending.mailing_state(w.db, self.mailing_id)
                with self.lock:
                    if status == MailingStatus.PAUSED:
                        self.pause_reason = self.pause_reason or reason or "pausad"
                    elif status != MailingStatus.SENDING:
                        self.finished = True
        for row in rows:
            if row.email is not None:
                row.digest = address_hash(self.settings.secret_key, row.email)
        return rows

    def reclaim(self) -> int:
        """Take back the rows of senders that died on this mailing (a process killed while
        other senders go on, see outbox.sending.claim_is_dead), so that the survivors finish it."""
        with self.tx() as s:
            taken = sending.reclaim(s, self.mailing_id)
        if taken:
            with self.lock:
                self.report.reclaimed += taken
        return taken

    def next_due(self) -> float | None:
        """Seconds until the next row may be claimed; None when no row is left to claim."""
        with self.sessions() as s:
            left, earliest = sending.next_due(s, self.mailing_id)
        if not left:
            return None
        if earliest is None:
            return 0.0
        return (earliest - self.clock()).total_seconds()

    def release(self, w: _Worker, ids: list[int], *, due: datetime | None = None) -> None:
        """Put claimed rows back, untouched: they were never handed to the transport."""
        if ids:
            with w.db.begin():
                sending.release(w.db, ids, w.me, due=due)

    def release_all(self, me: str) -> None:
        try:
            with self.tx() as s:
                sending.release_all(s, self.mailing_id, me)
        except SQLAlchemyError:
            return  # the database itself failed: the rows wait for the next run's reclaim

    def recipient(self, row: sending.Claimed, dbc: DbConnection) -> tuple[Recipient | None, str]:
        """Who gets ROW now, read fresh: None and why not, if nobody may be mailed."""
        person = None
        if row.person_id is not None:
            with dbc.begin():  # one snapshot: a changed address is checked against the same state
                person = sending.recipient_now(dbc, row.person_id, row.digest)
                if person is not None and person.email != row.email:
                    row.email = person.email
                    row.digest = address_hash(self.settings.secret_key, person.email)
                    person = sending.recipient_now(dbc, row.person_id, row.digest)
        if self.test_to:
            stand_in = (_Someone(person.name, person.email, row.public_id or "test")
                        if person is not None else _Someone("", self.test_to, "test"))
            found = recipient_for(self.settings, stand_in, row.message_id)
            return replace(found, email=self.test_to), ""
        if person is None:
            return None, "erased"
        if self.confirmation:  # a sign-up's: also to a pending or unsubscribed person
            if not events.may_confirm(person.status, person.suppression):
                return None, _("the contact is {status}; the address is {reason}").format(
                    status=labels.contact_status(person.status),
                    reason=labels.contact_status(person.suppression or ""))
            return recipient_for(self.settings, _Someone(person.name, person.email,
                                                         row.public_id), row.message_id), ""
        if person.status != "active":
            return None, _("the contact is {status}").format(
                status=labels.contact_status(person.status))
        if (not self.transactional and person.paused_until
                and person.paused_until > self.clock().date()):
            return None, _("paused until {date}").format(date=person.paused_until.isoformat())
        if person.suppressed:
            return None, _("on the suppression list")
        return recipient_for(self.settings, _Someone(person.name, person.email, row.public_id),
                             row.message_id), ""

    def one(self, row: sending.Claimed, w: _Worker) -> None:
        recipient, why_not = self.recipient(row, w.db)
        if recipient is None:
            self.record(w, row, OutboxStatus.SUPPRESSED, why_not)
            self.count("suppressed", False)
            return
        domain = recipient.email.rpartition("@")[2].lower()
        wait = self.per_domain.reserve(domain, DOMAIN_MAX_WAIT)
        if wait is None:
            later = self.clock() + timedelta(seconds=self.per_domain.free_in(domain))
            self.release(w, [row.id], due=later)
            return
        wait += self.rate.reserve() or 0.0
        if wait and self.stop.wait(wait):
            self.release(w, [row.id])
            return
        try:
            data = self.template(row.variant_key).build(recipient)
        except ConfigError:
            raise  # the site's to fix (e.g. the DKIM key): it stops the run, never one row
        except Exception as exc:  # noqa: BLE001 - this recipient's message fails, not the run
            self.fail_alone(w, row, _("{email}: the message could not be built: {reason}"
                                      ).format(email=recipient.email, reason=_one_line(exc)))
            return
        started = time.monotonic()
        try:
            result = w.conn.send(self.settings.organisation.sender, recipient.email, data,
                                 ready=True)
        except Exception as exc:  # noqa: BLE001 - this recipient's message fails, not the run
            w.conn.close()  # its state is unknown: the next message opens a new connection
            self.fail_alone(w, row, f"{recipient.email}: sending failed: {_one_line(exc)}")
            return
        w.timed(time.monotonic() - started)
        self.outcome(row, w, result)

    def fail_alone(self, w: _Worker, row: sending.Claimed, reason: str) -> None:
        """ROW fails with REASON (one line, naming the address); the others go on."""
        self.record(w, row, OutboxStatus.FAILED, reason, attempt=True)
        self.count("failed", True, Result(Outcome.FAILED, None, reason))

    def outcome(self, row: sending.Claimed, w: _Worker, result: Result) -> None:
        if result.outcome == Outcome.SENT:
            keep = sending.RECLAIMED if row.last_error == sending.RECLAIMED else None
            self.record(w, row, OutboxStatus.SENT, keep, attempt=True)
            self.count("sent", False)
        elif result.outcome == Outcome.DEFERRED:
            attempts = row.attempts + 1
            if attempts >= self.backoff.max_attempts:
                self.record(w, row, OutboxStatus.FAILED,
                            f"gave up after {attempts} attempts: {result}", attempt=True)
                self.count("failed", True, result)
            else:
                due = self.clock() + timedelta(seconds=self.backoff.delay(attempts))
                self.record(w, row, OutboxStatus.DEFERRED, str(result), attempt=True, due=due)
                self.count("deferred", True, result)
        elif result.outcome == Outcome.BOUNCED:
            self.record(w, row, OutboxStatus.FAILED, f"{sending.HARD_BOUNCE}{result}", attempt=True,
                        bounce=None if self.test_to else row.person_id, code=result.code)
            self.count("bounced", True, result)
        elif result.outcome == Outcome.FAILED:
            self.record(w, row, OutboxStatus.FAILED, str(result), attempt=True)
            self.count("failed", True, result)
        else:
            self.release(w, [row.id])
            self.pause(f"{self.transport.description}: {result}")

    def record(self, w: _Worker, row: sending.Claimed, status: OutboxStatus, error: str | None,
               *, attempt: bool = False, due: datetime | None = None, bounce: int | None = None,
               code: int | None = None) -> None:
        attempts = row.attempts + attempt
        if bounce is None:
            with w.db.begin():
                sending.record(w.db, row, w.me, status, error, attempts=attempts, due=due)
            return
        with self.tx() as s:  # the row and the bounce's consequences in one transaction
            sending.record(s, row, w.me, status, error, attempts=attempts, due=due)
            person = s.get(Person, bounce)
            if person is not None:
                events.hard_bounce(s, self.settings.secret_key, person,
                                   mailing=self.mailing_id, code=code, source="smtp")


def _writers(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """SESSIONS' database, for transactions that read, then write (db.writer)."""
    return db.session_factory(db.writer(sessions.kw["bind"]))


def send_mailing(settings: Settings, sessions: sessionmaker[Session], mailing_id: int, *,
                 transport: Transport | None = None, rate: float | None = None,
                 progress: Callable[[SendReport], None] | None = None,
                 stop: threading.Event | None = None, backoff: Backoff | None = None,
                 connections: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> SendReport:
    """Send what is left of MAILING_ID; returns when it is done, paused, stopped or only has
    deferred rows due later than backoff.linger. Safe to run again at any time (it resumes).

    PROGRESS(report) is called from this thread about twice a second; setting STOP makes the
    workers finish the messages in flight and put the rest back. CLOCK() is "now" for what is
    due (the worker's clock, so that tests of retries need no sleeping).
    """
    with db.transaction(sessions) as s:
        mailing = creating.get_mailing(s, mailing_id)
        if mailing.status == MailingStatus.PAUSED:
            raise SendError(_("mailing {id} is paused: {reason}; run `newsletter send resume "
                              "{id}` once the fault is corrected").format(
                              id=mailing_id, reason=mailing.paused_reason))
        test_to = (mailing.meta or {}).get("test_to")
        transactional = bool((mailing.meta or {}).get("transactional"))
        confirmation = mailing.kind == MailingKind.SIGNUP
    transport = transport or from_settings(settings)
    report = SendReport(mailing_id, transport=transport.description)
    with db.transaction(_writers(sessions)) as s:  # reads, then writes: see _Run.tx
        report.reclaimed = sending.reclaim(s, mailing_id, clock() if clock else None)
    t = settings.transport
    run = _Run(settings=settings, sessions=sessions, mailing_id=mailing_id, transport=transport,
               backoff=backoff or Backoff(base=t.retry_after), stop=stop or threading.Event(),
               test_to=test_to,
               transactional=transactional, confirmation=confirmation,
               rate=_Limiter(t.rate if rate is None else rate),
               per_domain=_Limiter(t.per_domain_rate), dkim=DkimSigner.from_settings(settings),
               report=report, **({"clock": clock} if clock else {}))
    _fill(sessions, report)
    workers = [threading.Thread(target=run.work, args=(i,), name=f"sender-{i}", daemon=True)
               for i in range(max(1, connections or t.connections))]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        for w in workers:
            w.join(timeout=0.5)
            if progress:
                progress(run.snapshot())
    if run.error is not None:
        raise run.error
    with db.transaction(sessions) as s:
        sending.finish_if_done(s, mailing_id)
    _fill(sessions, report)
    report.paused_reason = run.pause_reason
    report.interrupted = run.stop.is_set() and not report.done
    if progress:
        progress(report)
    return report


def deliver(settings: Settings, sessions: sessionmaker[Session], mailing_ids: list[int], *,
            transport: Transport | None = None) -> list[SendReport]:
    """Send (or resume) MAILING_IDS one after the other, after the caller's commit: e.g. the
    messages a webinar command created."""
    return [send_mailing(settings, sessions, mailing_id, transport=transport)
            for mailing_id in mailing_ids]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _fill(sessions: sessionmaker[Session], report: SendReport) -> None:
    with sessions() as s:
        progress = lifecycle.mailing_status(s, report.mailing_id, failures=0)
    report.total = progress.total
    report.remaining = progress.remaining
    report.done = progress.mailing.status == MailingStatus.DONE
    report.next_attempt_at = progress.next_attempt_at
