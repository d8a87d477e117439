"""The send engine: claim outbox rows, re-check suppression, personalise, send, record.

`send_mailing(settings, sessions, mailing_id)` works through a mailing's outbox with
`transport.connections` workers (threads; SMTP I/O releases the GIL), each with its own
transport connection and database connection, both reused for every message it sends; every
claim, re-check and record is its own short transaction on that database connection.

Exactly once, and its window. Rows move pending -> sending -> sent | deferred | failed |
suppressed. A worker claims a few rows with one compare-and-set UPDATE (only rows still pending or
deferred and due are taken, stamped with the worker's claim id), so a second sender on the same
mailing takes other rows and is harmless. Right before each message the person is read again: if
they unsubscribed, bounced, paused or were erased after the mailing was created, the row becomes
`suppressed` and nothing is sent. After the transport accepts a message its row is committed as
`sent` in its own small transaction. A sender killed at any moment leaves rows in `sending`; the
next run (the same command again) takes back rows claimed by a dead process on this host, or
claimed more than outbox.STALE_AFTER ago, and sends them. The one case that yields a second copy:
the server's 250 arrived (or the server kept the message while its reply was lost) but the kill came
before the commit. Each connection has at most one message in that state, so a crash can cause at
most `connections` duplicates. `send status` counts such rows as "possibly sent" while they wait,
and as "sent after a crash" once re-sent.

SMTP replies (classified in transports.py): 4xx or a lost connection -> deferred with exponential
backoff and jitter (Backoff); 5.1.x -> failed, the address suppressed as a hard bounce; other 5xx
-> failed; 5.7.x, a refused sender or failed authentication -> the mailing pauses, nobody is
blamed. `max_consecutive_failures` failures in a row also pause it. Global and per-domain rate
limits come from settings.transport (rate, per_domain_rate) or the `rate` argument.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import db, outbox
from .contacts import log_event, suppress
from .errors import SendError
from .messages import Content, DkimSigner, MessageTemplate, Recipient, recipient_for
from .models import Mailing, MailingVariant, OutboxRow, Person, Suppression
from .settings import Settings
from .signing import address_hash
from .transports import Connection, Result, Transport, from_settings

CLAIM_BATCH = 25
CLAIMABLE = ("pending", "deferred")
DOMAIN_MAX_WAIT = 2.0  # longer than this for a domain's turn: put the row back, take another


@dataclass(frozen=True)
class Backoff:
    """Retry schedule of deferred messages: BASE * 2**(attempt-1) seconds, capped, +-50% jitter.

    A run waits for deferred rows that fall due within LINGER seconds; later ones are left for the
    next run. After MAX_ATTEMPTS a message fails.
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


# Built once: statements executed per message or per claim (building them costs more than
# running them). Each worker runs them on one database connection it keeps for the whole run.
_DUE = or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= bindparam("now"))
_CLAIM = (update(OutboxRow)
          .where(OutboxRow.id.in_(select(OutboxRow.id)
                                  .where(OutboxRow.mailing_id == bindparam("mailing"),
                                         OutboxRow.status.in_(CLAIMABLE), _DUE)
                                  .order_by(OutboxRow.id).limit(CLAIM_BATCH)),
                 OutboxRow.status.in_(CLAIMABLE), _DUE,
                 select(Mailing.id).where(Mailing.id == bindparam("mailing"),
                                          Mailing.status == "sending").exists())
          .values(status="sending", claimed_by=bindparam("me"), claimed_at=bindparam("now"))
          .execution_options(synchronize_session=False))
_CLAIMED = (select(OutboxRow.id, OutboxRow.person_id, OutboxRow.variant_key, OutboxRow.message_id,
                   OutboxRow.attempts, OutboxRow.last_error, Person.email, Person.public_id)
            .outerjoin(Person, Person.id == OutboxRow.person_id)
            .where(OutboxRow.mailing_id == bindparam("mailing"),
                   OutboxRow.claimed_by == bindparam("me"), OutboxRow.status == "sending")
            .order_by(OutboxRow.id))
# The re-check right before each message: one query for the person and the suppression list.
_CHECK = (select(Person.name, Person.email, Person.status, Person.paused_until,
                 select(Suppression.id).where(Suppression.email_hash == bindparam("digest"))
                 .exists().label("suppressed"))
          .where(Person.id == bindparam("pid")))
_RECORD = (update(OutboxRow)
           .where(OutboxRow.id == bindparam("row_id"), OutboxRow.claimed_by == bindparam("me"))
           .values(status=bindparam("new_status"), last_error=bindparam("error"),
                   next_attempt_at=bindparam("due"), attempts=bindparam("attempts"),
                   sent_at=bindparam("sent_at"), claimed_by=bindparam("claim"))
           .execution_options(synchronize_session=False))
_RELEASE = (update(OutboxRow)
            .where(OutboxRow.id.in_(bindparam("ids", expanding=True)),
                   OutboxRow.claimed_by == bindparam("me"), OutboxRow.status == "sending")
            .values(status="pending", claimed_by=None, claimed_at=None,
                    next_attempt_at=bindparam("due"))
            .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class _Someone:
    """A stand-in person for links.py (a test address that is not in the database)."""

    name: str
    email: str
    public_id: str


@dataclass
class _Claimed:
    id: int
    person_id: int | None
    variant_key: str
    message_id: str
    attempts: int
    last_error: str | None
    email: str | None  # the person's address when claimed
    public_id: str | None
    digest: str | None = None  # EMAIL's suppression key, computed once per claim


@dataclass
class _Worker:
    """One sending thread's own resources, kept for the whole run."""

    me: str  # the claim id stamped on the rows it takes
    db: DbConnection  # claims, re-checks and records, each in its own short transaction
    conn: Connection  # the transport connection


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
    rate: _Limiter
    per_domain: _Limiter
    dkim: DkimSigner | None
    report: SendReport
    lock: threading.Lock = field(default_factory=threading.Lock)
    templates: dict[str, MessageTemplate] = field(default_factory=dict)
    consecutive_failures: int = 0
    pause_reason: str | None = None
    error: BaseException | None = None

    # --- shared state
    def halted(self) -> bool:
        return self.stop.is_set() or self.pause_reason is not None or self.error is not None

    def tx(self):
        return db.transaction(self.sessions)

    def template(self, key: str) -> MessageTemplate:
        with self.lock:
            if key not in self.templates:
                with self.sessions() as s:
                    v = s.scalar(select(MailingVariant).where(
                        MailingVariant.mailing_id == self.mailing_id, MailingVariant.key == key))
                if v is None:
                    raise SendError(f"mailing {self.mailing_id} has no frozen variant {key!r}")
                content = Content(subject=v.subject, html=v.html, text=v.text,
                                  attachments=tuple(v.attachments or ()))
                self.templates[key] = MessageTemplate(self.settings, content, dkim=self.dkim)
            return self.templates[key]

    def pause(self, reason: str) -> None:
        with self.tx() as s:
            outbox.set_paused(s, self.mailing_id, reason)
        with self.lock:
            self.pause_reason = self.pause_reason or reason

    def count(self, outcome: str, failure: bool, result: Result | None = None) -> None:
        limit = self.settings.transport.max_consecutive_failures
        with self.lock:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
            self.consecutive_failures = self.consecutive_failures + 1 if failure else 0
            tripped = failure and limit and self.consecutive_failures >= limit
        if tripped:
            self.pause(f"{limit} misslyckade sändningar i rad, senast: {result}")

    # --- one worker
    def work(self, number: int) -> None:
        me = outbox.claimant(number)
        conn = self.transport.connection()
        try:
            with self.sessions.kw["bind"].connect() as db:
                self.loop(_Worker(me, db, conn))
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

    def claim(self, w: _Worker) -> list[_Claimed]:
        params = {"mailing": self.mailing_id, "me": w.me, "now": datetime.now(UTC)}
        with w.db.begin():
            w.db.execute(_CLAIM, params)
            rows = [_Claimed(*r) for r in w.db.execute(_CLAIMED, params)]
            if not rows:
                status, reason = w.db.execute(select(Mailing.status, Mailing.paused_reason)
                                              .where(Mailing.id == self.mailing_id)).one()
                if status == "paused":
                    with self.lock:
                        self.pause_reason = self.pause_reason or reason or "pausad"
        for row in rows:
            if row.email is not None:
                row.digest = address_hash(self.settings.secret_key, row.email)
        return rows

    def next_due(self) -> float | None:
        """Seconds until the next row may be claimed; None when no row is left to claim."""
        with self.sessions() as s:
            left = s.execute(select(func.count(), func.min(OutboxRow.next_attempt_at))
                             .where(OutboxRow.mailing_id == self.mailing_id,
                                    OutboxRow.status.in_(CLAIMABLE))).one()
        if not left[0]:
            return None
        if left[1] is None:
            return 0.0
        return (left[1] - datetime.now(UTC)).total_seconds()

    def release(self, w: _Worker, ids: list[int], *, due: datetime | None = None) -> None:
        """Put claimed rows back, untouched: they were never handed to the transport."""
        if ids:
            with w.db.begin():
                w.db.execute(_RELEASE, {"ids": ids, "me": w.me, "due": due})

    def release_all(self, me: str) -> None:
        try:
            with self.tx() as s:
                s.execute(update(OutboxRow)
                          .where(OutboxRow.mailing_id == self.mailing_id,
                                 OutboxRow.claimed_by == me, OutboxRow.status == "sending")
                          .values(status="pending", claimed_by=None, claimed_at=None)
                          .execution_options(synchronize_session=False))
        except SQLAlchemyError:
            return  # the database itself failed: the rows wait for the next run's reclaim

    def recipient(self, row: _Claimed, db: DbConnection) -> tuple[Recipient | None, str]:
        """Who gets ROW now, read fresh: None and why not, if nobody may be mailed."""
        person = None
        if row.person_id is not None:
            with db.begin():  # one snapshot: a changed address is checked against the same state
                person = db.execute(_CHECK, {"pid": row.person_id, "digest": row.digest}).first()
                if person is not None and person.email != row.email:
                    row.email = person.email
                    row.digest = address_hash(self.settings.secret_key, person.email)
                    person = db.execute(_CHECK, {"pid": row.person_id,
                                                 "digest": row.digest}).first()
        if self.test_to:
            stand_in = (_Someone(person.name, person.email, row.public_id or "test")
                        if person is not None else _Someone("", self.test_to, "test"))
            found = recipient_for(self.settings, stand_in, row.message_id)
            return replace(found, email=self.test_to), ""
        if person is None:
            return None, "erased"
        if person.status != "active":
            return None, f"person is {person.status}"
        if (not self.transactional and person.paused_until
                and person.paused_until > datetime.now(UTC).date()):
            return None, f"paused until {person.paused_until.isoformat()}"
        if person.suppressed:
            return None, "on the suppression list"
        return recipient_for(self.settings, _Someone(person.name, person.email, row.public_id),
                             row.message_id), ""

    def one(self, row: _Claimed, w: _Worker) -> None:
        recipient, why_not = self.recipient(row, w.db)
        if recipient is None:
            self.record(w, row, "suppressed", why_not)
            self.count("suppressed", False)
            return
        domain = recipient.email.rpartition("@")[2].lower()
        wait = self.per_domain.reserve(domain, DOMAIN_MAX_WAIT)
        if wait is None:
            later = datetime.now(UTC) + timedelta(seconds=self.per_domain.free_in(domain))
            self.release(w, [row.id], due=later)
            return
        wait += self.rate.reserve() or 0.0
        if wait and self.stop.wait(wait):
            self.release(w, [row.id])
            return
        data = self.template(row.variant_key).build(recipient)
        result = w.conn.send(self.settings.organisation.sender, recipient.email, data,
                             ready=True)
        self.outcome(row, w, result)

    def outcome(self, row: _Claimed, w: _Worker, result: Result) -> None:
        if result.outcome == "sent":
            keep = outbox.RECLAIMED if row.last_error == outbox.RECLAIMED else None
            self.record(w, row, "sent", keep, attempt=True)
            self.count("sent", False)
        elif result.outcome == "deferred":
            attempts = row.attempts + 1
            if attempts >= self.backoff.max_attempts:
                self.record(w, row, "failed", f"gave up after {attempts} attempts: {result}",
                            attempt=True)
                self.count("failed", True, result)
            else:
                due = datetime.now(UTC) + timedelta(seconds=self.backoff.delay(attempts))
                self.record(w, row, "deferred", str(result), attempt=True, due=due)
                self.count("deferred", True, result)
        elif result.outcome == "bounced":
            self.record(w, row, "failed", f"hard bounce: {result}", attempt=True,
                        bounce=None if self.test_to else row.person_id,
                        code=result.code)
            self.count("bounced", True, result)
        elif result.outcome == "failed":
            self.record(w, row, "failed", str(result), attempt=True)
            self.count("failed", True, result)
        else:
            self.release(w, [row.id])
            self.pause(f"{self.transport.description}: {result}")

    def record(self, w: _Worker, row: _Claimed, status: str, error: str | None, *,
               attempt: bool = False, due: datetime | None = None, bounce: int | None = None,
               code: int | None = None) -> None:
        values = {"row_id": row.id, "me": w.me, "new_status": status, "error": error, "due": due,
                  "attempts": row.attempts + attempt,
                  "sent_at": datetime.now(UTC) if status == "sent" else None,
                  "claim": None if status in CLAIMABLE else w.me}
        if bounce is None:
            with w.db.begin():
                w.db.execute(_RECORD, values)
            return
        with self.tx() as s:
            s.execute(_RECORD, values)
            person = s.get(Person, bounce)
            if person is not None:
                suppress(s, self.settings.secret_key, person.email, "bounced")
                if person.status == "active":
                    person.status = "bounced"
                log_event(s, "bounced", person, mailing=self.mailing_id, code=code,
                          source="smtp")


def reclaim(sessions: sessionmaker[Session], mailing_id: int) -> int:
    """Take back rows left in 'sending' by a dead sender; they may have been sent (see above)."""
    now = datetime.now(UTC)
    taken = 0
    with db.transaction(sessions) as s:
        rows = s.execute(select(OutboxRow.id, OutboxRow.claimed_by, OutboxRow.claimed_at)
                         .where(OutboxRow.mailing_id == mailing_id,
                                OutboxRow.status == "sending")).all()
        for row_id, by, at in rows:
            if outbox.claim_is_dead(by, at, now):
                taken += s.execute(
                    update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.claimed_by == by,
                                            OutboxRow.status == "sending")
                    .values(status="pending", claimed_by=None, claimed_at=None,
                            last_error=outbox.RECLAIMED)
                    .execution_options(synchronize_session=False)).rowcount
    return taken


def send_mailing(settings: Settings, sessions: sessionmaker[Session], mailing_id: int, *,
                 transport: Transport | None = None, rate: float | None = None,
                 progress: Callable[[SendReport], None] | None = None,
                 stop: threading.Event | None = None, backoff: Backoff | None = None,
                 connections: int | None = None) -> SendReport:
    """Send what is left of MAILING_ID; returns when it is done, paused, stopped or only has
    deferred rows due later than backoff.linger. Safe to run again at any time (it resumes).

    PROGRESS(report) is called from this thread about twice a second; setting STOP makes the
    workers finish the messages in flight and put the rest back.
    """
    with db.transaction(sessions) as s:
        mailing = outbox.get_mailing(s, mailing_id)
        if mailing.status == "paused":
            raise SendError(f"utskick {mailing_id} är pausat: {mailing.paused_reason}; "
                            f"kör `newsletter send resume {mailing_id}` när felet är åtgärdat")
        test_to = (mailing.meta or {}).get("test_to")
        transactional = bool((mailing.meta or {}).get("transactional"))
    transport = transport or from_settings(settings)
    report = SendReport(mailing_id, transport=transport.description)
    report.reclaimed = reclaim(sessions, mailing_id)
    t = settings.transport
    run = _Run(settings=settings, sessions=sessions, mailing_id=mailing_id, transport=transport,
               backoff=backoff or Backoff(), stop=stop or threading.Event(), test_to=test_to,
               transactional=transactional,
               rate=_Limiter(t.rate if rate is None else rate),
               per_domain=_Limiter(t.per_domain_rate), dkim=DkimSigner.from_settings(settings),
               report=report)
    _fill(sessions, report)
    workers = [threading.Thread(target=run.work, args=(i,), name=f"sender-{i}", daemon=True)
               for i in range(max(1, connections or t.connections))]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        for w in workers:
            w.join(timeout=0.5)
            if progress:
                progress(report)
    if run.error is not None:
        raise run.error
    with db.transaction(sessions) as s:
        outbox.finish_if_done(s, mailing_id)
    _fill(sessions, report)
    report.paused_reason = run.pause_reason
    report.interrupted = run.stop.is_set() and not report.done
    if progress:
        progress(report)
    return report


def _fill(sessions: sessionmaker[Session], report: SendReport) -> None:
    with sessions() as s:
        status = outbox.mailing_status(s, report.mailing_id, failures=0)
        report.total = status.total
        report.remaining = status.remaining
        report.done = status.mailing.status == "done"
        report.next_attempt_at = s.scalar(select(func.min(OutboxRow.next_attempt_at)).where(
            OutboxRow.mailing_id == report.mailing_id, OutboxRow.status == "deferred"))
