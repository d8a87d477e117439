"""`newsletter send ...` and `newsletter mail`: mailings through the send engine."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.orm import Session

from .. import coverage, dates, labels, outbox, sender, webinars
from ..contacts import normalise_email
from ..content import check_month
from ..errors import InputError, SendError
from ..i18n import _, ngettext
from ..kinds import issue as issue_kind
from ..kinds.targeted import TargetedSource
from ..models import MailingStatus, Municipality, OutboxStatus
from ..sources import Source
from . import tables
from .app import App, pass_app
from .prompts import confirm


@click.group("send")
def group() -> None:
    """Send an issue to a segment; follow, pause and resume mailings."""


def _common(f):
    for option in reversed([
        click.option("--to", "segment", required=True,
                     help='A named segment or an expression, e.g. "role:kommunchef and member".'),
        click.option("--test-to", "test_to", metavar="EMAIL", multiple=True,
                     help=_("Send one test copy to EMAIL only (subject marked [TEST]; repeat "
                            "for several addresses). Publishes nothing.")),
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
def issue(app: App, month: str, segment: str, test_to: tuple[str, ...], dry_run: bool,
          rate: float | None, yes: bool) -> None:
    """Send issue YYYY-MM to a segment; the same command again resumes it.

    The mailing is created once (content frozen, recipients fixed) and nobody gets it twice.

    Example: newsletter send issue 2026-12 --to medlemmar
    """
    month = check_month(month)
    with app.sessions() as s:
        upcoming = webinars.upcoming(s, app.settings)
    source = issue_kind.IssueSource(app.settings, month, upcoming)
    _run(app, source, segment, test_to=test_to, dry_run=dry_run, rate=rate, yes=yes,
         publish=lambda s: issue_kind.publish(s, app.settings, source))


@click.command("mail")
@_common
@click.option("--subject", required=True, help="The subject line.")
@click.option("--body", "body", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The message in Markdown (UTF-8).")
@click.option("--preheader", default="", metavar="TEXT",
              help=_("The line an inbox shows after the subject (default: the message's first "
                     "words)."))
@pass_app
def mail(app: App, segment: str, test_to: tuple[str, ...], dry_run: bool, rate: float | None,
         yes: bool, subject: str, body: Path, preheader: str) -> None:
    """A targeted mailing to a segment, in the newsletter's frame; the same command resumes it.

    Example: newsletter mail --to kommunchefer --subject "Enkät om bredband" --body enkat.md
    --preheader "Svara senast 15 januari"
    """
    try:
        text = body.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(body)) from None
    if not text.strip():
        raise InputError("the message is empty", source=str(body))
    send_targeted(app, subject, text, segment, test_to=test_to, dry_run=dry_run, rate=rate,
                  yes=yes, preheader=" ".join(preheader.split()))


def send_targeted(app: App, subject: str, body_markdown: str, segment: str, *,
                  test_to: tuple[str, ...] = (), dry_run: bool = False,
                  rate: float | None = None, yes: bool = False, preheader: str = "") -> None:
    """The targeted-mailing path of `newsletter mail`, for other commands that make the text
    (e.g. `remisser call`): create the mailing once, then send or resume it."""
    _run(app, TargetedSource(app.settings, subject, body_markdown, preheader), segment,
         test_to=test_to, dry_run=dry_run, rate=rate, yes=yes)


def _run(app: App, source: Source, segment: str, *, test_to: tuple[str, ...], dry_run: bool,
         rate: float | None, yes: bool, publish: Callable[[Session], object] | None = None
         ) -> None:
    """Create (or find) the mailing of SOURCE to SEGMENT, PUBLISH what a new one makes public,
    and send it; or only plan it, or send test copies (which never publish anything)."""
    settings = app.settings
    if dry_run:
        with app.transaction(dry_run=True) as s:
            _print_plan(outbox.plan(s, settings, source, segment),
                        coverage.unreached(s, settings, segment))
        return
    if test_to:
        with app.transaction() as s:
            tests = [(m.id, m.meta["test_to"])
                     for m in outbox.create_test_mailings(
                         s, settings, source, [normalise_email(a, field="--test-to")
                                               for a in test_to])]
        for mailing_id, address in tests:
            send_and_report(app, mailing_id, rate, f"testutskick till {address}")
        return
    with app.transaction() as s:
        existing = outbox.find_mailing(s, source.kind, source.key, segment)
        if existing is None and not yes:
            p = outbox.plan(s, settings, source, segment)
            if p.recipients > settings.transport.confirm_above:
                confirm(f"Skicka ”{p.subject}” till {p.recipients} mottagare "
                        f"({segment})?", abort=True)
        created = outbox.create_mailing(s, settings, source, segment)
        if created.new and publish is not None:
            publish(s)
        mailing = created.mailing
        mailing_id, status = mailing.id, mailing.status
    if created.new:
        click.echo(f"Utskick {mailing_id} skapat: ”{mailing.subject}” till {created.recipients} "
                   f"mottagare ({segment}).")
        if created.already_had_it:
            click.echo(f"{created.already_had_it} i segmentet har redan fått det i ett annat "
                       "utskick och hoppas över.")
    elif status == MailingStatus.DONE:
        click.echo(f"Utskick {mailing_id} är redan klart; ingen får det två gånger. "
                   f"Se `newsletter send status {mailing_id}`.")
        return
    else:
        click.echo(f"Återupptar utskick {mailing_id} ({created.recipients} mottagare).")
    send_and_report(app, mailing_id, rate, f"utskick {mailing_id}")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the event: the engine finishes the messages in flight, then stops."""
    stop = threading.Event()

    def handler(signum, _frame):
        if not stop.is_set():
            click.echo("\nAvbryter efter meddelandena som skickas just nu ...", err=True)
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
        click.echo(f"{report.reclaimed} meddelanden från en avbruten sändning skickades igen "
                   "(de kan ha nått fram två gånger).")
    click.echo(f"{labels.send_counts(report)} ({report.transport}).")
    if report.paused_reason:
        raise SendError(f"utskick {mailing_id} pausat: {report.paused_reason}. Åtgärda felet "
                        f"och kör `newsletter send resume {mailing_id}`")
    if report.interrupted:
        click.echo(f"Avbrutet. Kör samma kommando igen (eller `newsletter send resume "
                   f"{mailing_id}`) för att fortsätta.", err=True)
        sys.exit(130)
    if report.done:
        click.echo(f"Utskick {mailing_id} är klart.")
    elif report.next_attempt_at:
        when = report.next_attempt_at.astimezone().strftime("%Y-%m-%d %H:%M")
        click.echo(f"{report.remaining} uppskjutna (nästa försök {when}): kör "
                   f"`newsletter send resume {mailing_id}` då.")


def _print_plan(p: outbox.Plan, unreached: list[Municipality]) -> None:
    click.echo(f"Ämne: {p.subject}")
    click.echo(f"Mottagare: {p.recipients}")
    for name, email in p.sample:
        click.echo(f"  {name} <{email}>" if name else f"  {email}")
    if p.recipients > len(p.sample):
        click.echo(f"  ... och {p.recipients - len(p.sample)} till")
    click.echo(f"Meddelandets storlek: {p.message_bytes / 1024:.1f} KiB")
    if p.already_had_it:
        click.echo(f"Varav {p.already_had_it} redan har fått det i ett annat utskick: de hoppas "
                   f"över, så {p.recipients - p.already_had_it} får det nu.")
    if unreached:
        click.echo(ngettext("Not reached: {count} member municipality has no recipient in the "
                            "roles the segment asks for: {names}",
                            "Not reached: {count} member municipalities have no recipient in "
                            "the roles the segment asks for: {names}", len(unreached)).format(
            count=len(unreached), names=", ".join(m.name for m in unreached)))
    if p.existing is not None:
        click.echo(f"Utskicket finns redan (utskick {p.existing.id}, {p.existing.status}): "
                   "samma kommando utan --dry-run återupptar det.")
    click.echo("Torrkörning: inget skapades och inget skickades.")


@group.command("status")
@click.argument("mailing_id", type=int, required=False)
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
                     labels.mailing_kind(st.mailing.kind), outbox.audience(s, st.mailing),
                     st.mailing.subject) for st in outbox.list_mailings(s)]
            if not rows:
                click.echo(_("No mailings yet."))
                return
            tables.echo((_("ID"), _("Created"), _("Status"), _("Sent"), _("Kind"), _("To"),
                         _("Subject")), rows, (True, False, False, True), limit=40)
            return
        st = outbox.mailing_status(s, mailing_id)
        to = outbox.audience(s, st.mailing)
    m = st.mailing
    click.echo(_("Mailing {id}: {kind} to {to}").format(
        id=m.id, kind=labels.mailing_kind(m.kind), to=to))
    click.echo(_("Subject: {subject}").format(subject=m.subject))
    click.echo(_("Created: {when}").format(when=dates.stamp(m.created_at, tz)))
    click.echo(_("Status: {status}").format(status=labels.mailing_status(m.status))
               + (f" ({m.paused_reason})" if m.paused_reason else ""))
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
        click.echo(f"Möjligen skickade: {st.possibly_sent} (en sändare dog efter att ha lämnat "
                   "dem; de skickas igen vid nästa körning och kan då komma fram två gånger)")
    if st.reclaimed:
        click.echo(f"Skickade igen efter en avbruten sändning: {st.reclaimed} (kan ha kommit "
                   "fram två gånger)")
    if st.problems:
        click.echo(_("Failures:"))
        for p in st.problems:
            who = f"{p.name} <{p.address}>" if p.name else p.address
            state = (labels.bounced() if p.error.startswith(outbox.HARD_BOUNCE)
                     else labels.outbox_status(p.state))
            click.echo(f"  {who}: {state}: {p.error}")


@group.command("pause")
@click.argument("mailing_id", type=int)
@pass_app
def pause(app: App, mailing_id: int) -> None:
    """Pause a mailing: a running sender stops after the messages in flight.

    Example: newsletter send pause 3
    """
    with app.transaction() as s:
        outbox.pause(s, mailing_id, "pausat med newsletter send pause")
    click.echo(f"Utskick {mailing_id} pausat. Fortsätt med `newsletter send resume {mailing_id}`.")


@group.command("resume")
@click.argument("mailing_id", type=int)
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second (0: no limit).")
@pass_app
def resume(app: App, mailing_id: int, rate: float | None) -> None:
    """Un-pause a mailing and send the rest of it, deferred messages at once.

    Example: newsletter send resume 3
    """
    with app.transaction() as s:
        outbox.unpause(s, mailing_id)
    send_and_report(app, mailing_id, rate, f"utskick {mailing_id}")


def register(main: click.Group) -> None:
    main.add_command(group)
    main.add_command(mail)
