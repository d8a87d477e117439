"""`newsletter send ...` and `newsletter mail`: mailings through the send engine."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from .. import (
    coverage,
    dates,
    heartbeat,
    labels,
    preflight,
    review,
    schedule,
    segments,
    sender,
    testcopies,
    webinars,
)
from ..contacts import normalise_email
from ..content import check_month
from ..errors import InputError, Refused, SendError
from ..i18n import _, ngettext
from ..kinds import issue as issue_kind
from ..kinds.targeted import TargetedSource
from ..models import MailingStatus, Municipality, OutboxStatus
from ..outbox import creating, lifecycle, sending
from ..sources import Source
from . import tables
from .app import ROW_ID, App, pass_app
from .prompts import confirm


@click.group("send")
def group() -> None:
    """Send an issue to a segment; follow, pause and resume mailings."""


def _common(f):
    for option in reversed([
        click.option("--to", "segment", required=True,
                     help='A named segment or an expression, e.g. "role:kommunchef and member".'),
        click.option("--test-to", "test_to", metavar="EMAIL", multiple=True,
                     help=("Send one test copy to EMAIL only (subject marked [TEST]; repeat "
                            "for several addresses). Publishes nothing.")),
        click.option("--at", "at", metavar='"YYYY-MM-DD HH:MM"',
                     help=("Schedule it for this time (Europe/Stockholm) instead of sending "
                            "now: the content is frozen now, the worker sends it then.")),
        click.option("--by", "by", metavar="EMAIL",
                     help="The staff member who sends it (a reviewer or an administrator)."),
        click.option("--dry-run", is_flag=True,
                     help="Print the recipients, a sample and the message size; send nothing."),
        click.option("--rate", type=click.FloatRange(min=0),
                     help="Messages per second (0: no limit)."),
        click.option("--yes", is_flag=True, help="Do not ask before sending to many."),
    ]):
        f = option(f)
    return f


@group.command("issue")
@click.argument("month")
@_common
@pass_app
def issue(app: App, month: str, segment: str, test_to: tuple[str, ...], at: str | None,
          by: str | None, dry_run: bool, rate: float | None, yes: bool) -> None:
    """Send issue YYYY-MM to a segment, now or --at a time; the same command again resumes it.

    The mailing is created once (content frozen, recipients fixed) and nobody gets it twice.
    It is refused while the issue does not pass `issue check`, still holds scaffold text, or
    is not approved where approval is required (newsletter issue submit / approve).

    Example: newsletter send issue 2026-12 --to medlemmar --at "2026-12-08 08:00"
    """
    month = check_month(month)
    with app.sessions() as s:
        upcoming = webinars.upcoming(s, app.settings)
    source = issue_kind.IssueSource(app.settings, month, upcoming)
    _run(app, source, segment, test_to=test_to, dry_run=dry_run, rate=rate, yes=yes, by=by,
         at=at)


@click.command("mail")
@_common
@click.option("--subject", required=True, help="The subject line.")
@click.option("--body", "body", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The message in Markdown (UTF-8).")
@click.option("--submit", is_flag=True,
              help=("Submit it for review instead of sending (a reviewer then approves it "
                     "with `newsletter review approve`)."))
@click.option("--preheader", default="", metavar="TEXT",
              help=("The line an inbox shows after the subject (default: the message's first "
                     "words)."))
@pass_app
def mail(app: App, segment: str, test_to: tuple[str, ...], at: str | None, by: str | None,
         dry_run: bool, rate: float | None, yes: bool, subject: str, body: Path,
         submit: bool, preheader: str) -> None:
    """A targeted mailing to a segment, in the newsletter's frame; the same command resumes it.

    Where approval is required, submit it first (--submit), have a reviewer approve it
    (newsletter review approve targeted:sha256:... --by EMAIL), then run it again to send.

    Example: newsletter mail --to kommunchefer --subject "Enkät om bredband" --body enkat.md
    --preheader "Svara senast 15 januari"
    """
    try:
        text = body.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(_("not UTF-8 text"), source=str(body)) from None
    if not text.strip():
        raise InputError(_("the message is empty"), source=str(body))
    preheader = " ".join(preheader.split())
    source = TargetedSource(app.settings, subject, text, preheader)
    if submit:
        submit_for_review(app, source, segment, by)
        return
    send_targeted(app, subject, text, segment, test_to=test_to, dry_run=dry_run, rate=rate,
                  yes=yes, by=by, at=at, preheader=preheader)


def submit_for_review(app: App, source: Source, segment: str, by: str | None) -> None:
    """Submit SOURCE to SEGMENT for review and say how it is approved."""
    with app.transaction() as s:
        found = review.submit(s, app.settings, source, segment, by=by)
        ref = review.Ref(found.kind, found.key)
    click.echo(_("Submitted for review: {ref} ({subject}) to {segment}.").format(
        ref=ref, subject=found.subject, segment=segment))
    click.echo(_("A reviewer approves it with: {command}").format(
        command=review.approve_hint(ref)))


def send_targeted(app: App, subject: str, body_markdown: str, segment: str, *,
                  test_to: tuple[str, ...] = (), dry_run: bool = False,
                  rate: float | None = None, yes: bool = False, by: str | None = None,
                  at: str | None = None, preheader: str = "") -> None:
    """The targeted-mailing path of `newsletter mail`, for other commands that make the text
    (e.g. `remisser call`): create the mailing once, then send or resume it."""
    _run(app, TargetedSource(app.settings, subject, body_markdown, preheader), segment,
         test_to=test_to, dry_run=dry_run, rate=rate, yes=yes, by=by, at=at)


def _run(app: App, source: Source, segment: str, *, test_to: tuple[str, ...], dry_run: bool,
         rate: float | None, yes: bool, by: str | None = None, at: str | None = None) -> None:
    """Create (or find) the mailing of SOURCE to SEGMENT and send it (schedule.send_now: the
    refusals of preflight.py, the archive for a new issue mailing), or schedule it, or only
    plan it, or send test copies (which never publish anything)."""
    settings = app.settings
    if dry_run:
        with app.transaction(dry_run=True) as s:
            p = creating.plan(s, settings, source, segment)
            _print_plan(p, coverage.unreached(s, settings, segment))
            if p.existing is None:
                try:
                    preflight.check_send(s, settings, source, segment, by=by)
                except Refused as exc:
                    click.echo(_("Sent for real, it would be refused: {reason}").format(
                        reason=exc))
        return
    if test_to:
        addresses = [normalise_email(a, field="--test-to") for a in test_to]
        with app.transaction() as s:
            preflight.check_test_copies(s, settings, addresses, by=by)
            tests = [(m.id, m.meta["test_to"])
                     for m in testcopies.create(s, settings, source, addresses)]
        for mailing_id, address in tests:
            send_and_report(app, mailing_id, rate, f"testutskick till {address}")
        return
    if at:
        _schedule(app, source, segment, at, by)
        return

    def ask() -> None:
        p = creating.plan(s, settings, source, segment)
        if p.recipients > settings.transport.confirm_above:
            confirm(_("Send “{subject}” to {n} recipients ({segment})?").format(
                subject=p.subject, n=p.recipients, segment=segment), abort=True)

    with app.transaction() as s:
        created = schedule.send_now(s, settings, source, segment, by=by,
                                    before_create=None if yes else ask)
        mailing = created.mailing
        mailing_id, status, subject = mailing.id, mailing.status, mailing.subject
    if created.new:
        click.echo(_("Mailing {id} created: “{subject}” to {n} recipients ({segment}).").format(
            id=mailing_id, subject=subject, n=created.recipients, segment=segment))
        if created.already_had_it:
            click.echo(ngettext(
                "{n} in the segment already got it in another mailing and is skipped.",
                "{n} in the segment already got it in another mailing and are skipped.",
                created.already_had_it).format(n=created.already_had_it))
    elif status == MailingStatus.DONE:
        click.echo(_("Mailing {id} is already done; nobody gets it twice. See `newsletter send "
                     "status {id}`.").format(id=mailing_id))
        return
    else:
        click.echo(_("Resuming mailing {id} ({n} recipients).").format(
            id=mailing_id, n=created.recipients))
    send_and_report(app, mailing_id, rate, f"utskick {mailing_id}")


def _schedule(app: App, source: Source, segment: str, at: str, by: str | None) -> None:
    settings = app.settings
    when = schedule.parse_at(settings, at)
    with app.transaction() as s:
        mailing = schedule.schedule(s, settings, source, segment, when, by=by)
        n = segments.count(s, settings, segment)
        seen = heartbeat.last_seen(s)
    click.echo(_("Mailing {id} scheduled for {at} ({zone}): “{subject}” to {segment}, {n} "
                 "recipients today. The content is frozen; `newsletter send cancel {id}` "
                 "cancels it.").format(
        id=mailing.id, at=schedule.scheduled_at_local(settings, mailing),
        zone=settings.organisation.timezone, subject=mailing.subject, segment=segment, n=n))
    if heartbeat.is_stale(seen, datetime.now(UTC)):
        click.echo(_("No worker is running (none seen for two minutes): start `newsletter "
                     "worker` (or its systemd unit), which sends it at that time."), err=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the event: the engine finishes the messages in flight, then stops."""
    stop = threading.Event()

    def handler(signum, _frame):
        if not stop.is_set():
            click.echo("\n" + _("Stopping after the messages being sent right now ..."),
                       err=True)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Progress:
    """A progress bar on a terminal, a short log line now and then otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.shown = 0
        self.last_log = 0.0

    def __call__(self, report: sender.SendReport) -> None:
        done = report.handled
        if sys.stdout.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=max(report.total, 1), label=self.label)
                self.bar.__enter__()
                self.bar.update(done)
            self.bar.update(done - self.shown)
        elif done != self.shown and (time.monotonic() - self.last_log > 2 or
                                     done >= report.total):
            self.last_log = time.monotonic()
            click.echo(_("{label}: {done}/{total} done ({counts})").format(
                label=self.label, done=done, total=report.total,
                counts=labels.send_counts(report)))
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def send_and_report(app: App, mailing_id: int, rate: float | None, label: str) -> None:
    """Send what is left of MAILING_ID with a progress display, then say how it went."""
    progress = _Progress(label)
    with _stop_on_signals() as stop:
        try:
            report = sender.send_mailing(app.settings, app.sessions, mailing_id, rate=rate,
                                         progress=progress, stop=stop)
        finally:
            progress.close()
    if report.reclaimed:
        click.echo(ngettext("{n} message from an interrupted send was sent again (it may "
                            "have arrived twice).",
                            "{n} messages from an interrupted send were sent again (they may "
                            "have arrived twice).", report.reclaimed).format(n=report.reclaimed))
    click.echo(f"{labels.send_counts(report)} ({report.transport}).")
    if report.paused_reason:
        raise SendError(_("mailing {id} paused: {reason}. Correct the fault and run "
                          "`newsletter send resume {id}`").format(
                          id=mailing_id, reason=report.paused_reason))
    if report.interrupted:
        click.echo(_("Interrupted. Run the same command again (or `newsletter send resume {id}`) "
                     "to continue.").format(id=mailing_id), err=True)
        sys.exit(130)
    if report.done:
        click.echo(_("Mailing {id} is done.").format(id=mailing_id))
    elif report.next_attempt_at:
        when = report.next_attempt_at.astimezone().strftime("%Y-%m-%d %H:%M")
        click.echo(_("{n} deferred (next attempt {when}): run `newsletter send resume {id}` "
                     "then.").format(n=report.remaining, when=when, id=mailing_id))


def _print_plan(p: creating.Plan, unreached: list[Municipality]) -> None:
    click.echo(_("Subject: {subject}").format(subject=p.subject))
    click.echo(_("Recipients: {n}").format(n=p.recipients))
    for name, email in p.sample:
        click.echo(f"  {name} <{email}>" if name else f"  {email}")
    if p.recipients > len(p.sample):
        click.echo(_("  ... and {n} more").format(n=p.recipients - len(p.sample)))
    click.echo(_("Size of the message: {kib:.1f} KiB").format(kib=p.message_bytes / 1024))
    if p.already_had_it:
        click.echo(_("Of these, {had} already got it in another mailing: they are skipped, so "
                     "{now} get it now.").format(had=p.already_had_it,
                                                 now=p.recipients - p.already_had_it))
    if unreached:
        click.echo(ngettext("Not reached: {count} member municipality has no recipient in the "
                            "roles the segment asks for: {names}",
                            "Not reached: {count} member municipalities have no recipient in "
                            "the roles the segment asks for: {names}", len(unreached)).format(
            count=len(unreached), names=", ".join(m.name for m in unreached)))
    if p.existing is not None:
        click.echo(_("The mailing exists already (mailing {id}, {state}): the same command "
                     "without --dry-run resumes it.").format(
                     id=p.existing.id, state=labels.mailing_status(p.existing.status)))
    click.echo(_("Dry run: nothing was created and nothing was sent."))


@group.command("status")
@click.argument("mailing_id", type=ROW_ID, required=False)
@pass_app
def status(app: App, mailing_id: int | None) -> None:
    """List the latest mailings (when made, state, sent of all, kind, to whom, subject), or
    show one: its recipients per state, failures with names and reasons, possibly sent.

    Example: newsletter send status 3
    """
    tz = dates.zone(app.settings)
    with app.transaction() as s:
        if mailing_id is None:
            rows = [(st.mailing.id, dates.stamp(st.mailing.created_at, tz),
                     labels.mailing_status(st.mailing.status),
                     f"{st.counts[OutboxStatus.SENT]}/{st.total}",
                     labels.mailing_kind(st.mailing.kind), lifecycle.audience(s, st.mailing),
                     st.mailing.subject) for st in lifecycle.list_mailings(s)]
            if not rows:
                click.echo(_("No mailings yet."))
                return
            tables.echo((_("ID"), _("Created"), _("Status"), _("Sent"), _("Kind"), _("To"),
                         _("Subject")), rows, (True, False, False, True), limit=40)
            return
        st = lifecycle.mailing_status(s, mailing_id)
        to = lifecycle.audience(s, st.mailing)
    m = st.mailing
    click.echo(_("Mailing {id}: {kind} to {to}").format(
        id=m.id, kind=labels.mailing_kind(m.kind), to=to))
    click.echo(_("Subject: {subject}").format(subject=m.subject))
    click.echo(_("Created: {when}").format(when=dates.stamp(m.created_at, tz)))
    click.echo(_("Status: {status}").format(status=labels.mailing_status(m.status))
               + (f" ({m.paused_reason})" if m.paused_reason else ""))
    if m.scheduled_at is not None:
        click.echo(_("Scheduled for: {at} ({zone})").format(
            at=schedule.scheduled_at_local(app.settings, m),
            zone=app.settings.organisation.timezone))
    click.echo(_("Recipients: {n}").format(n=st.total))
    counts = [(labels.outbox_status(OutboxStatus.SENT), st.counts[OutboxStatus.SENT]),
              (labels.bounced(), st.bounced),
              (labels.outbox_status(OutboxStatus.FAILED), st.failed)]
    counts += [(labels.outbox_status(state), st.counts[state])
               for state in (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.DEFERRED,
                             OutboxStatus.SUPPRESSED)]
    for label, n in counts:
        if n:
            click.echo(f"  {label}: {n}")
    if st.possibly_sent:
        click.echo(_("Possibly sent: {n} (a sender died after handing them over; they are sent "
                     "again at the next run and may then arrive twice)").format(
                     n=st.possibly_sent))
    if st.reclaimed:
        click.echo(_("Sent again after an interrupted send: {n} (may have arrived twice)")
                   .format(n=st.reclaimed))
    if st.problems:
        click.echo(_("Failures:"))
        for p in st.problems:
            who = f"{p.name} <{p.address}>" if p.name else p.address
            state = (labels.bounced() if p.error.startswith(sending.HARD_BOUNCE)
                     else labels.outbox_status(p.state))
            click.echo(f"  {who}: {state}: {p.error}")


@group.command("pause")
@click.argument("mailing_id", type=ROW_ID)
@pass_app
def pause(app: App, mailing_id: int) -> None:
    """Pause a mailing: a running sender stops after the messages in flight.

    Example: newsletter send pause 3
    """
    with app.transaction() as s:
        lifecycle.pause(s, mailing_id, _("paused with newsletter send pause"))
    click.echo(_("Mailing {id} paused. Continue with `newsletter send resume {id}`.").format(
        id=mailing_id))


@group.command("cancel")
@click.argument("mailing_id", type=ROW_ID)
@click.option("--by", "by", metavar="EMAIL",
              help="The staff member who cancels it (a reviewer or an administrator).")
@pass_app
def cancel(app: App, mailing_id: int, by: str | None) -> None:
    """Cancel a scheduled mailing before the worker starts it (its approval stays: it can be
    scheduled again).

    Example: newsletter send cancel 7
    """
    with app.transaction() as s:
        mailing = schedule.cancel(s, mailing_id, by=by)
        subject = mailing.subject
    click.echo(_("Mailing {id} (“{subject}”) is cancelled; nothing was sent.").format(
        id=mailing_id, subject=subject))


@group.command("resume")
@click.argument("mailing_id", type=ROW_ID)
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second (0: no limit).")
@pass_app
def resume(app: App, mailing_id: int, rate: float | None) -> None:
    """Un-pause a mailing and send the rest of it, deferred messages at once.

    Example: newsletter send resume 3
    """
    with app.transaction() as s:
        lifecycle.unpause(s, mailing_id)
    send_and_report(app, mailing_id, rate, f"utskick {mailing_id}")


def register(main: click.Group) -> None:
    main.add_command(group)
    main.add_command(mail)
