"""`newsletter issue` and `newsletter items`: compose, build, check and preview an issue."""

from __future__ import annotations

import webbrowser
from datetime import date, datetime
from zoneinfo import ZoneInfo

import click

from .. import content, dates, issue_build
from ..errors import InputError
from ..i18n import _, ngettext
from ..kinds import issue as issue_kind
from .app import App, pass_app

MONTH = click.argument("month", metavar="YYYY-MM")


@click.group("issue")
def issue_group() -> None:
    """The monthly issue: scaffold, build, check and preview it."""


@issue_group.command("new")
@MONTH
@pass_app
def issue_new(app: App, month: str) -> None:
    """Create issues/YYYY-MM/issue.md and items/, listing today's priority areas.

    Example: newsletter issue new 2026-12
    """
    path = content.new_issue(app.settings, month)
    click.echo(_("Created {path}").format(path=path))
    click.echo(_("Add items: newsletter items new --issue {month} --area SLUG --title TEXT")
               .format(month=month))


@issue_group.command("build")
@MONTH
@pass_app
def issue_build_cmd(app: App, month: str) -> None:
    """Render the issue (every area and role) to issues/YYYY-MM/build/: issue.html, issue.txt,
    issue.mjml and manifest.json.

    Example: newsletter issue build 2026-12
    """
    build = issue_build.build_issue(app.settings, month,
                                    issue_build.upcoming_webinars(app.settings))
    for path in build.paths:
        click.echo(_("Wrote {path} ({kb:.1f} kB)").format(path=path,
                                                        kb=path.stat().st_size / 1024))
    manifest = build.content.manifest
    click.echo(_("{items} items in {areas} areas.").format(items=len(manifest["items"]),
                                                            areas=len(manifest["areas"])))


@issue_group.command("check")
@MONTH
@pass_app
def issue_check(app: App, month: str) -> None:
    """Lint the issue: errors (invalid files, unknown areas, no items, no subject) and warnings
    (no preheader, HTML over 90 KB, images without alt text, non-https links, empty areas).
    Exits non-zero when there are errors.

    Example: newsletter issue check 2026-12
    """
    report = issue_build.check_issue(app.settings, month)
    for line in report.errors:
        click.echo(_("ERROR: {line}").format(line=line))
    for line in report.warnings:
        click.echo(_("WARNING: {line}").format(line=line))
    counts = {"items": report.items, "errors": len(report.errors),
              "warnings": len(report.warnings)}
    if report.html_bytes:
        click.echo(_("{items} items, {kb:.0f} kB HTML: {errors} errors, {warnings} warnings.")
                   .format(kb=report.html_bytes / 1024, **counts))
    else:
        click.echo(_("{items} items: {errors} errors, {warnings} warnings.").format(**counts))
    if report.errors:
        raise InputError(_("{n} errors in the issue {month}: correct them and run again")
                         .format(n=len(report.errors), month=month))


@issue_group.command("preview")
@MONTH
@click.option("--as", "email", metavar="EMAIL", help="Show it as this contact gets it.")
@click.option("--open", "open_", is_flag=True, help="Open the preview in the web browser.")
@pass_app
def issue_preview(app: App, month: str, email: str | None, open_: bool) -> None:
    """Write issues/YYYY-MM/build/preview.html, as the contact EMAIL gets it (their areas, roles
    and personal links), or else the complete issue.

    Example: newsletter issue preview 2026-12 --as anna.berg@example.se --open
    """
    webinars = issue_build.upcoming_webinars(app.settings)
    if email:
        with app.transaction() as session:
            path = issue_build.preview_issue(app.settings, month, session=session, email=email,
                                             webinars=webinars)
    else:
        path = issue_build.preview_issue(app.settings, month, webinars=webinars)
    click.echo(_("Wrote {path}").format(path=path))
    if open_:
        webbrowser.open(path.resolve().as_uri())


@click.group("items")
def items_group() -> None:
    """News items of an issue: one Markdown file each, tagged with a priority area."""


def _today(app: App) -> date:
    return datetime.now(ZoneInfo(app.settings.organisation.timezone)).date()


def _next_issue(app: App) -> str:
    with app.transaction() as session:
        return issue_kind.next_issue(session, app.settings, _today(app))


@items_group.command("new")
@click.option("--area", required=True, help="The priority area's slug, e.g. bostad.")
@click.option("--title", required=True, help="The headline.")
@click.option("--issue", "month", metavar="YYYY-MM",
              help=("The issue (default: the next one to be sent: the first month from this "
                     "one on that has not been sent)."))
@click.option("--url", help="The 'Läs mer' link (https://...).")
@click.option("--kind", default="nyhet", show_default=True,
              type=click.Choice(list(content.KINDS)), help="What kind of item it is.")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]),
              help=("The item's date, YYYY-MM-DD (default: today, the day it is written); an "
                     "event (--kind evenemang) needs the date it takes place."))
@click.option("--order", type=int, default=None,
              help="Its place in the area (1, 2, ...); without: after those with one, by name.")
@pass_app
def items_new(app: App, area: str, title: str, month: str | None, url: str | None,
              kind: str, day: datetime | None, order: int | None) -> None:
    """Create issues/YYYY-MM/items/TITLE-AS-SLUG.md in the next issue to be sent (or --issue);
    never overwrites a file.

    Example: newsletter items new --area bostad --title "Nytt om strandskyddet"
    --url https://www.regeringen.se/
    Example: newsletter items new --kind evenemang --date 2027-02-12 --area medlemmar
    --title "Vårmötet i Dorotea"
    """
    chosen = month or _next_issue(app)
    written = day.date() if day else None
    path = content.new_item(app.settings, chosen, area=area, title=title, url=url, kind=kind,
                            order=order, day=written or (None if kind == "evenemang"
                                                         else _today(app)))
    click.echo(_("Created {path}").format(path=path))
    if month is None:
        click.echo(_("In issue {month}, the next one to be sent (--issue YYYY-MM for another).")
                   .format(month=chosen))
    if written is None:
        click.echo(_("Dated {day}, the day it was written (change date: in the file).")
                   .format(day=dates.day(_today(app))))
    elif kind == "evenemang":
        click.echo(_("Dated {day}, the day of the event.").format(day=dates.day(written)))


@items_group.command("list")
@click.option("--issue", "month", metavar="YYYY-MM",
              help="The issue (default: the next one to be sent).")
@pass_app
def items_list(app: App, month: str | None) -> None:
    """List the issue's items by priority area, in the order the issue shows them, with their
    dates.

    Example: newsletter items list --issue 2026-12
    """
    chosen = month or _next_issue(app)
    issue = content.load_issue(app.settings, chosen)
    if month is None:
        click.echo(_("Issue {month}, the next one to be sent:").format(month=chosen))
    for area in app.settings.areas:
        items = issue.items_in(area.slug)
        click.echo(f"{area.name} ({area.slug}): {len(items)}")
        for item in items:
            roles = (_("  [only {roles}]").format(roles=", ".join(sorted(item.roles)))
                     if item.roles else "")
            when = f" · {dates.day(item.date)}" if item.date else ""
            file = f"{item.id}.md"  # a file name, not words: built apart so scan_texts skips it
            click.echo(f"  {file}  {item.kind_label}{when}: {item.title}{roles}")
    click.echo(ngettext("{n} item.", "{n} items.", len(issue.items)).format(n=len(issue.items)))


def register(main: click.Group) -> None:
    main.add_command(issue_group)
    main.add_command(items_group)
