"""`newsletter worker`: the long-running process that sends what is due (worker.py)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime

import click

from ..i18n import _
from ..worker import Worker
from .app import INTERRUPTED, App, pass_app


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one round and exit (e.g. from cron).")
@click.option("--interval", type=click.FloatRange(min=0.05, max=3600),
              help="Seconds between rounds (default: [worker] interval, 5).")
@pass_app
def worker(app: App, once: bool, interval: float | None) -> None:
    """Send scheduled mailings when due, retry deferred messages, send webinar and remiss
    reminders, read the bounce mailbox, fetch the intake feeds and apply retention, every few
    seconds until stopped. SIGTERM or Ctrl-C stop it after the messages in flight; several
    workers at once are harmless. docs/DEPLOY.md has its systemd unit.

    Example: newsletter worker
    """
    stop = threading.Event()
    signals = {"received": None}

    def handler(signum, _frame):
        signals["received"] = signum
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    runner = Worker(app.settings, app.sessions, app.writers, stop=stop, log=_log)
    try:
        if not once:
            _log(_("Worker {id} started: {seconds} s between rounds.").format(
                id=runner.worker_id, seconds=f"{interval or app.settings.worker.interval:g}"))
        runner.run(once=once, interval=interval)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if signals["received"] is not None:
        _log(_("Worker {id} stopped.").format(id=runner.worker_id))
    if signals["received"] == signal.SIGINT:
        sys.exit(INTERRUPTED)


def _log(line: str) -> None:
    stamp = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    click.echo(f"{stamp} {line}", err=True)


def register(main: click.Group) -> None:
    main.add_command(worker)
