"""The send engine on a real aiosmtpd: exactly once, retries, bounces, pauses, resume, claims."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from newsletter import sender
from newsletter.contacts import find_person, unsubscribe
from newsletter.errors import SendError
from newsletter.events import is_suppressed, suppress
from newsletter.models import Event, Mailing, MailingVariant, OutboxRow, Person
from newsletter.outbox import creating, lifecycle, sending
from newsletter.transports import SMTPTransport

from .helpers import Canned, seed

FAST = sender.Backoff(base=0.02, cap=0.1, max_attempts=5, linger=10)


def make_mailing(site, source: Canned | None = None, segment: str = "medlemmar") -> int:
    with site.transaction() as s:
        return creating.create_mailing(s, site.settings, source or Canned(), segment).mailing.id


def send(site, mailing_id, server, **kw) -> sender.SendReport:
    transport = SMTPTransport("smtp", "127.0.0.1", server.port, timeout=10)
    kw.setdefault("backoff", FAST)
    return sender.send_mailing(site.settings, site.sessions(), mailing_id, transport=transport,
                               **kw)


def states(site, mailing_id) -> dict[str, int]:
    with site.transaction() as s:
        return dict(lifecycle.mailing_status(s, mailing_id).counts)


def test_every_recipient_gets_exactly_one_personal_copy(site, smtp_server):
    addresses = seed(site, 30)
    mailing_id = make_mailing(site)
    report = send(site, mailing_id, smtp_server)
    assert report.done and report.sent == 30
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert smtp_server.sessions <= site.settings.transport.connections
    with site.transaction() as s:
        variants = s.scalars(select(MailingVariant.key).where(
            MailingVariant.mailing_id == mailing_id)).all()
        assert sorted(variants) == ["kc", "other"]  # each variant rendered and frozen once
        anna = find_person(s, "p000@example.se")
        from newsletter.links import unsubscribe_url

        url = unsubscribe_url(site.settings, anna)
    msg = next(m for m in smtp_server.parsed() if m["To"].addresses[0].addr_spec == anna.email)
    assert msg["To"].addresses[0].display_name == "Anna Berg"
    assert url in msg["List-Unsubscribe"]
    assert "Hej Anna Berg (kc)" in msg.get_body(("plain",)).get_content()
    assert msg["Message-ID"].startswith(f"<{mailing_id}.{anna.public_id}@")
    # Again: nothing more is sent.
    again = send(site, mailing_id, smtp_server)
    assert again.done and again.sent == 0 and len(smtp_server.messages) == 30


def test_creating_twice_returns_the_same_mailing_with_frozen_content(site, smtp_server):
    seed(site, 6)
    first = make_mailing(site)
    second = make_mailing(site, Canned(subject="Ett annat ämne"))
    assert first == second
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.mailing_id == first)) == 6
        assert s.scalar(select(func.count()).select_from(Mailing)) == 1
    send(site, first, smtp_server)
    assert {m["Subject"] for m in smtp_server.parsed()} == {
        "Nyhetsbrev december: strandskyddet och bredbandet"}


def test_temporary_failures_are_retried_with_backoff(site, smtp_server):
    addresses = seed(site, 12)
    mailing_id = make_mailing(site)
    smtp_server.tempfail(5)
    report = send(site, mailing_id, smtp_server)
    assert report.done and report.deferred == 5
    assert smtp_server.copies() == {a: 1 for a in addresses}
    with site.transaction() as s:
        attempts = s.scalars(select(OutboxRow.attempts).where(
            OutboxRow.mailing_id == mailing_id)).all()
    assert sorted(attempts)[-5:] == [2] * 5


def test_deferred_rows_wait_for_a_later_run_when_not_due_soon(site, smtp_server):
    seed(site, 3)
    mailing_id = make_mailing(site)
    smtp_server.tempfail(1)
    report = send(site, mailing_id, smtp_server,
                  backoff=sender.Backoff(base=3600, linger=5))
    assert not report.done and report.remaining == 1 and report.next_attempt_at is not None
    with site.transaction() as s:
        s.execute(update(OutboxRow).where(OutboxRow.status == "deferred")
                  .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert send(site, mailing_id, smtp_server).done
    assert len(smtp_server.copies()) == 3


def test_hard_bounce_fails_and_suppresses_the_address(site, smtp_server):
    addresses = seed(site, 10)
    mailing_id = make_mailing(site)
    smtp_server.reject(["p004@example.se"])
    report = send(site, mailing_id, smtp_server)
    assert report.done and report.bounced == 1 and report.sent == 9
    assert set(smtp_server.copies()) == set(addresses) - {"p004@example.se"}
    with site.transaction() as s:
        person = find_person(s, "p004@example.se")
        assert person.status == "bounced"
        assert is_suppressed(s, site.settings.secret_key, "p004@example.se")
        assert s.scalar(select(Event.kind).where(Event.person_id == person.id,
                                                 Event.kind == "bounced"))
        status = lifecycle.mailing_status(s, mailing_id)
    assert status.failures == [("p004@example.se", ("failed: hard bounce: 550 5.1.1 "
                                                     "Recipient address rejected: User unknown"))]


def test_policy_refusal_pauses_without_blaming_anyone_then_resume(site, smtp_server):
    addresses = seed(site, 10)
    mailing_id = make_mailing(site)
    smtp_server.reject_all("554 5.7.1 Relay access denied")
    report = send(site, mailing_id, smtp_server)
    assert report.paused_reason and "5.7.1" in report.paused_reason
    assert not report.done and smtp_server.copies() == {}
    with site.transaction() as s:
        assert s.get(Mailing, mailing_id).status == "paused"
        assert s.scalar(select(func.count()).where(Person.status != "active")) == 0
        assert s.scalar(select(func.count()).where(OutboxRow.status == "sending")) == 0
    with pytest.raises(SendError, match="send resume"):
        send(site, mailing_id, smtp_server)
    smtp_server.reject_all(None)
    with site.transaction() as s:
        lifecycle.unpause(s, mailing_id)
    assert send(site, mailing_id, smtp_server).done
    assert smtp_server.copies() == {a: 1 for a in addresses}


def test_failures_in_a_row_pause_the_mailing(site, smtp_server):
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "max_consecutive_failures = 20", "max_consecutive_failures = 3"), encoding="utf-8")
    seed(site, 10)
    mailing_id = make_mailing(site)
    smtp_server.tempfail(100)
    report = send(site, mailing_id, smtp_server, connections=1)
    assert report.paused_reason and "3 misslyckade" in report.paused_reason
    assert states(site, mailing_id) == {"deferred": 3, "pending": 7}


def test_dropped_connections_lose_and_duplicate_nothing(site, smtp_server):
    addresses = seed(site, 20)
    mailing_id = make_mailing(site)
    smtp_server.drop_after(6)
    assert send(site, mailing_id, smtp_server).done
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert smtp_server.sessions > 2


def test_two_senders_on_one_mailing_are_harmless(site, smtp_server):
    addresses = seed(site, 80)
    mailing_id = make_mailing(site)
    smtp_server.delay = 0.01
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(
        send(site, mailing_id, smtp_server, connections=1))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert sum(r.sent for r in reports) == 80
    assert all(r.sent > 0 for r in reports)  # both really worked on it


def _send_in_background(site, mailing_id, server) -> tuple[threading.Thread, list]:
    """A one-connection send in a thread, returned once two messages are through (every row of
    a small mailing is claimed by then); the report lands in the list."""
    result: list[sender.SendReport] = []
    worker = threading.Thread(target=lambda: result.append(
        send(site, mailing_id, server, connections=1)))
    worker.start()
    assert server.wait_for(2)
    return worker, result


def test_unsubscribe_during_a_send_takes_effect_before_the_message(site, smtp_server):
    addresses = seed(site, 20)
    mailing_id = make_mailing(site)
    smtp_server.delay = 0.05
    worker, result = _send_in_background(site, mailing_id, smtp_server)
    with site.writing() as s:
        unsubscribe(s, site.settings.secret_key, find_person(s, "p019@example.se"), source="web")
    worker.join(60)
    assert result[0].done and result[0].suppressed == 1
    assert smtp_server.copies() == {a: 1 for a in addresses if a != "p019@example.se"}


def test_an_address_changed_after_the_claim_is_checked_as_it_is_now(site, smtp_server):
    addresses = seed(site, 20)
    mailing_id = make_mailing(site)
    smtp_server.delay = 0.05
    # Every row is claimed by the time this returns, with the old addresses.
    worker, result = _send_in_background(site, mailing_id, smtp_server)
    with site.writing() as s:
        suppress(s, site.settings.secret_key, "borta@example.se", "bounced")
        find_person(s, "p019@example.se").email = "borta@example.se"
    worker.join(60)
    assert result[0].done and result[0].suppressed == 1
    assert smtp_server.copies() == {a: 1 for a in addresses if a != "p019@example.se"}


def test_stop_finishes_messages_in_flight_and_leaves_the_rest_pending(site, smtp_server):
    addresses = seed(site, 30)
    mailing_id = make_mailing(site)
    smtp_server.delay = 0.03
    stop = threading.Event()
    threading.Thread(target=lambda: smtp_server.wait_for(5) and stop.set()).start()
    report = send(site, mailing_id, smtp_server, stop=stop)
    assert report.interrupted and not report.done
    counts = states(site, mailing_id)
    assert counts.get("sending", 0) == 0
    assert counts["sent"] == len(smtp_server.messages) and counts["pending"] > 0
    assert send(site, mailing_id, smtp_server).done
    assert smtp_server.copies() == {a: 1 for a in addresses}


def test_a_dead_senders_claims_are_reported_and_taken_back(site, smtp_server):
    seed(site, 5)
    mailing_id = make_mailing(site)
    with site.transaction() as s:
        s.execute(update(OutboxRow).where(OutboxRow.id.in_(
            select(OutboxRow.id).order_by(OutboxRow.id).limit(2)))
            .values(status="sending", claimed_by="somewhere-else:1:abcd:0",
                    claimed_at=datetime.now(UTC) - sending.STALE_AFTER - timedelta(minutes=1)))
        s.execute(update(OutboxRow).where(OutboxRow.status == "pending").where(
            OutboxRow.id == select(func.max(OutboxRow.id)).scalar_subquery())
            .values(status="sending", claimed_by=sending.claimant(),
                    claimed_at=datetime.now(UTC)))  # a live claim (this process): left alone
        status = lifecycle.mailing_status(s, mailing_id)
    assert status.possibly_sent == 2
    report = send(site, mailing_id, smtp_server)
    assert report.reclaimed == 2 and report.sent == 4 and not report.done
    with site.transaction() as s:
        status = lifecycle.mailing_status(s, mailing_id)
    assert status.reclaimed == 2 and status.counts["sending"] == 1


def test_test_mailing_goes_to_one_address_and_marks_nobody(site, smtp_server):
    seed(site, 5)
    source = Canned(key="enkat", subject="Enkät om bredband", variant=lambda p: "alla")
    with site.transaction() as s:
        [mailing] = creating.create_test_mailings(s, site.settings, source,
                                                  ["granskare@example.se"])
        mailing_id = mailing.id
    assert send(site, mailing_id, smtp_server).done
    [msg] = smtp_server.parsed()
    assert msg["Subject"] == "[TEST] Enkät om bredband"
    assert msg["To"].addresses[0].addr_spec == "granskare@example.se"
    with site.transaction() as s:
        assert creating.find_mailing(s, "targeted", "enkat", "medlemmar") is None
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 1


def test_per_domain_limit_holds_back_one_domain_and_lets_the_others_through(
        site, smtp_server):
    config = site.root / "newsletter.toml"
    # One message per 1000 s per domain: far longer than the engine waits for a domain's turn.
    config.write_text(config.read_text(encoding="utf-8").replace(
        "per_domain_rate = 0", "per_domain_rate = 0.001"), encoding="utf-8")
    site.cli("municipalities", "members", "Åsele")
    addresses = ["a1@asele.example.se", "a2@asele.example.se", "a3@asele.example.se",
                 "b1@dorotea.example.se"]
    for address in addresses:
        site.cli("contacts", "add", address, "--municipality", "Åsele", "--role", "politiker")
    mailing_id = make_mailing(site)
    report = send(site, mailing_id, smtp_server, backoff=sender.Backoff(linger=0))
    domains = Counter(a.rpartition("@")[2] for a in smtp_server.copies().elements())
    assert domains == Counter({"asele.example.se": 1, "dorotea.example.se": 1})
    assert report.remaining == 2 and not report.done
    with site.transaction() as s:
        later = s.scalars(select(OutboxRow.next_attempt_at).where(
            OutboxRow.mailing_id == mailing_id, OutboxRow.status == "pending")).all()
    assert len(later) == 2 and all(t > datetime.now(UTC) + timedelta(seconds=60) for t in later)


def test_progress_sees_the_report_as_it_was_at_one_moment(site, smtp_server):
    # Each progress call gets a copy taken under the workers' lock: a display reading the live
    # report field by field once said "102/110 done (103 sent)".
    seed(site, 12)
    mailing_id = make_mailing(site)
    smtp_server.delay = 0.1  # a little over a second in all: several progress calls
    seen: list[sender.SendReport] = []
    report = send(site, mailing_id, smtp_server, progress=seen.append)
    assert report.sent == 12
    during = [r.handled for r in seen[:-1]]
    assert len(during) >= 2 and during == sorted(during) and during[0] < 12
    assert len({id(r) for r in seen}) == len(seen)  # copies, not the live report
