"""The background sender: a web process's own thread that sends what its requests recorded.

A web request never waits on the mail relay: it records what must happen (outbox rows, a sign-up) in
its transaction, commits, hands the mailing ids to `submit(ids)` (or calls `wake()` when it recorded
work for a task) and answers. One daemon thread per process ("newsletter-background") then sends
those mailings one after the other through `sender.send_mailing`. Every few seconds
(`Schedule.sweep_every`) it also sweeps: the tasks it was given (e.g. `signups.handle_pending`,
which turns recorded sign-ups into registrations and their confirmations), and
`outbox.sending.due_mailings`: the transactional mailings (confirmations and other messages someone
asked for) and the mailings submitted here that still have rows due, including those an earlier
process left behind. A confirmation whose delivery failed is therefore retried like any deferred
message (`[transport] retry_after`, doubled each time), without anyone running a command.

Alongside other senders. The engine's exactly-once claims make it safe to run while
`newsletter worker`, a CLI command or another web process sends the same mailings: each row is
claimed by one of them.

Failure modes. A relay that does not answer costs a message `[transport] timeout` (twice: one
reconnect); the message is deferred, and the sender then rests until that message is due
instead of trying every other mailing against the same dead relay. A configuration error
(the transport URL, the TLS or DKIM files) found when the sender is made, or later in the
background, is kept: `check()` raises it, so a page that is about to create mail answers 500
and records nothing, while unsubscribes and the archive keep working. Every other failure
(a paused mailing, the database) is logged once per mailing with the mailing's id, never
raised into a request. `stop()` (also registered with atexit) lets the messages in flight
finish, puts the rest back and waits at most `Schedule.stop_wait` seconds; a message stuck on
a relay past that is left claimed by this process and taken back by the next sender (the
"possibly sent" window of sender.py).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import sender
from .errors import ConfigError, NewsletterError, NotFound
from .messages import DkimSigner
from .outbox import sending
from .settings import Settings
from .transports import Transport, from_settings

THREAD_NAME = "newsletter-background"

# A task: work recorded by requests that the thread does before sending (e.g. sign-ups); it
# runs in its own transactions on the writers it is given and returns mailing ids to send.
Task = Callable[[Settings, sessionmaker[Session]], list[int]]


@dataclass(frozen=True)
class Schedule:
    """When the background sender works."""

    sweep_every: float = 5.0  # seconds between sweeps for due mailings and recorded tasks
    settle: float = 0.05  # after a wake-up: let the request finish, and batch a burst
    stop_wait: float = 10.0  # at most this long for the messages in flight at stop()


class BackgroundSender:
    """One per web process: `submit`, `wake`, `check`, `start`, `stop` (module docstring)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 writers: sessionmaker[Session], *, tasks: Sequence[Task] = (),
                 schedule: Schedule | None = None, backoff: sender.Backoff | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.settings = settings
        self.sessions, self.writers = sessions, writers
        self.tasks = tuple(tasks)
        self.schedule = schedule or Schedule()
        self.backoff = backoff or sender.Backoff(base=settings.transport.retry_after, linger=0)
        self.log = logger or logging.getLogger("newsletter.background")
        self.transport: Transport | None = None
        self.config_error: ConfigError | None = None  # found when made: fixed only by a restart
        self._found: ConfigError | None = None  # found while sending: cleared by a good send
        try:
            self.transport = from_settings(settings)
            DkimSigner.from_settings(settings)  # the key file is read now, and at every send
        except ConfigError as exc:
            self.config_error = exc
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted: list[int] = []  # submitted, not taken yet
        self._woken = False  # a request recorded work for the tasks
        self._busy = False
        self._followed: set[int] = set()  # submitted here and not done: swept like the rest
        self._rest_until = 0.0  # time.monotonic(): the relay deferred everything, wait for it
        self._told: set[tuple[object, str]] = set()  # (mailing id or task, what): logged once

    # --- what requests call ------------------------------------------------------------------

    def check(self) -> None:
        """Raise the configuration error that keeps this process from sending, if any: the
        caller (a page about to create mail) fails before it records anything."""
        error = self.config_error or self._found
        if error is not None:
            raise error

    def submit(self, mailing_ids: Iterable[int] = ()) -> None:
        """Send MAILING_IDS soon, in the background; returns at once and never raises."""
        with self._cond:
            self._wanted.extend(mailing_ids)
            self._woken = True
            self._cond.notify_all()
        self.start()

    def wake(self) -> None:
        """A request recorded work for the tasks: run them soon."""
        self.submit(())

    # --- the thread's life -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once; later calls do nothing); it is stopped at process exit."""
        with self._cond:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float | None = None) -> bool:
        """Finish the messages in flight, put the rest back and end the thread; wait at most
        TIMEOUT seconds (default Schedule.stop_wait). True if the thread has ended."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        atexit.unregister(self.stop)
        thread = self._thread
        if thread is None:
            return True
        thread.join(self.schedule.stop_wait if timeout is None else timeout)
        return not thread.is_alive()

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is waiting or being sent (at most TIMEOUT seconds): for tests and
        for a command that wants its messages out before it ends."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or self._wanted or self._woken:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _run(self) -> None:
        next_sweep = 0.0  # sweep at once: leftovers of an earlier process are due now
        while True:
            with self._cond:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if now < self._rest_until:
                        self._cond.wait(self._rest_until - now)
                    elif self._wanted or self._woken or now >= next_sweep:
                        break
                    else:
                        self._cond.wait(next_sweep - now)
                if self._stop.is_set():
                    self._busy = False
                    self._cond.notify_all()
                    return
                self._busy = True
                woken = self._woken
            if woken and self._stop.wait(self.schedule.settle):
                continue
            with self._cond:
                ids, self._wanted, self._woken = self._wanted, [], False
            sweep = time.monotonic() >= next_sweep
            try:
                self._round(ids, sweep)
            finally:
                if sweep:
                    next_sweep = time.monotonic() + self.schedule.sweep_every
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # --- one round: tasks, the sweep, the sends ----------------------------------------------

    def _round(self, ids: list[int], sweep: bool) -> None:
        for task in self.tasks:
            ids += self._task(task)
        self._followed.update(ids)
        if sweep and self.transport is not None:
            ids += self._due()
        todo = list(dict.fromkeys(ids))
        for n, mailing_id in enumerate(todo):
            if self._stop.is_set() or time.monotonic() < self._rest_until:
                with self._cond:  # the relay is down: these wait for the next round
                    self._wanted[:0] = todo[n:]
                return
            self._send(mailing_id)

    def _task(self, task: Task) -> list[int]:
        try:
            return list(task(self.settings, self.writers))
        except (NewsletterError, SQLAlchemyError, OSError) as exc:
            self._tell(task, exc)
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
            self._tell(task, exc, trace=True)
        return []

    def _due(self) -> list[int]:
        try:
            with self.sessions() as s:
                return sending.due_mailings(s, datetime.now(UTC), also=self._followed)
        except SQLAlchemyError as exc:
            self._tell("sweep", exc)
            return []

    def _send(self, mailing_id: int) -> None:
        if self.transport is None:
            return  # cannot send (config_error): the mailing waits for a worker or the CLI
        try:
            report = sender.send_mailing(self.settings, self.sessions, mailing_id,
                                         transport=self.transport, backoff=self.backoff,
                                         stop=self._stop)
        except ConfigError as exc:
            self._found = exc
            self._tell(mailing_id, exc)
            return
        except NotFound:
            self._followed.discard(mailing_id)
            return
        except (NewsletterError, SQLAlchemyError, OSError) as exc:  # e.g. a paused mailing
            self._followed.discard(mailing_id)
            self._tell(mailing_id, exc)
            return
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
            self._tell(mailing_id, exc, trace=True)
            return
        self._found = None
        if report.paused_reason:
            self._tell(mailing_id, f"paused: {report.paused_reason}")
        if report.done or report.paused_reason:
            self._followed.discard(mailing_id)
        if report.deferred and not report.sent and report.next_attempt_at is not None:
            wait = (report.next_attempt_at - datetime.now(UTC)).total_seconds()
            self._rest_until = time.monotonic() + max(wait, self.schedule.sweep_every)

    def _tell(self, what: object, problem: object, *, trace: bool = False) -> None:
        """Log PROBLEM of WHAT (a mailing id, a task, the sweep) once."""
        key = (what, str(problem))
        if key in self._told:
            return
        self._told.add(key)
        name = (f"mailing {what}" if isinstance(what, int)
                else getattr(what, "__qualname__", str(what)))
        self.log.error("background sender, %s: %s", name, problem, exc_info=trace)
