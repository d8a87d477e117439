"""`newsletter send ...` and `newsletter mail` as a user runs them, including kill -9 mid-send."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from newsletter import events, sender
from newsletter.kinds.issue import IssueSource
from newsletter.links import unsubscribe_url
from newsletter.models import ArchivedIssue, Mailing, OutboxRow, Person
from newsletter.outbox import creating
from newsletter.transports import SMTPTransport

from .helpers import TEST_ENV, check_message, maildir, output_of, seed


def received(site) -> list:
    box = maildir(site)
    return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
            for k in box.iterkeys()]


def test_send_issue_into_the_default_maildir_once(site):
    addresses = seed(site, 12)
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar")
    assert "12 skickade" in result.stdout and "klart" in result.stdout
    box = maildir(site)
    assert sorted(m["Delivered-To"] for m in box) == addresses
    assert list((site.root / "Maildir" / "tmp").iterdir()) == []
    with site.transaction() as s:
        persons = {p.email: p for p in s.scalars(select(Person))}
        archived = s.scalar(select(ArchivedIssue).where(ArchivedIssue.month == "2026-12"))
        assert archived is not None and "__NL_" not in archived.html + archived.text
    for key in box.iterkeys():
        data = box.get_bytes(key).replace(b"\n", b"\r\n")
        msg = check_message(data)
        person = persons[msg["Delivered-To"]]
        assert msg["List-Unsubscribe"].startswith(f"<{unsubscribe_url(site.settings, person)}>")
        html = msg.get_body(("html",)).get_content()
        assert "__NL_" not in html and "Bostadsförsörjning" in html
        assert msg["Subject"].startswith("Nyhetsbrev december 2026")
    again = site.cli("send", "issue", "2026-12", "--to", "medlemmar")
    assert "redan klart" in again.stdout
    assert len(maildir(site)) == 12
    # Another segment later: those who already got the issue are skipped, as the dry run says.
    plan = site.cli("send", "issue", "2026-12", "--to", "role:kommunchef", "--dry-run")
    assert "Varav 4 redan har fått det" in plan.stdout and "så 0 får det nu" in plan.stdout
    other = site.cli("send", "issue", "2026-12", "--to", "role:kommunchef")
    assert "4 i segmentet har redan fått det" in other.stdout
    assert len(maildir(site)) == 12


def test_dry_run_sends_and_creates_nothing(site):
    seed(site, 8)
    result = site.cli("send", "issue", "2026-12", "--to", "kommunchefer", "--dry-run")
    assert "Mottagare: 3" in result.stdout
    assert "Anna Berg <p000@example.se>" in result.stdout
    assert "KiB" in result.stdout
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Mailing)) == 0
    assert not (site.root / "Maildir").exists()


def test_asks_before_sending_to_many(site):
    seed(site, 60)
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", input="n\n", ok=False)
    assert result.exit_code != 0 and "60 mottagare" in result.stdout
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Mailing)) == 0
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    assert len(maildir(site)) == 60


def test_test_send_goes_only_to_the_test_address(site):
    seed(site, 5)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "redaktor@example.se")
    [msg] = received(site)
    assert msg["Delivered-To"] == "redaktor@example.se"
    assert msg["Subject"].startswith("[TEST] ")
    real = site.cli("send", "issue", "2026-12", "--to", "medlemmar")
    assert "5 skickade" in real.stdout


def test_targeted_mail_to_the_kommunchefer(site):
    seed(site, 9)
    body = site.root / "enkat.md"
    body.write_text("Hej!\n\nVi vill veta hur **bredbandsutbyggnaden** går i er kommun.\n",
                    encoding="utf-8")
    args = ("mail", "--to", "kommunchefer", "--subject", "Enkät om bredband", "--body", str(body))
    result = site.cli(*args)
    assert "3 skickade" in result.stdout
    msgs = received(site)
    assert sorted(m["Delivered-To"] for m in msgs) == [
        "p000@example.se", "p003@example.se", "p006@example.se"]
    assert all(m["Subject"] == "Enkät om bredband" for m in msgs)
    assert "redan klart" in site.cli(*args).stdout
    assert len(maildir(site)) == 3


def test_pause_status_and_resume_over_smtp(site, smtp_server):
    addresses = seed(site, 10)
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    smtp_server.reject_all("554 5.7.1 Relay access denied")
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes", env=env,
                      ok=False)
    assert result.exit_code == 1 and "pausat" in result.stderr and "5.7.1" in result.stderr
    status = site.cli("send", "status", "1").stdout
    assert "Status: pausat" in status and "väntar: 10" in status
    assert "pausat" in site.cli("send", "status").stdout
    smtp_server.reject_all(None)
    smtp_server.reject(["p002@example.se"])
    resumed = site.cli("send", "resume", "1", env=env)
    assert "klart" in resumed.stdout
    status = site.cli("send", "status", "1").stdout
    assert "skickade: 9" in status and "studsade: 1" in status
    assert "<p002@example.se>: studsade: hard bounce" in status and "misslyckade" not in status
    assert smtp_server.copies() == {a: 1 for a in addresses if a != "p002@example.se"}
    site.cli("send", "pause", "1", ok=False)  # done: nothing to pause
    assert "redan klart" in site.cli("send", "issue", "2026-12", "--to", "medlemmar",
                                     env=env).stdout


def _sender(site, url: str) -> subprocess.Popen:
    env = {**os.environ, **TEST_ENV, "NEWSLETTER_TRANSPORT": url}
    # cwd: the site, never the repository, whose source tree would shadow the installed package.
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--root", str(site.root), "send", "issue",
         "2026-12", "--to", "medlemmar", "--yes"],
        env=env, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_mid_send_then_resume_nobody_missed_duplicates_within_the_window(
        site, smtp_server):
    addresses = seed(site, 60)
    connections = site.settings.transport.connections
    smtp_server.delay = 0.03  # slow enough that the kills land in the middle
    kills = 0
    for target in (12, 30):
        proc = _sender(site, smtp_server.url)
        assert smtp_server.wait_for(target, timeout=60), output_of(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    status = site.cli("send", "status", "1").stdout
    assert "Möjligen skickade" in status
    proc = _sender(site, smtp_server.url)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "klart" in out
    copies = smtp_server.copies()
    assert set(copies) == set(addresses)  # nobody missed
    duplicates = {a for a, n in copies.items() if n > 1}
    assert all(n <= 1 + kills for n in copies.values())
    assert len(duplicates) <= kills * connections  # the documented window
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.status != "sent")) == 0
        reclaimed = set(s.scalars(select(Person.email).join(
            OutboxRow, OutboxRow.person_id == Person.id).where(
            OutboxRow.last_error.like("reclaimed%"))))
    assert duplicates <= reclaimed  # every second copy is one the status reports


def test_sigterm_stops_cleanly_and_the_same_command_resumes(site, smtp_server):
    addresses = seed(site, 40)
    smtp_server.delay = 0.03
    proc = _sender(site, smtp_server.url)
    assert smtp_server.wait_for(8, timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.status == "sending")) == 0
        assert s.scalar(select(func.count()).where(OutboxRow.status == "pending")) > 0
    assert smtp_server.wait_until_idle()  # the stopped sender said QUIT on every connection
    proc = _sender(site, smtp_server.url)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert smtp_server.copies() == {a: 1 for a in addresses}  # a clean stop: no second copy


def test_resume_sends_deferred_messages_at_once(site, smtp_server):
    addresses = seed(site, 3)
    with site.transaction() as s:
        source = IssueSource(site.settings, "2026-12")
        mailing_id = creating.create_mailing(s, site.settings, source, "medlemmar").mailing.id
    smtp_server.tempfail(1)
    transport = SMTPTransport("smtp", "127.0.0.1", smtp_server.port, timeout=10)
    report = sender.send_mailing(site.settings, site.sessions(), mailing_id, transport=transport,
                                 backoff=sender.Backoff(base=3600, linger=5))
    assert report.remaining == 1 and report.next_attempt_at is not None  # due in about an hour
    resumed = site.cli("send", "resume", str(mailing_id),
                       env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    assert "klart" in resumed.stdout
    assert smtp_server.copies() == {a: 1 for a in addresses}


def test_test_to_refuses_an_address_on_the_suppression_list(site):
    seed(site, 3)
    site.cli("contacts", "forget", "p001@example.se", "--yes")
    with site.transaction() as s:
        person = s.scalar(select(Person).where(Person.email == "p002@example.se"))
        events.hard_bounce(s, site.settings.secret_key, person, source="test")
    body = site.root / "enkat.md"
    body.write_text("Hej!\n", encoding="utf-8")
    for address, why in (("p001@example.se", "har raderats"), ("P002@example.se", "har studsat")):
        for command in (("send", "issue", "2026-12"),
                        ("mail", "--subject", "Enkät", "--body", str(body))):
            got = site.cli(*command, "--to", "medlemmar", "--test-to", "p000@example.se",
                           "--test-to", address, ok=False)
            assert got.exit_code == 1
            (line,) = got.stderr.strip().splitlines()
            assert address.lower() in line and why in line and "inget testutskick" in line
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Mailing)) == 0  # not even p000's
    assert not (site.root / "Maildir").exists()
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "p000@example.se")
    assert len(maildir(site)) == 1
