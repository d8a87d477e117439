"""`newsletter webinar`: schedule webinars, announce them, registrations, reminders, follow-up."""

from __future__ import annotations

import click

from .. import dates, labels, links, preflight, sender, webinars
from ..i18n import _, ngettext, pgettext
from ..kinds import webinar as messages
from ..kinds.webinar import person_label, when
from ..models import OutboxStatus
from ..outbox import creating, lifecycle
from ..segments import count, resolve_segment
from . import tables
from .app import App, pass_app
from .mailings import submit_for_review
from .prompts import confirm


def _field_name(field: str) -> str:
    """A webinar's field as the person who changed it calls it."""
    names = {"title": pgettext("webinar field", "title"),
             "starts_at": pgettext("webinar field", "start"),
             "duration_minutes": pgettext("webinar field", "duration"),
             "join_url": pgettext("webinar field", "link"),
             "area": pgettext("webinar field", "area"),
             "description": pgettext("webinar field", "description"),
             "capacity": pgettext("webinar field", "places")}
    return names.get(field, field)


_DRY_RUN = click.option("--dry-run", is_flag=True,
                        help="Show what would happen; change and send nothing.")


@click.group("webinar")
def group() -> None:
    """Webinars: schedule, announce to a segment, register, remind, update, cancel, follow up.

    Example: newsletter webinar new --title "Bredband på landsbygden" --start "2026-12-10 14:00"
    --duration 60 --join-url https://teams.example.se/l/abc --area digitalisering
    """


def _deliver(app: App, outcome: webinars.Outcome, dry_run: bool) -> None:
    """Send the mailings OUTCOME created, and finish those an interrupted run left."""
    if dry_run or not (outcome.mailings or outcome.resumed):
        return
    if outcome.resumed:
        click.echo(ngettext("Finishing mailing {ids}, which an earlier run did not finish.",
                            "Finishing mailings {ids}, which an earlier run did not finish.",
                            len(outcome.resumed)).format(
            ids=", ".join(str(i) for i in outcome.resumed)))
    for r in sender.deliver(app.settings, app.sessions, outcome.mailings + outcome.resumed):
        line = _("Mailing {id}: {counts}").format(id=r.mailing_id, counts=labels.send_counts(r))
        if r.deferred or r.remaining:
            line += " " + _("(`newsletter send status {id}`)").format(id=r.mailing_id)
        if r.paused_reason:
            line += "; " + _("paused: {reason}").format(reason=r.paused_reason)
        click.echo(line)


@group.command("new")
@click.option("--title", required=True, help="The title, as in the invitation's subject.")
@click.option("--start", required=True,
              help='Start in the organisation\'s time zone (Europe/Stockholm): "2026-12-10 14:00".')
@click.option("--duration", type=int, default=60, show_default=True, help="Minutes.")
@click.option("--join-url", required=True, help="The meeting link (Teams, Zoom...).")
@click.option("--area", help="The priority area's slug, e.g. digitalisering.")
@click.option("--description", default="", help="Markdown text, or a FILE.md to read it from.")
@click.option("--capacity", type=int, help="Places; a waiting list once they are taken.")
@click.option("--slug", help="The webinar's short name in links (default: from the title).")
@_DRY_RUN
@pass_app
def new(app: App, title: str, start: str, duration: int, join_url: str, area: str | None,
        description: str, capacity: int | None, slug: str | None, dry_run: bool) -> None:
    """Schedule a webinar. Nothing is sent until `webinar announce`.

    Example: newsletter webinar new --title "Bredband på landsbygden" --start "2026-12-10 14:00"
    --duration 60 --join-url https://teams.example.se/l/abc --area digitalisering
    --description beskrivning.md --capacity 100
    """
    settings = app.settings
    with app.transaction(dry_run=dry_run) as session:
        webinar = webinars.create_webinar(
            session, settings, title=title, starts_at=webinars.parse_start(settings, start),
            duration_minutes=duration, join_url=join_url, area=area,
            description=webinars.read_description(description), capacity=capacity, slug=slug)
        what = {"slug": webinar.slug, "title": webinar.title, "when": when(settings, webinar)}
    if dry_run:
        click.echo(_("Would create {slug}: {title}, {when}").format(**what))
    else:
        click.echo(_("Created {slug}: {title}, {when}").format(**what))


@group.command("list")
@pass_app
def list_(app: App) -> None:
    """List webinars, soonest first: slug, start, status, registered (of the places), the
    waiting list and the title.

    Example: newsletter webinar list
    """
    tz = dates.zone(app.settings)
    with app.transaction() as session:
        rows = [(w.slug, dates.stamp(w.starts_at, tz), labels.webinar_status(w.status),
                 f"{n.registered}/{w.capacity}" if w.capacity else str(n.registered),
                 n.waitlisted, w.title) for w, n in webinars.list_webinars(session)]
    if not rows:
        click.echo(_("No webinars yet: create one with `newsletter webinar new`."))
        return
    tables.echo((_("Slug"), _("Start"), _("Status"), _("Registered"), _("Waiting list"),
                 _("Title")), rows, (False, False, False, True, True, False), limit=60)


@group.command("show")
@click.argument("slug")
@pass_app
def show(app: App, slug: str) -> None:
    """Show a webinar with its registrations and waiting list.

    Example: newsletter webinar show bredband-pa-landsbygden
    """
    settings = app.settings
    with app.transaction() as session:
        w = webinars.get_webinar(session, slug)
        n = webinars.counts(session, w)
        click.echo(_("{title}\n  slug:         {slug}\n  when:         {when}\n"
                     "  status:       {status} (SEQUENCE {sequence}, UID {uid})\n"
                     "  area:         {area}\n  link:         {link}\n"
                     "  registration: {page}\n  places:       {places}\n"
                     "  registered:   {registered}\n  waiting list: {waitlisted}\n"
                     "  withdrawn:    {withdrawn}").format(
            title=w.title, slug=w.slug, when=when(settings, w),
            status=labels.webinar_status(w.status), sequence=w.sequence, uid=w.uid,
            area=w.area or "-", link=w.join_url, page=links.webinar_url(settings, w.slug),
            places=w.capacity or _("unlimited"), registered=n.registered,
            waitlisted=n.waitlisted, withdrawn=n.cancelled))
        if w.recording_url:
            click.echo(_("  recording:    {url}").format(url=w.recording_url))
        for status, heading in (("registered", _("Registered:")),
                                ("waitlisted", _("Waiting list:"))):
            people = webinars.registered_people(session, w, status)
            if people:
                click.echo(heading)
                for i, person in enumerate(people, 1):
                    click.echo(f"  {i:>3}. {person_label(person)}")
        unfinished = [lifecycle.mailing_status(session, i, failures=0)
                      for i in webinars.unfinished(session, w)]
    if unfinished:
        click.echo(_("Unfinished mailings (run the same command again, or "
                     "`newsletter send resume ID`):"))
        for st in unfinished:
            click.echo(_("  {id}  {source}  {status}: {sent} of {total} sent").format(
                id=st.mailing.id, source=st.mailing.source,
                status=labels.mailing_status(st.mailing.status),
                sent=st.counts[OutboxStatus.SENT], total=st.total))


@group.command("edit")
@click.argument("slug")
@click.option("--title")
@click.option("--start", help='New start, "2026-12-10 15:00" (Europe/Stockholm).')
@click.option("--duration", type=int, help="Minutes.")
@click.option("--join-url")
@click.option("--area")
@click.option("--description", help="Markdown text, or a FILE.md.")
@click.option("--capacity", type=int)
@_DRY_RUN
@pass_app
def edit(app: App, slug: str, title, start, duration, join_url, area, description, capacity,
         dry_run: bool) -> None:
    """Change a webinar. A new time or join link sends those registered an updated invite
    (same UID, SEQUENCE raised); more places go to the waiting list.

    Example: newsletter webinar edit bredband-pa-landsbygden --start "2026-12-10 15:00"
    """
    settings = app.settings
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.edit_webinar(
            session, settings, slug, title=title,
            starts_at=webinars.parse_start(settings, start) if start else None,
            duration_minutes=duration, join_url=join_url, area=area,
            description=webinars.read_description(description) if description else None,
            capacity=capacity)
        summary = when(settings, outcome.webinar)
    if not outcome.changed:
        click.echo(_("Nothing was changed."))
        _deliver(app, outcome, dry_run)
        return
    what = {"fields": ", ".join(_field_name(name) for name in outcome.changed), "slug": slug,
            "when": summary}
    if dry_run:
        click.echo(_("Would change {fields}: {slug}, {when}").format(**what))
    else:
        click.echo(_("Changed {fields}: {slug}, {when}").format(**what))
    for person in outcome.promoted:
        click.echo(_("From the waiting list: {who}").format(who=person_label(person)))
    _deliver(app, outcome, dry_run)


@group.command("cancel")
@click.argument("slug")
@click.option("--message", default="", metavar="TEXT",
              help=("Your own words in the cancellation, e.g. the new date. Without it the "
                     "message promises nothing."))
@_DRY_RUN
@pass_app
def cancel(app: App, slug: str, message: str, dry_run: bool) -> None:
    """Cancel a webinar: those registered get a calendar cancellation (METHOD:CANCEL), those
    on the waiting list a notice; the text is templates/email/messages/LANG/webinar_cancellation.md.

    Example: newsletter webinar cancel bredband-pa-landsbygden
    --message "Vi återkommer med ett nytt datum i vår."
    """
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.cancel_webinar(session, app.settings, slug, message=message.strip())
        n = webinars.counts(session, outcome.webinar).registered
    if outcome.status == "already-cancelled":
        click.echo(_("{slug} was already cancelled.").format(slug=slug))
    elif dry_run:
        click.echo(_("Would cancel {slug} ({n} registered)").format(slug=slug, n=n))
    else:
        click.echo(_("Cancelled: {slug} ({n} registered)").format(slug=slug, n=n))
    _deliver(app, outcome, dry_run)


@group.command("announce")
@click.argument("slug")
@click.option("--to", "segment", required=True,
              help="A named segment (kommunchefer) or an expression.")
@click.option("--yes", is_flag=True, help="Do not ask before sending to many.")
@click.option("--submit", is_flag=True,
              help="Submit the invitation for review instead of sending it.")
@click.option("--by", "by", metavar="EMAIL",
              help="The staff member who submits or sends it.")
@_DRY_RUN
@pass_app
def announce(app: App, slug: str, segment: str, yes: bool, submit: bool, by: str | None,
             dry_run: bool) -> None:
    """Send the invitation to a segment: registration link and an add-to-calendar file.

    Running it again resumes the same mailing; nobody gets it twice. Where approval is
    required, submit it first (--submit) and have a reviewer approve it (newsletter review
    approve webinar:SLUG --by EMAIL).
    Example: newsletter webinar announce bredband-pa-landsbygden --to kommunchefer
    """
    settings = app.settings
    if submit:
        with app.transaction() as session:
            source = messages.announcement(settings, webinars.get_webinar(session, slug))
        submit_for_review(app, source, segment, by)
        return
    with app.transaction() as session:
        expr = resolve_segment(settings, segment)
        n = count(session, settings, expr)
    if dry_run:
        click.echo(_("Would send the invitation to {n} recipients ({segment}).").format(
            n=n, segment=expr))
        return
    if n > settings.transport.confirm_above and not yes:
        confirm(_("Send the invitation to {n} recipients ({segment})?").format(
            n=n, segment=expr), abort=True)
    with app.transaction() as session:
        source = messages.announcement(settings, webinars.get_webinar(session, slug))
        if creating.find_mailing(session, source.kind, source.key, segment) is None:
            preflight.check_send(session, settings, source, segment, by=by)
        outcome = webinars.announce(session, settings, slug, segment)
    _deliver(app, outcome, dry_run)


@group.command("register")
@click.argument("slug")
@click.argument("email")
@_DRY_RUN
@pass_app
def register_(app: App, slug: str, email: str, dry_run: bool) -> None:
    """Register a contact; they get a confirmation with a calendar invite, or a place on the
    waiting list when the webinar is full.

    Example: newsletter webinar register bredband-pa-landsbygden anna.oberg@example.se
    """
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.register(session, app.settings, slug, email)
        who = person_label(outcome.person)
    messages = {"registered": _("Registered: {who}"),
                "waitlisted": _("Waiting list, number {position}: {who}"),
                "already-registered": _("Already registered: {who}"),
                "already-waitlisted": _("Already on the waiting list: {who}")}
    text = messages[outcome.status].format(who=who, position=outcome.position)
    click.echo(_("(dry run) {text}").format(text=text) if dry_run else text)
    _deliver(app, outcome, dry_run)


@group.command("unregister")
@click.argument("slug")
@click.argument("email")
@_DRY_RUN
@pass_app
def unregister(app: App, slug: str, email: str, dry_run: bool) -> None:
    """Cancel a registration; the first on the waiting list gets the place.

    Example: newsletter webinar unregister bredband-pa-landsbygden anna.oberg@example.se
    """
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.unregister(session, app.settings, slug, email)
        who = person_label(outcome.person)
        promoted = [person_label(p) for p in outcome.promoted]
    if outcome.status == "not-registered":
        click.echo(_("{who} was not registered.").format(who=who))
        _deliver(app, outcome, dry_run)
        return
    text = _("Withdrawn: {who}").format(who=who)
    click.echo(_("(dry run) {text}").format(text=text) if dry_run else text)
    for label in promoted:
        click.echo(_("Got the place from the waiting list: {who}").format(who=label))
    _deliver(app, outcome, dry_run)


@group.command("remind")
@click.argument("slug")
@click.option("--when", "what", type=click.Choice(webinars.REMINDERS), default="day",
              show_default=True, help="Which reminder: the day before, or an hour before.")
@click.option("--force", is_flag=True,
              help="Send it even though the webinar is more than two days away.")
@_DRY_RUN
@pass_app
def remind(app: App, slug: str, what: str, force: bool, dry_run: bool) -> None:
    """Remind those registered (not the waiting list). Each reminder reaches a person once;
    running it again only resumes it. The worker sends the reminders by itself ([webinars]
    reminders); by hand, more than two days before the start needs --force.

    Example: newsletter webinar remind bredband-pa-landsbygden --when hour
    """
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.remind(session, app.settings, slug, what, force=force)
        n = webinars.counts(session, outcome.webinar).registered
    if dry_run:
        click.echo(_("Would remind {n} registered.").format(n=n))
    _deliver(app, outcome, dry_run)


@group.command("followup")
@click.argument("slug")
@click.option("--recording", required=True, help="The recording's URL.")
@_DRY_RUN
@pass_app
def followup(app: App, slug: str, recording: str, dry_run: bool) -> None:
    """Thank those registered and send them the recording (once).

    Example: newsletter webinar followup bredband-pa-landsbygden
    --recording https://play.example.se/1
    """
    with app.transaction(dry_run=dry_run) as session:
        outcome = webinars.followup(session, app.settings, slug, recording)
        n = webinars.counts(session, outcome.webinar).registered
    if dry_run:
        click.echo(_("Would send the recording to {n} registered.").format(n=n))
    _deliver(app, outcome, dry_run)


def register(main: click.Group) -> None:
    main.add_command(group)
