"""`newsletter municipalities`: the list of municipalities and which are members."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from ..coverage import NONE, SEVERAL, UNREACHABLE, vacancies
from ..i18n import _
from ..municipalities import list_municipalities, set_members
from .app import App, pass_app


@click.group("municipalities")
def group() -> None:
    """Sweden's 290 municipalities and which of them are members."""


@group.command("list")
@click.option("--members", is_flag=True, help="Only member municipalities.")
@click.option("--county", help='Only this county, e.g. "Jämtlands län".')
@pass_app
def list_(app: App, members: bool, county: str | None) -> None:
    """List municipalities: kommunkod, name, county, member since.

    Example: newsletter municipalities list --members
    """
    with app.transaction() as session:
        for m in list_municipalities(session, members_only=members, county=county):
            since = m.member_since.isoformat() if m.member_since else ("ja" if m.member else "")
            click.echo(f"{m.kommunkod}  {m.name:<20} {m.county:<25} {since}")


@group.command("members")
@click.argument("names", nargs=-1)
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A text file with one municipality (name or kommunkod) a line.")
@click.option("--remove", is_flag=True, help="Mark them as no longer members.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Member since (YYYY-MM-DD).")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@pass_app
def members(app: App, names: tuple[str, ...], file: Path | None, remove: bool,
            since, dry_run: bool) -> None:
    """Mark municipalities as members, by name, long form or kommunkod.

    Example: newsletter municipalities members Åsele "Dorotea kommun" 2462
    """
    if not names and not file:
        raise click.UsageError(_("give municipality names or --file"))
    since_date: date | None = since.date() if since else None
    with app.transaction(dry_run=dry_run) as session:
        changed = []
        if names:
            changed += set_members(session, names, member=not remove, since=since_date)
        if file:
            lines = file.read_text(encoding="utf-8-sig").splitlines()
            changed += set_members(session, lines, member=not remove, since=since_date,
                                   source=str(file))
        names_changed = [m.name for m in changed]
    changes = {"n": len(names_changed), "names": ", ".join(names_changed)}
    if dry_run:
        click.echo(_("{n} municipalities would change: {names}").format(**changes))
    else:
        click.echo(_("{n} municipalities changed: {names}").format(**changes))


@group.command("vacancies")
@click.option("--role", help="Check this role (default: [register] vacancy_roles, i.e. "
              "kommunchef and kso).")
@pass_app
def vacancies_(app: App, role: str | None) -> None:
    """Member municipalities with no holder of a role, several, or one who cannot be mailed.

    Example: newsletter municipalities vacancies --role kommunchef
    """
    problems = {NONE: _("no holder"), SEVERAL: _("several holders"),
                UNREACHABLE: _("holder not mailable")}
    with app.transaction() as session:
        found = vacancies(session, app.settings, role=role)
    for v in found:
        holders = ", ".join(f"{h.email} ({h.status})" if h.status != "active" else h.email
                            for h in v.holders)
        click.echo(f"{v.kommunkod}  {v.municipality:<20} {v.role:<12} {problems[v.problem]}"
                   + (f": {holders}" if holders else ""))
    click.echo(_("{count} found").format(count=len(found)), err=True)


def register(main: click.Group) -> None:
    main.add_command(group)
