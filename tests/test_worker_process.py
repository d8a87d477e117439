"""`newsletter worker` as real processes on one database (SQLite here, PostgreSQL when the suite
runs with NEWSLETTER_TEST_PG_URL): killed with SIGKILL mid-mailing and started again, two at
once on the same scheduled mailing, stopped with SIGTERM; copies counted per recipient by a
recording SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from newsletter import heartbeat, schedule
from newsletter.kinds.issue import IssueSource
from newsletter.models import Mailing, OutboxRow

from .helpers import TEST_ENV, output_of, seed


def _worker(site, url: str) -> subprocess.Popen:
    env = {**os.environ, **TEST_ENV, "NEWSLETTER_TRANSPORT": url}
    # cwd: the site, never the repository, whose source tree would shadow the installed package.
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--root", str(site.root), "worker", "--interval",
         "0.2"], env=env, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _schedule_now(site) -> int:
    """The sample issue scheduled to `medlemmar` for a moment ago: due at once."""
    at = datetime.now(UTC).replace(microsecond=0)
    with site.writing() as s:
        return schedule.schedule(s, site.settings, IssueSource(site.settings, "2026-12"),
                                 "medlemmar", at, now=at).id


def _wait_until_done(site, mailing_id: int, procs, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with site.transaction() as s:
            if s.get(Mailing, mailing_id).status == "done":
                return
        for proc in procs:
            assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"mailing {mailing_id} not done after {timeout} s")


def _stop(procs) -> list[str]:
    errors = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        errors.append(err)
    return errors


def test_kill_9_mid_scheduled_mailing_then_restart_nobody_missed_duplicates_within_the_window(
        site, smtp_server):
    addresses = seed(site, 60)
    connections = site.settings.transport.connections
    smtp_server.delay = 0.03  # slow enough that the kills land in the middle
    mailing_id = _schedule_now(site)
    kills = 0
    for target in (12, 30):
        proc = _worker(site, smtp_server.url)
        assert smtp_server.wait_for(target, timeout=60), output_of(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    proc = _worker(site, smtp_server.url)
    _wait_until_done(site, mailing_id, [proc])
    (log,) = _stop([proc])
    assert "stoppats" in log
    copies = smtp_server.copies()
    assert set(copies) == set(addresses)  # nobody missed
    duplicates = {a for a, n in copies.items() if n > 1}
    assert all(n <= 1 + kills for n in copies.values())
    assert len(duplicates) <= kills * connections  # the documented window (sender.py)
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.status != "sent")) == 0
        assert s.scalar(select(func.count()).select_from(Mailing)) == 1  # started once


def test_two_workers_send_a_scheduled_mailing_every_recipient_exactly_once(site, smtp_server):
    addresses = seed(site, 120)
    smtp_server.delay = 0.02
    procs = [_worker(site, smtp_server.url) for _ in range(2)]
    deadline = time.monotonic() + 60
    while True:  # both alive and beating before the mailing is due
        with site.transaction() as s:
            if len(heartbeat.beats(s)) == 2:
                break
        assert time.monotonic() < deadline, [p.poll() for p in procs]
        time.sleep(0.1)
    mailing_id = _schedule_now(site)
    _wait_until_done(site, mailing_id, procs)
    logs = _stop(procs)
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert sum("Utskick 1 har börjat" in log for log in logs) == 1  # one start
    with site.transaction() as s:
        senders = {by.split(":")[1] for by in s.scalars(
            select(OutboxRow.claimed_by).where(OutboxRow.status == "sent"))}
    assert len(senders) == 2, logs  # both took part, and nobody got a second copy


def test_sigterm_stops_after_the_messages_in_flight_and_a_restart_finishes(site, smtp_server):
    addresses = seed(site, 40)
    smtp_server.delay = 0.03
    mailing_id = _schedule_now(site)
    proc = _worker(site, smtp_server.url)
    assert smtp_server.wait_for(8, timeout=60)
    _stop([proc])
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.status == "sending")) == 0
        assert s.scalar(select(func.count()).where(OutboxRow.status == "pending")) > 0
    assert smtp_server.wait_until_idle()  # the stopped worker said QUIT on every connection
    proc = _worker(site, smtp_server.url)
    _wait_until_done(site, mailing_id, [proc])
    _stop([proc])
    assert smtp_server.copies() == {a: 1 for a in addresses}  # a clean stop: no second copy
