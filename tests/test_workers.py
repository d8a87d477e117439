"""Several sender processes on one mailing: claims never overlap (outbox.sending.claim:
compare-and-set, FOR UPDATE SKIP LOCKED on PostgreSQL), and when one is killed with SIGKILL the
others take its rows back and finish the mailing. Runs on SQLite and, in CI, on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from newsletter.kinds.issue import IssueSource
from newsletter.models import MailingStatus, OutboxRow, OutboxStatus, Person
from newsletter.outbox import creating, lifecycle, sending

from .helpers import TEST_ENV, output_of, seed

CONNECTIONS = 2  # per sender process


def _sender(site, url: str, mailing_id: int) -> subprocess.Popen:
    env = {**os.environ, **TEST_ENV, "NEWSLETTER_TRANSPORT": url,
           "NEWSLETTER_CONNECTIONS": str(CONNECTIONS)}
    # cwd: the site, never the repository, whose source tree would shadow the installed package.
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--root", str(site.root), "send", "resume",
         str(mailing_id)],
        env=env, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_three_senders_one_killed_the_others_finish_each_recipient_once(site, smtp_server):
    addresses = seed(site, 90)
    with site.transaction() as s:
        mailing_id = creating.create_mailing(
            s, site.settings, IssueSource(site.settings, "2026-12"), "medlemmar").mailing.id
    smtp_server.delay = 0.05  # a slow server: the kill lands while every sender holds rows
    senders = [_sender(site, smtp_server.url, mailing_id) for _ in range(3)]
    try:
        assert smtp_server.wait_for(25, timeout=120), output_of(senders[0])
        senders[0].send_signal(signal.SIGKILL)
        senders[0].wait(10)  # reaped: the survivors see that its process is gone
        for proc in senders[1:]:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
    finally:
        for proc in senders:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert smtp_server.sessions >= 3 * CONNECTIONS  # all three were sending
    copies = smtp_server.copies()
    assert set(copies) == set(addresses)  # nobody missed, without another run
    duplicates = {a for a, n in copies.items() if n > 1}
    assert all(n <= 2 for n in copies.values())
    assert len(duplicates) <= CONNECTIONS  # the documented window: the killed one's connections
    with site.transaction() as s:
        progress = lifecycle.mailing_status(s, mailing_id)
        reclaimed = set(s.scalars(select(Person.email).join(
            OutboxRow, OutboxRow.person_id == Person.id).where(
            OutboxRow.mailing_id == mailing_id, OutboxRow.last_error == sending.RECLAIMED)))
        unsent = s.scalar(select(func.count()).where(OutboxRow.mailing_id == mailing_id,
                                                      OutboxRow.status != OutboxStatus.SENT))
    assert progress.mailing.status == MailingStatus.DONE and unsent == 0
    assert reclaimed  # the survivors took the killed sender's rows back themselves
    assert duplicates <= reclaimed  # every second copy is one `send status` reports
