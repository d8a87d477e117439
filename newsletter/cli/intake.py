"""`newsletter intake ...` and `newsletter remisser ...`: omvärldsbevakning from the terminal."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import click

from .. import inbox, intake, remisser
from ..classify import explain
from ..content import check_month
from ..errors import InputError
from ..i18n import _, ngettext
from ..kinds.targeted import TargetedSource
from ..models import EntryStatus, RemissState, utcnow
from .app import ROW_ID, App, pass_app
from .mailings import send_targeted, submit_for_review

AREA_NONE = "okategoriserad"


@click.group("intake")
def intake_group() -> None:
    """Omvärldsbevakning: fetch the government's feeds and triage what came in."""


@intake_group.command("fetch")
@click.option("--feed", "names", multiple=True, metavar="NAME",
              help="Only this feed of [[intake.feeds]] (may be given more than once).")
@pass_app
def fetch(app: App, names: tuple[str, ...]) -> None:
    """Fetch the feeds of newsletter.toml and store the new entries with a suggested area.

    A feed that fails is reported in one line and the others go on; the exit status is 1 when
    one failed. Example: newsletter intake fetch --feed sou
    """
    with app.writers() as session:
        reports = intake.fetch_feeds(session, app.settings, list(names) or None)
    if not reports:
        click.echo(_("No feeds configured: add [[intake.feeds]] to newsletter.toml."))
    for r in reports:
        if r.status == "error":
            click.echo(_("{name}: failed: {error}").format(name=r.name, error=r.error), err=True)
            continue
        if r.status == "not-modified":
            line = _("{name}: unchanged since the last fetch").format(name=r.name)
        else:
            line = ngettext("{name}: {new} new, {known} already in the inbox",
                            "{name}: {new} new, {known} already in the inbox", r.new).format(
                name=r.name, new=r.new, known=r.duplicates)
            if r.skipped:
                line += _(", {n} without a link or id left out").format(n=r.skipped)
        click.echo(line + f" ({r.seconds:.1f} s)")
        if r.warning:
            click.echo(_("{name}: warning: {warning}").format(name=r.name, warning=r.warning),
                       err=True)
    new = sum(r.new for r in reports)
    if new:
        click.echo(ngettext("{n} new entry: newsletter intake list",
                            "{n} new entries: newsletter intake list", new).format(n=new))
    failed = [r.name for r in reports if r.status == "error"]
    if failed:
        raise SystemExit(1)


@intake_group.command("list")
@click.option("--status", type=click.Choice([*(s.value for s in EntryStatus), "all"]),
              default=EntryStatus.NEW.value,
              show_default=True, help="Which entries.")
@click.option("--area", metavar="SLUG",
              help=f"Only those suggested (or filed) under this area, or {AREA_NONE}.")
@pass_app
def list_cmd(app: App, status: str, area: str | None) -> None:
    """List the inbox: id, date, suggested area and score, title, and why that area.

    Example: newsletter intake list --area bostad
    """
    if area and area != AREA_NONE and area not in app.settings.area_slugs:
        raise InputError(_("unknown area “{area}” (valid: {valid})").format(
            area=area, valid=", ".join([*app.settings.area_slugs, AREA_NONE])), field="area")
    with app.transaction() as session:
        entries = inbox.list_entries(session, status=None if status == "all" else status,
                                     area=area)
        rows = [(e.id, _date(app, e.published_at or e.fetched_at), e.area or e.suggested_area,
                 e.score, e.title, e.status, e.reason, e.kind) for e in entries]
    for entry_id, day, slug, score, title, state, reason, kind in rows:
        mark = "" if state == EntryStatus.NEW else f" [{state}]"
        click.echo(f"{entry_id:>5}  {day}  {(slug or AREA_NONE):<15} {score:4.2f}  "
                   f"{kind:<9} {title}{mark}")
        click.echo(f"{'':>7}{explain(reason)}")
    click.echo(ngettext("{n} entry.", "{n} entries.", len(rows)).format(n=len(rows)))


@intake_group.command("show")
@click.argument("entry_id", type=ROW_ID, metavar="ID")
@pass_app
def show(app: App, entry_id: int) -> None:
    """Show one entry: title, link, summary, suggested area and why, and what became of it.

    Example: newsletter intake show 12
    """
    with app.transaction() as session:
        e = inbox.get_entry(session, entry_id)
        click.echo(f"{e.id}: {e.title}")
        click.echo(_("Feed: {feed} ({kind}), {day}").format(
            feed=e.feed, kind=e.kind, day=_date(app, e.published_at or e.fetched_at)))
        if e.url:
            click.echo(e.url)
        click.echo(_("Suggested area: {area} ({score:.2f}): {why}").format(
            area=e.suggested_area or AREA_NONE, score=e.score, why=explain(e.reason)))
        click.echo(_("Status: {status}").format(status=e.status)
                   + (f" ({e.area}, {e.item_path})" if e.item_path else ""))
        if e.summary:
            click.echo("\n" + e.summary)


@intake_group.command("accept")
@click.argument("ids", type=ROW_ID, nargs=-1, required=True, metavar="ID...")
@click.option("--issue", "month", required=True, metavar="YYYY-MM", help="The issue.")
@click.option("--area", metavar="SLUG", help="The area (default: the suggested one).")
@pass_app
def accept(app: App, ids: tuple[int, ...], month: str, area: str | None) -> None:
    """Write entries as items of an issue (title, link, date, kind, the summary); never
    overwrites a file. Each id succeeds or fails on its own.

    Example: newsletter intake accept 12 15 --issue 2026-12 --area bostad
    """
    with app.transaction() as session:
        outcomes = inbox.accept(session, app.settings, list(ids), month, area=area)
    _report(outcomes, lambda o: _("{id}: accepted as {path}").format(id=o.entry_id,
                                                                      path=o.path))


@intake_group.command("reject")
@click.argument("ids", type=ROW_ID, nargs=-1, required=True, metavar="ID...")
@pass_app
def reject(app: App, ids: tuple[int, ...]) -> None:
    """Reject entries (not for the newsletter; a remiss is then declined). The suggestions
    learn from what was rejected.

    Example: newsletter intake reject 13 14
    """
    with app.transaction() as session:
        outcomes = inbox.reject(session, list(ids))
    _report(outcomes, lambda o: _("{id}: rejected").format(id=o.entry_id))


def _report(outcomes, ok_line) -> None:
    for o in outcomes:
        if o.error:
            click.echo(_("{id}: {error}").format(id=o.entry_id, error=o.error), err=True)
        else:
            click.echo(ok_line(o))
    failed = sum(1 for o in outcomes if o.error)
    if failed:
        raise InputError(_("{n} of {total} not done (see above)").format(
            n=failed, total=len(outcomes)))


def _date(app: App, stamp: datetime | None) -> str:
    if stamp is None:
        return "          "
    return stamp.astimezone(ZoneInfo(app.settings.organisation.timezone)).strftime("%Y-%m-%d")


# --- remisser ---------------------------------------------------------------------------------

@click.group("remisser")
def remisser_group() -> None:
    """Remisser from the feeds: answer dates, calls for input, the association's answers."""


@remisser_group.command("list")
@click.option("--all", "all_", is_flag=True, help="Also those answered or declined.")
@pass_app
def remisser_list(app: App, all_: bool) -> None:
    """The remisser still to answer, the soonest answer date first (no date: last).

    Example: newsletter remisser list
    """
    today = utcnow().astimezone(ZoneInfo(app.settings.organisation.timezone)).date()
    with app.transaction() as session:
        rows = [(r.entry_id, r.answer_by, r.state, r.entry.title, r.entry.status)
                for r in remisser.list_remisser(session, open_only=not all_)]
    for entry_id, answer_by, state, title, status in rows:
        if answer_by:
            left = (answer_by - today).days
            when = f"{answer_by.isoformat()} " + (
                ngettext("({n} day left)", "({n} days left)", left).format(n=left) if left >= 0
                else _("(passed)"))
        else:
            when = _("no date yet")
        mark = "" if status == EntryStatus.NEW else f" [{status}]"
        click.echo(f"{entry_id:>5}  {when:<26} {state:<10} {title}{mark}")
    click.echo(ngettext("{n} remiss.", "{n} remisser.", len(rows)).format(n=len(rows)))
    if any(a is None for _i, a, *_rest in rows):
        click.echo(_("Set a missing date: newsletter remisser set ID --answer-by YYYY-MM-DD"))


@remisser_group.command("set")
@click.argument("entry_id", type=ROW_ID, metavar="ID")
@click.option("--answer-by", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The answer date, entered by hand.")
@click.option("--state", type=click.Choice([s.value for s in RemissState]),
              help="What we do about it.")
@pass_app
def remisser_set(app: App, entry_id: int, answer_by: datetime | None, state: str | None) -> None:
    """Set a remiss's answer date by hand, or its state (to_answer, answered, declined).

    Example: newsletter remisser set 12 --answer-by 2027-02-14
    """
    if answer_by is None and state is None:
        raise InputError(_("give --answer-by DATE or --state STATE"))
    day: date | None = answer_by.date() if answer_by else None
    with app.transaction() as session:
        r = remisser.set_remiss(session, entry_id, answer_by=day, state=state)
        click.echo(_("Remiss {id}: answer by {day}, {state}.").format(
            id=entry_id, day=r.answer_by or "?", state=r.state))


@remisser_group.command("call")
@click.argument("entry_id", type=ROW_ID, metavar="ID")
@click.option("--to", "segment", required=True,
              help='A named segment or an expression, e.g. "kommunchefer".')
@click.option("--dry-run", is_flag=True, help="Print the message and its recipients; send nothing.")
@click.option("--test-to", "test_to", metavar="EMAIL", multiple=True,
              help="Send one test copy to EMAIL only (repeat for several addresses).")
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second (0: no limit).")
@click.option("--yes", is_flag=True, help="Do not ask before sending to many.")
@click.option("--submit", is_flag=True,
              help="Submit it for review instead of sending (as `newsletter mail --submit`).")
@click.option("--by", "by", metavar="EMAIL",
              help="The staff member who submits or sends it.")
@pass_app
def remisser_call(app: App, entry_id: int, segment: str, dry_run: bool, test_to: tuple[str, ...],
                  rate: float | None, yes: bool, submit: bool, by: str | None) -> None:
    """Ask a segment for input on a remiss: a targeted mailing (as `newsletter mail`) whose
    text comes from templates/intake/remiss_call.md; the same command again resumes it. Where
    approval is required, --submit it first and have a reviewer approve it.

    Example: newsletter remisser call 12 --to kommunchefer --dry-run
    """
    with app.transaction() as session:
        message = remisser.call_for_input(session, app.settings, entry_id)
    if dry_run:
        click.echo(message.body)
    if submit:
        submit_for_review(app, TargetedSource(app.settings, message.subject, message.body),
                          segment, by)
        return
    send_targeted(app, message.subject, message.body, segment, test_to=test_to,
                  dry_run=dry_run, rate=rate, yes=yes, by=by)


@remisser_group.command("answer")
@click.argument("entry_id", type=ROW_ID, metavar="ID")
@click.option("--url", required=True, help="Where the association's answer is published.")
@click.option("--issue", "month", metavar="YYYY-MM",
              help="The issue to tell it in (default: the next one not yet sent).")
@pass_app
def remisser_answer(app: App, entry_id: int, url: str, month: str | None) -> None:
    """Record the association's published answer to a remiss; it becomes an item (kind
    remiss) in the next issue.

    Example: newsletter remisser answer 12 --url https://www.example.se/remissvar/strandskydd
    """
    if month:
        check_month(month)
    with app.transaction() as session:
        path = remisser.record_answer(session, app.settings, entry_id, url, month=month)
    click.echo(_("Remiss {id} answered; the item is {path}").format(id=entry_id, path=path))


def register(main: click.Group) -> None:
    main.add_command(intake_group)
    main.add_command(remisser_group)
