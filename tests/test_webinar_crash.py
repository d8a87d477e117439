"""Interrupted webinar commands finish: each of edit, cancel, unregister (with a promotion),
remind and announce is killed with SIGKILL in the middle of its send (a real subprocess against
a slow SMTP server) and run again: every recipient gets the message once, or twice within the
documented window (a message the server took just before the kill, counted as re-sent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from newsletter.models import OutboxRow, Person, Registration, Webinar

from .helpers import TEST_ENV, future_start, new_webinar, seed

SLUG = "bredband"
N = 60  # registered (or, for announce, in the segment)


def _setup(site, *, registered: int = N, waitlisted: int = 0, capacity: int | None = None
           ) -> list[str]:
    """Contacts p000 ...; the first REGISTERED registered for SLUG, the next WAITLISTED on its
    waiting list (in that order). Returns every address."""
    addresses = seed(site, registered + waitlisted)
    new_webinar(site, future_start(), *(("--capacity", str(capacity)) if capacity else ()))
    start = datetime.now(UTC) - timedelta(hours=1)
    with site.transaction() as s:
        webinar_id = s.scalar(select(Webinar.id).where(Webinar.slug == SLUG))
        people = {p.email: p.id for p in s.scalars(select(Person))}
        for i, address in enumerate(addresses):
            s.add(Registration(webinar_id=webinar_id, person_id=people[address],
                               status="registered" if i < registered else "waitlisted",
                               created_at=start + timedelta(seconds=i)))
    return addresses


def _newsletter(site, url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, **TEST_ENV, "NEWSLETTER_TRANSPORT": url}
    return subprocess.Popen(  # cwd: the site, not the repository (its source would shadow)
        [sys.executable, "-m", "newsletter", "--root", str(site.root), *args],
        env=env, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_midway(site, server, args: tuple[str, ...], after: int) -> None:
    proc = _newsletter(site, server.url, *args)
    assert server.wait_for(after, timeout=60), proc.communicate(timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _again(site, server, args: tuple[str, ...]) -> str:
    result = site.cli(*args, env={"NEWSLETTER_TRANSPORT": server.url})
    return result.stdout


def _once_or_within_the_window(site, server, expected: set[str]) -> None:
    copies = server.copies()
    assert set(copies) == expected  # nobody missed, nobody else
    twice = {a for a, n in copies.items() if n > 1}
    assert all(n <= 2 for n in copies.values())  # one kill: at most one second copy each
    assert len(twice) <= site.settings.transport.connections  # one in flight per connection
    with site.transaction() as s:
        assert s.scalar(select(OutboxRow.id).where(OutboxRow.status != "sent")) is None
        reclaimed = set(s.scalars(select(Person.email).join(
            OutboxRow, OutboxRow.person_id == Person.id).where(
            OutboxRow.last_error.like("reclaimed%"))))
    assert twice <= reclaimed  # every second copy is one `send status` reports


def _shows_unfinished(site) -> None:
    shown = site.cli("webinar", "show", SLUG).stdout
    assert "Utskick som inte är klara" in shown and f"{SLUG}:" in shown


def test_edit_start_killed_then_run_again_updates_everyone(site, smtp_server):
    addresses = _setup(site)
    smtp_server.delay = 0.05
    args = ("webinar", "edit", SLUG, "--start", future_start(days=31))
    _kill_midway(site, smtp_server, args, after=20)
    _shows_unfinished(site)
    smtp_server.delay = 0
    out = _again(site, smtp_server, args)
    assert "Inget ändrades." in out and "inte gjorde klart" in out
    _once_or_within_the_window(site, smtp_server, set(addresses))
    assert "Utskick som inte är klara" not in site.cli("webinar", "show", SLUG).stdout


def test_cancel_killed_then_run_again_tells_everyone(site, smtp_server):
    addresses = _setup(site, registered=N - 5, waitlisted=5, capacity=N - 5)
    smtp_server.delay = 0.05
    args = ("webinar", "cancel", SLUG)
    _kill_midway(site, smtp_server, args, after=20)
    _shows_unfinished(site)
    smtp_server.delay = 0
    out = _again(site, smtp_server, args)
    assert "redan inställt" in out
    _once_or_within_the_window(site, smtp_server, set(addresses))


def test_unregister_with_a_promotion_killed_then_run_again_confirms_the_promoted(
        site, smtp_server):
    addresses = _setup(site, registered=3, waitlisted=1, capacity=3)
    leaving, promoted = addresses[0], addresses[3]
    smtp_server.delay = 1.0  # the kill lands while the first message (the withdrawal) waits
    args = ("webinar", "unregister", SLUG, leaving)
    _kill_midway(site, smtp_server, args, after=1)
    assert promoted not in smtp_server.copies()  # the confirmation was never sent
    _shows_unfinished(site)
    smtp_server.delay = 0
    out = _again(site, smtp_server, args)
    assert "var inte anmäld" in out and "inte gjorde klart" in out
    _once_or_within_the_window(site, smtp_server, {leaving, promoted})
    assert smtp_server.copies()[promoted] == 1
    with site.transaction() as s:
        status = s.scalar(select(Registration.status).join(
            Person, Person.id == Registration.person_id).where(Person.email == promoted))
    assert status == "registered"


def test_remind_killed_then_run_again_reminds_everyone(site, smtp_server):
    addresses = _setup(site)
    smtp_server.delay = 0.05
    args = ("webinar", "remind", SLUG, "--force")  # by hand, weeks early: on purpose
    _kill_midway(site, smtp_server, args, after=20)
    _shows_unfinished(site)
    smtp_server.delay = 0
    _again(site, smtp_server, args)
    _once_or_within_the_window(site, smtp_server, set(addresses))


def test_announce_killed_then_run_again_invites_everyone(site, smtp_server):
    addresses = seed(site, N)
    new_webinar(site, future_start())
    smtp_server.delay = 0.05
    args = ("webinar", "announce", SLUG, "--to", "medlemmar", "--yes")
    _kill_midway(site, smtp_server, args, after=20)
    _shows_unfinished(site)
    smtp_server.delay = 0
    _again(site, smtp_server, args)
    _once_or_within_the_window(site, smtp_server, set(addresses))
