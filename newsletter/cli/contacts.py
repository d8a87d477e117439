"""`newsletter contacts`: import, add, list, show, export, unsubscribe and forget contacts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..contacts import (
    add_contact,
    contact_details,
    export_contacts,
    forget,
    list_contacts,
    normalise_email,
    unsubscribe_address,
)
from ..contacts_import import ImportReport, import_contacts
from ..models import PERSON_STATUSES, Person, Position
from . import App, pass_app
from .prompts import confirm


@click.group("contacts")
def group() -> None:
    """The contact register: the people who get the newsletter, and their positions."""


def _print_report(report: ImportReport, dry_run: bool) -> None:
    for title, problems in (("Varning", report.warnings), ("Hoppade över", report.skipped),
                            ("Avvisad", report.rejected)):
        for p in sorted(problems, key=lambda p: p.line):
            click.echo(f"{report.source}:{p.line}: {title}: {p.reason}", err=True)
    verb = "Skulle importera (--dry-run, inget sparat)" if dry_run else "Importerade"
    click.echo(f"{verb} {report.source}: {report.rows} rader: {report.added} nya, "
               f"{report.updated} uppdaterade, {report.unchanged} oförändrade, "
               f"{len(report.skipped)} överhoppade (avregistrerade/spärrade), "
               f"{len(report.rejected)} avvisade rader.")


@group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and report, change nothing.")
@pass_app
def import_(app: App, file: Path, dry_run: bool) -> None:
    """Import contacts from a CSV file (comma or semicolon; UTF-8 or Windows-1252).

    Columns: email,name,municipality,role[,county,areas] or the Swedish
    E-post;Namn;Kommun;Roll[;Län;Områden]. Bad rows are reported with their line number and the
    rest imported; addresses that unsubscribed, bounced or were erased are never re-subscribed.
    Problems go to stderr; the exit status is 1 when rows were rejected (the rest imported).

    Example: newsletter contacts import kontakter.csv --dry-run
    """
    with app.transaction(dry_run=dry_run) as session:
        report = import_contacts(session, app.settings, file)
    _print_report(report, dry_run)
    if report.rejected:
        sys.exit(1)


@group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Full name.")
@click.option("--municipality", default="", help='Name, "X kommun" or kommunkod.')
@click.option("--role", default="", help="A role slug or its Swedish name, e.g. kommunchef.")
@click.option("--area", "areas", multiple=True, help="A priority area slug (repeatable; "
              "default: every area).")
@pass_app
def add(app: App, email: str, name: str, municipality: str, role: str,
        areas: tuple[str, ...]) -> None:
    """Add one contact, or a position or areas to an existing one.

    Example: newsletter contacts add anna@example.se --name "Anna Berg" --municipality Åsele
    --role kommunchef
    """
    with app.transaction() as session:
        person, outcome = add_contact(session, app.settings, email, name=name,
                                      municipality=municipality, role=role, areas=areas)
        words = {"added": "Lade till", "updated": "Uppdaterade", "unchanged": "Oförändrad:"}
        click.echo(f"{words[outcome]} {person.email}")


def _sorted_positions(person: Person) -> list[Position]:
    """Municipal positions by municipality, then the association's own (municipality NULL)."""
    return sorted(person.positions, key=lambda p: (
        p.municipality is None, p.municipality.name if p.municipality else "", p.role))


def _positions(person: Person) -> str:
    return ", ".join(f"{p.role}@{p.municipality.name}" if p.municipality else p.role
                     for p in _sorted_positions(person))


@group.command("list")
@click.option("--status", type=click.Choice(PERSON_STATUSES),
              help="Only contacts with this status.")
@click.option("--segment", help='Only the active contacts a segment reaches (a name or an '
              'expression, e.g. "role:kommunchef and member").')
@click.option("--municipality", help="Only contacts with a position in this municipality.")
@click.option("--role", help="Only contacts holding this role.")
@pass_app
def list_(app: App, status: str | None, segment: str | None, municipality: str | None,
          role: str | None) -> None:
    """List contacts: address, name, status, positions.

    Example: newsletter contacts list --municipality Åsele --status active
    """
    with app.transaction() as session:
        people = list_contacts(session, app.settings, status=status, segment=segment,
                               municipality=municipality, role=role)
        for p in people:
            click.echo(f"{p.email}\t{p.name}\t{p.status}\t{_positions(p)}")
    click.echo(f"{len(people)} kontakter", err=True)


@group.command("show")
@click.argument("email")
@pass_app
def show(app: App, email: str) -> None:
    """Show one contact: positions, areas, status, lawful basis and recent events.

    Example: newsletter contacts show anna@example.se
    """
    with app.transaction() as session:
        d = contact_details(session, app.settings, email)
        p = d.person
        click.echo(f"E-post:      {p.email}")
        click.echo(f"Namn:        {p.name}")
        click.echo(f"Status:      {p.status}" + (f" (spärrad: {d.suppression})"
                                                  if d.suppression else ""))
        for pos in _sorted_positions(p):
            where = f"{pos.municipality.name} ({pos.municipality.county})" \
                if pos.municipality else "föreningen"
            click.echo(f"Roll:        {app.settings.roles.get(pos.role, pos.role)}, {where}")
        chosen = "alla" if len(d.areas) == len(app.settings.areas) else ", ".join(d.areas)
        click.echo(f"Områden:     {chosen}")
        click.echo(f"Rättslig grund: {p.lawful_basis} (källa: {p.basis_source or '-'}, "
                   f"{p.basis_at:%Y-%m-%d %H:%M} UTC)")
        if p.paused_until:
            click.echo(f"Pausad till: {p.paused_until.isoformat()}")
        for event in d.events:
            click.echo(f"  {event.at:%Y-%m-%d %H:%M}  {event.kind}  {event.detail or ''}")


@group.command("export")
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--status", type=click.Choice((*PERSON_STATUSES, "all")), default="active",
              show_default=True, help="Which contacts to export.")
@click.option("--semicolon", is_flag=True, help="Separate with ; (what Swedish Excel expects "
              "when the file is double-clicked).")
@pass_app
def export(app: App, file: str, status: str, semicolon: bool) -> None:
    """Write contacts as CSV (the import's columns, so the file imports back unchanged).

    Cells Excel would run as formulas (= + - @ ...) are neutralised; a file is written in full,
    then renamed into place. Example: newsletter contacts export kontakter.csv
    """
    with app.transaction() as session:
        rows = export_contacts(session, file, status=None if status == "all" else status,
                               delimiter=";" if semicolon else ",")
    if file != "-":
        click.echo(f"Skrev {rows} rader till {file}", err=True)


@group.command("unsubscribe")
@click.argument("email")
@pass_app
def unsubscribe_(app: App, email: str) -> None:
    """Unsubscribe an address from every mailing (also one not in the register: it is blocked).

    Example: newsletter contacts unsubscribe anna@example.se
    """
    address = normalise_email(email)
    with app.transaction() as session:
        outcome = unsubscribe_address(session, app.settings.secret_key, address, source="cli")
    click.echo({"unsubscribed": f"Avregistrerade {address}",
                "already": f"{address} var redan avregistrerad",
                "blocked": f"{address} finns inte i registret; adressen är nu spärrad."}[outcome])


@group.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def forget_(app: App, email: str, yes: bool) -> None:
    """Erase a person (GDPR): delete them and their positions, areas and registrations; keep only
    a hashed suppression entry so the address is never mailed or added again.

    Example: newsletter contacts forget anna@example.se --yes
    """
    address = normalise_email(email)
    if not yes:
        confirm(f"Radera {address} för gott?", abort=True)
    with app.transaction() as session:
        found = forget(session, app.settings.secret_key, address)
    if found:
        click.echo(f"Raderade {address}; bara en hashad spärr finns kvar.")
    else:
        click.echo(f"{address} fanns inte i registret; adressen är nu spärrad.")


def register(main: click.Group) -> None:
    main.add_command(group)
