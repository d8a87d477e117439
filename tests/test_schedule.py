"""Scheduled mailings and the worker's round, with the worker's clock moved instead of sleeping:
a mailing at its time, frozen content, recipients fixed when the time comes, cancel, retries
when due, webinar and remiss reminders, failing tasks that do not stop the others."""

from __future__ import annotations

import email
import email.policy
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from newsletter import db, heartbeat, schedule
from newsletter.errors import InputError
from newsletter.models import (
    ArchivedIssue,
    IntakeEntry,
    Mailing,
    OutboxRow,
    Person,
    PersonArea,
    Remiss,
)
from newsletter.transports import SMTPTransport
from newsletter.worker import Worker

from .console_support import Clock
from .helpers import new_webinar, seed

STOCKHOLM = ZoneInfo("Europe/Stockholm")
MONTH = "2026-12"


def _worker(site, smtp_server, clock: Clock, **kwargs) -> Worker:
    engine = db.make_engine(site.settings.db_url)
    lines: list[str] = []
    worker = Worker(site.settings, db.session_factory(engine),
                    db.session_factory(db.writer(engine)), clock=clock,
                    transport=SMTPTransport("smtp", "127.0.0.1", smtp_server.port, timeout=10),
                    worker_id="test:1", log=lines.append, **kwargs)
    worker.lines = lines
    return worker


def _at(days: int = 2, hour: int = 8) -> tuple[str, datetime]:
    """A time DAYS ahead at HOUR:00 in Stockholm: as --at takes it, and in UTC."""
    day = date.today() + timedelta(days=days)
    local = datetime(day.year, day.month, day.day, hour, tzinfo=STOCKHOLM)
    return local.strftime("%Y-%m-%d %H:%M"), local.astimezone(UTC)


def _bodies(smtp_server) -> dict[str, str]:
    """Recipient -> the plain text of the last message they got."""
    out = {}
    for received in smtp_server.messages:
        msg = email.message_from_bytes(received.data, policy=email.policy.default)
        out[received.rcpt_tos[0]] = msg.get_body(("plain",)).get_content()
    return out


def _status(site, mailing_id: int) -> str:
    with site.transaction() as s:
        return s.get(Mailing, mailing_id).status


# --- the time -------------------------------------------------------------------------------------

def test_times_are_stockholm_a_skipped_hour_is_refused_a_repeated_hour_is_the_first(site):
    settings = site.settings
    before = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.parse_at(settings, "2026-10-25 02:30", now=before) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first of the two
    assert schedule.parse_at(settings, "2026-12-08 08:00", now=before) == \
        datetime(2026, 12, 8, 7, 0, tzinfo=UTC)  # winter time
    with pytest.raises(InputError, match="skip|hoppar"):
        schedule.parse_at(settings, "2026-03-29 02:30", now=before)
    with pytest.raises(InputError, match="passerat|passed"):
        schedule.parse_at(settings, "2025-12-08 08:00", now=before)
    result = site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", "2020-01-01 08:00",
                      ok=False)
    assert result.exit_code == 1 and "--at" in result.stderr


# --- a scheduled issue ---------------------------------------------------------------------------

def test_a_scheduled_issue_goes_at_its_time_frozen_and_published_only_then(site, smtp_server):
    addresses = seed(site, 6)
    text, at = _at()
    out = site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text).stdout
    assert f"schemalagt till {text} (Europe/Stockholm)" in out
    assert "Nyhetsbrev december 2026" in site.cli("issue", "status", MONTH).stdout
    assert site.cli("issue", "status", MONTH).stdout.splitlines()[0].endswith("schemalagt")
    # Frozen: the files change (and even go), what goes is what was scheduled.
    item = site.root / "issues" / MONTH / "items" / "10-bredbandsstodet.md"
    original = item.read_text(encoding="utf-8")
    item.write_text(original.replace("bredband", "ÄNDRAT EFTERÅT"), encoding="utf-8")
    shutil.move(site.root / "issues" / MONTH, site.root / "borta")
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ArchivedIssue)) == 0
    clock = Clock(at - timedelta(minutes=1))
    worker = _worker(site, smtp_server, clock)
    report = worker.round()
    assert report.started == [] and smtp_server.copies() == Counter()
    assert _status(site, 1) == "scheduled"
    clock.advance(minutes=1)
    report = worker.round()
    assert report.started == [1] and report.errors == []
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert all("ÄNDRAT EFTERÅT" not in body for body in _bodies(smtp_server).values())
    assert _status(site, 1) == "done"
    with site.transaction() as s:
        archived = s.scalar(select(ArchivedIssue))
        assert archived.month == MONTH and "ÄNDRAT" not in archived.html
        assert archived.published_at is not None
    assert "Utskick 1 har börjat: 6 mottagare." in worker.lines
    worker.round()  # nothing more
    assert sum(smtp_server.copies().values()) == 6


def test_recipients_are_the_segment_on_the_day_it_goes(site, smtp_server):
    addresses = seed(site, 9)  # every third is a kommunchef: p000, p003, p006
    text, at = _at(days=3)
    site.cli("send", "issue", MONTH, "--to", "kommunchefer", "--at", text)
    day = at.astimezone(STOCKHOLM).date()
    # p000's position ends the day before it goes; p003 unsubscribes; a new kommunchef arrives.
    site.cli("contacts", "end-role", addresses[0], "--role", "kommunchef", "--on",
             (day - timedelta(days=1)).isoformat())
    site.cli("contacts", "unsubscribe", addresses[3])
    site.cli("contacts", "add", "ny@example.se", "--name", "Ny", "--municipality", "Åsele",
             "--role", "kommunchef")
    assert addresses[0] in site.cli("segments", "show", "kommunchefer").stdout  # still today
    worker = _worker(site, smtp_server, Clock(at))
    worker.round()
    assert set(smtp_server.copies()) == {addresses[6], "ny@example.se"}


def test_each_person_gets_their_variant_from_what_was_frozen(site, smtp_server):
    addresses = seed(site, 6)
    with site.transaction() as s:  # p001 reads only bostad when it is scheduled
        s.scalar(select(Person).where(Person.email == addresses[1])).areas = [
            PersonArea(area="bostad")]
    text, at = _at()
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text)
    with site.transaction() as s:  # afterwards p002 chooses the same, p004 something new
        s.scalar(select(Person).where(Person.email == addresses[2])).areas = [
            PersonArea(area="bostad")]
        s.scalar(select(Person).where(Person.email == addresses[4])).areas = [
            PersonArea(area="infrastruktur")]
    shutil.rmtree(site.root / "issues" / MONTH)
    _worker(site, smtp_server, Clock(at)).round()
    bodies = _bodies(smtp_server)
    assert set(bodies) == set(addresses)
    broadband = "Bredbandsstödet 2027"  # an item of the area digitalisering
    assert broadband not in bodies[addresses[1]] and broadband not in bodies[addresses[2]]
    assert broadband in bodies[addresses[4]]  # nobody had theirs: every area, not nothing
    with site.transaction() as s:
        keys = dict(s.execute(select(Person.email, OutboxRow.variant_key).join(
            OutboxRow, OutboxRow.person_id == Person.id)).all())
    assert keys[addresses[2]] == keys[addresses[1]] != keys[addresses[4]]


def test_cancel_before_it_goes_and_schedule_again(site, smtp_server):
    seed(site, 3)
    text, at = _at()
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text)
    again = site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text, ok=False)
    assert again.exit_code == 1 and "redan utskick 1" in again.stderr
    now = site.cli("send", "issue", MONTH, "--to", "medlemmar", "--yes", ok=False)
    assert now.exit_code == 1 and "schemalagt till" in now.stderr
    assert "är inställt" in site.cli("send", "cancel", "1").stdout
    worker = _worker(site, smtp_server, Clock(at))
    worker.round()
    assert smtp_server.copies() == Counter() and _status(site, 1) == "cancelled"
    assert site.cli("send", "cancel", "1", ok=False).exit_code == 1
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text)
    worker.round()
    assert sum(smtp_server.copies().values()) == 3 and _status(site, 2) == "done"
    assert site.cli("send", "cancel", "2", ok=False).exit_code == 1  # sent: too late


# --- retries -----------------------------------------------------------------------------------

def test_deferred_messages_are_retried_when_due_without_anyone_running_a_command(
        site, smtp_server):
    addresses = seed(site, 4)
    text, at = _at()
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", text)
    clock = Clock(at)
    worker = _worker(site, smtp_server, clock)
    smtp_server.tempfail(1)
    worker.round()
    assert sum(smtp_server.copies().values()) == 3
    with site.transaction() as s:
        row = s.scalar(select(OutboxRow).where(OutboxRow.status == "deferred"))
        due = row.next_attempt_at
    assert at < due <= at + timedelta(seconds=90)  # the backoff, by the worker's clock
    clock.advance(seconds=20)
    worker.round()
    assert sum(smtp_server.copies().values()) == 3  # not yet due
    clock.at = due + timedelta(seconds=1)
    worker.round()
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert _status(site, 1) == "done"


# --- webinar reminders ----------------------------------------------------------------------------

def _reminders(smtp_server) -> Counter:
    found = Counter()
    for received in smtp_server.messages:
        msg = email.message_from_bytes(received.data, policy=email.policy.default)
        if str(msg["Subject"]).startswith("Påminnelse"):
            found[received.rcpt_tos[0]] += 1
    return found


def test_webinar_reminders_go_by_themselves_to_those_registered_then(site, smtp_server):
    addresses = seed(site, 3)
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    start_text, start = _at(days=10, hour=14)
    new_webinar(site, start_text)
    new_webinar(site, start_text, slug="installt")
    for address in addresses[:2]:
        site.cli("webinar", "register", "bredband", address, env=env)
        site.cli("webinar", "register", "installt", address, env=env)
    site.cli("webinar", "cancel", "installt", env=env)
    clock = Clock(start - timedelta(hours=25))
    worker = _worker(site, smtp_server, clock)
    worker.round()
    assert _reminders(smtp_server) == Counter()
    clock.at = start - timedelta(hours=23)
    worker.round()
    assert _reminders(smtp_server) == {addresses[0]: 1, addresses[1]: 1}
    day_before = [m for m in smtp_server.parsed() if str(m["Subject"]).startswith("Påminnelse")]
    assert "I morgon börjar webbinariet" in day_before[0].get_body(("plain",)).get_content()
    site.cli("webinar", "register", "bredband", addresses[2], env=env)  # after the first
    clock.advance(hours=1)
    worker.round()
    assert sum(_reminders(smtp_server).values()) == 2  # each reminder once
    clock.at = start - timedelta(minutes=50)
    worker.round()
    assert _reminders(smtp_server) == {addresses[0]: 2, addresses[1]: 2, addresses[2]: 1}
    clock.at = start + timedelta(minutes=5)
    worker.round()
    assert sum(_reminders(smtp_server).values()) == 5  # none after the start
    # By hand, more than two days ahead needs --force.
    refused = site.cli("webinar", "remind", "bredband", ok=False)
    assert refused.exit_code == 1 and "--force" in refused.stderr


def test_a_worker_that_missed_the_day_before_sends_only_the_hour_before(site, smtp_server):
    addresses = seed(site, 2)
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    start_text, start = _at(days=5, hour=10)
    new_webinar(site, start_text)
    site.cli("webinar", "register", "bredband", addresses[0], env=env)
    worker = _worker(site, smtp_server, Clock(start - timedelta(minutes=30)))
    worker.round()
    worker.round()
    assert _reminders(smtp_server) == {addresses[0]: 1}
    with site.transaction() as s:
        sources = set(s.scalars(select(Mailing.source).where(Mailing.kind == "webinar")))
    assert "bredband:remind-hour" in sources and "bredband:remind-day" not in sources


# --- the rest of the round -----------------------------------------------------------------------

def test_remiss_reminders_go_to_the_staff_address_once(site, smtp_server):
    path = site.root / "newsletter.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "remind_to = []\n", 'remind_to = ["kansliet@example.se"]\n'), encoding="utf-8")
    answer_by = date.today() + timedelta(days=20)
    with site.transaction() as s:
        entry = IntakeEntry(feed="remisser", kind="remiss", title="Remiss om strandskyddet",
                            url="https://www.regeringen.se/remisser/strandskydd",
                            summary="Sista dag att svara.")
        s.add(entry)
        s.flush()
        s.add(Remiss(entry_id=entry.id, answer_by=answer_by))
    clock = Clock(datetime.now(UTC))
    worker = _worker(site, smtp_server, clock)
    worker.round()
    assert smtp_server.copies() == Counter()  # 20 days ahead: not yet
    clock.advance(days=15)
    worker.round()
    worker.round()
    assert smtp_server.copies() == {"kansliet@example.se": 1}
    (message,) = smtp_server.parsed()
    assert "strandskyddet" in str(message["Subject"])
    assert not str(message["Subject"]).startswith("[TEST]")


def test_one_failing_task_does_not_stop_the_others_and_each_is_one_line(site, smtp_server):
    addresses = seed(site, 3)
    path = site.root / "newsletter.toml"
    text = path.read_text(encoding="utf-8").replace('mailbox = ""', 'mailbox = "finns-inte"')
    text += ('\n[[intake.feeds]]\nname = "trasig"\nurl = "http://127.0.0.1:9/feed"\n'
             'kind = "nyhet"\n')
    path.write_text(text.replace("timeout = 20\n", "timeout = 1\n"), encoding="utf-8")
    when, at = _at()
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--at", when)
    worker = _worker(site, smtp_server, Clock(at))
    report = worker.round()
    assert smtp_server.copies() == {a: 1 for a in addresses}
    assert [name for name, _ in report.errors] == ["bounces", "intake trasig"]
    failed = [line for line in worker.lines if "misslyckades" in line]
    assert len(failed) == 2 and all("\n" not in line for line in failed)
    assert "finns-inte" in failed[0]
    with site.transaction() as s:
        assert heartbeat.last_seen(s) == at.replace(microsecond=0)


def test_the_periodic_tasks_run_once_per_period_across_workers(site, smtp_server):
    clock = Clock(datetime.now(UTC))
    first, second = (_worker(site, smtp_server, clock) for _ in range(2))
    assert first.round().retention is not None
    assert second.round().retention is None  # the other worker took it today
    clock.advance(days=1, seconds=1)
    assert second.round().retention is not None


@pytest.mark.parametrize("old, new, named", [
    ('reminders = ["1d", "1h"]', 'reminders = ["1d", "tomorrow"]', "webinars.reminders"),
    ('reminders = ["1d", "1h"]', 'reminders = ["1h", "60m"]', "webinars.reminders"),
    ("interval = 5\n", "interval = 0\n", "worker.interval"),
    ('issue_segment = "medlemmar"', 'issue_segmnet = "medlemmar"', "workflow.issue_segmnet"),
])
def test_the_workflow_settings_are_checked(site, old, new, named):
    path = site.root / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = site.cli("worker", "--once", ok=False)
    assert result.exit_code == 78 and named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_worker_once_from_the_command_line(site):
    result = site.cli("worker", "--once")
    assert result.exit_code == 0
    with site.transaction() as s:
        assert len(heartbeat.beats(s)) == 1
