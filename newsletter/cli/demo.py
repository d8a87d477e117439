"""`newsletter demo`: the main job end to end on demo data."""

from __future__ import annotations

import click

from .. import db, review, schedule, siteconfig, transports, webinars
from ..demo import DEMO_MONTH, DEMO_SEGMENT, seed
from ..i18n import _, ngettext
from ..issue_build import build_issue
from ..kinds import issue as issue_kind
from ..settings import CONFIG_NAME
from .app import App
from .mailings import send_and_report
from .site import init


@click.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Seed demo members and contacts, build the sample issue and send it to `medlemmar`.

    In a folder without newsletter.toml it first writes the demo's settings (an example.se
    sender, "(demo)" in the name); an existing site keeps its own.

    Everything is demo data (invented people, @example.se addresses). With the default
    transport the messages land in ./Maildir, which any mail client can open. Running it
    again sends nobody a second copy.

    Example: newsletter demo
    """
    app: App = ctx.obj
    root = app.settings.root
    if not (root / CONFIG_NAME).exists():
        path = siteconfig.write_config(root, siteconfig.demo_organisation(),
                                          require_approval=False)
        click.echo(_("Created {path} with the demo's settings (example.se addresses: not for "
                     "real mail; `newsletter init` in an empty folder makes a real site)").format(
                     path=path))
        del app.settings
    ctx.invoke(init)
    settings = app.settings
    with db.transaction(app.sessions) as session:
        seeded = seed(session, settings)
    report = seeded.contacts
    click.echo(_("Demo data: {members} member municipalities; contacts: {added} new, "
                 "{updated} updated, {unchanged} unchanged.").format(
                 members=seeded.members, added=report.added, updated=report.updated,
                 unchanged=report.unchanged))
    for name, n in seeded.segments.items():
        click.echo(ngettext("  segment {name}: {n} recipient", "  segment {name}: {n} recipients",
                            n).format(name=name, n=n))

    with app.sessions() as session:
        upcoming = webinars.upcoming(session, settings)
    build = build_issue(settings, DEMO_MONTH, upcoming)
    click.echo(_("Built the issue {month}: {folder}/issue.html ({kb:.0f} kB HTML)").format(
        month=DEMO_MONTH, folder=build.folder, kb=len(build.content.html.encode()) / 1024))

    if review.approval_required(settings):
        click.echo(_("Not sent: this is a real site, where an issue goes out only once a "
                     "reviewer approved it (newsletter issue submit, issue approve); the demo "
                     "sends only on a site with the demo's settings."))
        return
    with db.transaction(app.sessions) as session:
        source = issue_kind.IssueSource(settings, DEMO_MONTH, upcoming)
        mailing_id = schedule.send_now(session, settings, source, DEMO_SEGMENT).mailing.id
    send_and_report(app, mailing_id, None, _("mailing {id}").format(id=mailing_id))

    click.echo("")
    click.echo(_("Have a look:"))
    click.echo(_("  the messages:    {where}").format(
        where=transports.from_settings(settings).description))
    click.echo(_("  the web version: {folder}/issue.html").format(folder=build.folder))
    click.echo(_("  the mailing:     newsletter send status {id}").format(id=mailing_id))
    click.echo(_("  the pages:       newsletter serve  (unsubscribe, preferences, archive)"))


def register(main: click.Group) -> None:
    main.add_command(demo)
