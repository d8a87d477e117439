"""`newsletter contacts`: import, add, list, show, export, unsubscribe and forget contacts; end
and hand over positions, change an address, verify self-declared roles, export everything about
one person."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from .. import labels
from ..consent import consents_of, purpose_label
from ..contacts import (
    add_contact,
    change_email,
    contact_details,
    export_contacts,
    find_person,
    forget,
    list_contacts,
    normalise_email,
    smtputf8_warning,
    unsubscribe_address,
)
from ..contacts_import import ImportReport, import_contacts
from ..i18n import _, ngettext
from ..issue_build import forget_previews
from ..models import PERSON_STATUSES, Person, Position
from ..person_record import FORMATS, export_person
from ..positions import Change, end_role, hand_over
from ..role_claims import claims_of, decide, pending
from .app import App, pass_app
from .prompts import confirm


@click.group("contacts")
def group() -> None:
    """The contact register: the people who get the newsletter, and their positions."""


def _print_report(report: ImportReport, dry_run: bool) -> None:
    for title, problems in ((_("Merged"), report.merged), (_("Warning"), report.warnings),
                            (_("Skipped"), report.skipped), (_("Rejected"), report.rejected)):
        for p in sorted(problems, key=lambda p: p.line):
            click.echo(f"{report.source}:{p.line}: {title}: {p.reason}", err=True)
    if report.sync:
        _print_changes(report.started + report.ended)
        if report.rejected:
            click.echo(_("Rows were rejected, so no position was ended: correct them and run "
                         "the import again."), err=True)
    counts = {"source": report.source, "rows": report.rows, "added": report.added,
              "updated": report.updated, "unchanged": report.unchanged,
              "skipped": len(report.skipped), "rejected": len(report.rejected)}
    if dry_run:
        click.echo(_("Would import (--dry-run, nothing saved) {source}: {rows} rows: {added} new, "
                     "{updated} updated, {unchanged} unchanged, {skipped} skipped "
                     "(unsubscribed/suppressed), {rejected} rejected rows.").format(**counts))
    else:
        click.echo(_("Imported {source}: {rows} rows: {added} new, {updated} updated, "
                     "{unchanged} unchanged, {skipped} skipped (unsubscribed/suppressed), "
                     "{rejected} rejected rows.").format(**counts))


_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _on(value) -> date | None:
    return value.date() if value else None


@group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and report, change nothing.")
@click.option("--sync", is_flag=True, help="The file is the whole truth for the "
              "municipality-role pairs it holds: positions of those pairs it lacks are ended.")
@click.option("--on", "on", type=_DATE, help="The day positions start and end "
              "(YYYY-MM-DD; default today).")
@pass_app
def import_(app: App, file: Path, dry_run: bool, sync: bool, on) -> None:
    """Import contacts from a CSV file (comma or semicolon; UTF-8 or Windows-1252).

    Columns: email,name,municipality,role[,county,areas] or the Swedish
    E-post;Namn;Kommun;Roll[;Län;Områden]. Bad rows are reported with their line number and the
    rest imported; addresses that unsubscribed, bounced or were erased are never re-subscribed.
    Problems go to stderr; the exit status is 1 when rows were rejected (the rest imported).

    With --sync (e.g. the yearly list of every member's kommunchef) a position of a pair the
    file holds, held by someone the file does not list for it, ends (never deleted); the
    positions started and ended are listed. Run it with --dry-run first.

    Example: newsletter contacts import kommunchefer-2027.csv --sync --dry-run
    """
    with app.transaction(dry_run=dry_run) as session:
        report = import_contacts(session, app.settings, file, sync=sync, on=_on(on))
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
        words = {"added": _("Added {email}"), "updated": _("Updated {email}"),
                 "unchanged": _("Unchanged: {email}")}
        click.echo(words[outcome].format(email=person.email))
        warning = smtputf8_warning(person.email)
    if warning:
        click.echo(_("Warning: {reason}").format(reason=warning), err=True)


def _sorted_positions(positions: list[Position]) -> list[Position]:
    """Municipal positions by municipality, then the association's own (municipality NULL)."""
    return sorted(positions, key=lambda p: (
        p.municipality is None, p.municipality.name if p.municipality else "", p.role,
        p.started_on))


def _positions(person: Person) -> str:
    return ", ".join(f"{p.role}@{p.municipality.name}" if p.municipality else p.role
                     for p in _sorted_positions(person.positions_on()))


def _print_changes(changes: list[Change]) -> None:
    for c in changes:
        text = (_("Starts {on}: {role}, {place}: {email} ({name})") if c.kind == "started"
                else _("Ends {on}: {role}, {place}: {email} ({name})"))
        click.echo(text.format(on=c.on.isoformat(), role=c.role, place=c.place,
                               email=c.email, name=c.name or "-"))


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
    click.echo(ngettext("{n} contact", "{n} contacts", len(people)).format(n=len(people)),
               err=True)


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
        click.echo(_("Email:       {email}").format(email=p.email))
        click.echo(_("Name:        {name}").format(name=p.name))
        if d.suppression:
            click.echo(_("Status:      {status} (suppressed: {reason})").format(
                status=labels.contact_status(p.status), reason=d.suppression))
        else:
            click.echo(_("Status:      {status}").format(status=labels.contact_status(p.status)))
        if not p.subscribed:
            click.echo(_("Newsletter:  no (a contact only for the webinars registered for)"))
        today = date.today()
        for pos in _sorted_positions(p.positions):
            where = f"{pos.municipality.name} ({pos.municipality.county})" \
                if pos.municipality else _("the association")
            role = app.settings.roles.get(pos.role, pos.role)
            if pos.holds_on(today):
                click.echo(_("Role:        {role}, {place}, since {start}").format(
                    role=role, place=where, start=pos.started_on.isoformat()))
            elif pos.started_on > today:
                click.echo(_("Coming:      {role}, {place}, from {start}").format(
                    role=role, place=where, start=pos.started_on.isoformat()))
            else:
                click.echo(_("Earlier:     {role}, {place}, {start} – {end}").format(
                    role=role, place=where, start=pos.started_on.isoformat(),
                    end=pos.ended_on.isoformat()))
        if len(d.areas) == len(app.settings.areas):
            click.echo(_("Areas:       all"))
        else:
            click.echo(_("Areas:       {areas}").format(areas=", ".join(d.areas)))
        click.echo(_("Lawful basis: {basis} (source: {source}, {at:%Y-%m-%d %H:%M} UTC)").format(
            basis=labels.lawful_basis(p.lawful_basis), source=p.basis_source or "-", at=p.basis_at))
        for c in consents_of(session, p.id):
            click.echo(_("Consent:     {purpose}, {page}, sent {given:%Y-%m-%d %H:%M} UTC, "
                         "confirmed {confirmed:%Y-%m-%d %H:%M} UTC, text {version}").format(
                purpose=purpose_label(c.purpose), page=c.page, given=c.given_at,
                confirmed=c.confirmed_at,
                version=c.text.version))
        for c in claims_of(session, p.id):
            if c.decided_at is None:
                click.echo(_("Unverified:  {role}, {place}, declared {day} (verify with "
                             "`newsletter contacts verify {email}`)").format(
                    role=app.settings.roles.get(c.role, c.role),
                    place=c.municipality.name if c.municipality else _("the association"),
                    day=f"{c.claimed_at:%Y-%m-%d}", email=p.email))
        if p.paused_until:
            click.echo(_("Paused until: {day}").format(day=p.paused_until.isoformat()))
        for event in d.events:
            click.echo(f"  {event.at:%Y-%m-%d %H:%M}  {event.kind}  {event.detail or ''}")


@group.command("verify")
@click.argument("email")
@click.option("--reject", is_flag=True, help="The person does not hold the role: they stay "
              "ovrig.")
@click.option("--on", "on", type=_DATE, help="The day the role is held from (YYYY-MM-DD; "
              "default today).")
@pass_app
def verify(app: App, email: str, reject: bool, on) -> None:
    """Verify the roles a person declared when signing up (kommunchef, kso, styrelse: [register]
    verified_roles): the position starts and counts in segments from today. Until then they
    get what an ovrig gets.

    Example: newsletter contacts verify eva@asele.se
    """
    with app.transaction() as session:
        decisions = decide(session, app.settings, email, by="cli", verify=not reject,
                           on=_on(on))
    for d in decisions:
        text = (_("Verified: {email} is {role}, {place}") if d.outcome == "verified"
                else _("Rejected: {email} is not {role}, {place}; stays ovrig"))
        click.echo(text.format(email=d.email, role=app.settings.roles.get(d.role, d.role),
                               place=d.municipality or _("the association")))


@group.command("unverified")
@pass_app
def unverified(app: App) -> None:
    """List the roles people declared when signing up that wait for staff (`contacts verify`).

    Example: newsletter contacts unverified
    """
    with app.transaction() as session:
        claims = pending(session)
        for c in claims:
            click.echo("\t".join((c.person.email, c.person.name or "-",
                                  app.settings.roles.get(c.role, c.role),
                                  c.municipality.name if c.municipality else _("the association"),
                                  f"{c.claimed_at:%Y-%m-%d}")))
    click.echo(ngettext("{n} role waits for verification", "{n} roles wait for verification",
                        len(claims)).format(n=len(claims)), err=True)


@group.command("export")
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--status", type=click.Choice((*PERSON_STATUSES, "all")), default="active",
              show_default=True, help="Which contacts to export.")
@click.option("--semicolon", is_flag=True, help="Separate with ; (what Swedish Excel expects "
              "when the file is double-clicked).")
@click.option("--excel", is_flag=True,
              help=("For Excel on Windows: semicolons, and a byte order mark also on standard "
                     "output, so that å, ä and ö show right (a FILE always has one)."))
@pass_app
def export(app: App, file: str, status: str, semicolon: bool, excel: bool) -> None:
    """Write contacts as CSV (the import's columns, so the file imports back unchanged).

    A FILE is UTF-8 with a byte order mark, which Excel needs for å, ä and ö; standard output
    has one only with --excel. Cells Excel would run as formulas (= + - @ ...) are neutralised;
    a file is written in full, then renamed into place.
    Example: newsletter contacts export kontakter.csv
    Example: newsletter contacts export --excel > kontakter.csv
    """
    with app.transaction() as session:
        rows = export_contacts(session, file, status=None if status == "all" else status,
                               delimiter=";" if semicolon or excel else ",", bom=excel)
    if file != "-":
        click.echo(ngettext("Wrote {n} row to {file}", "Wrote {n} rows to {file}", rows).format(
            n=rows, file=file), err=True)


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
    click.echo({"unsubscribed": _("Unsubscribed {email}"),
                "already": _("{email} was already unsubscribed"),
                "blocked": _("{email} is not in the register; the address is now suppressed.")}
               [outcome].format(email=address))


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
        confirm(_("Erase {email} for good?").format(email=address), abort=True)
    with app.transaction() as session:
        person = find_person(session, address)
        public_id = person.public_id if person is not None else ""
        found = forget(session, app.settings.secret_key, address)
    app.checkpoint()
    for path in forget_previews(app.settings, address, public_id):
        click.echo(_("Deleted {path}: a preview as {email}.").format(path=path, email=address))
    if found:
        click.echo(_("Erased {email}; only a hashed suppression entry is left.").format(
            email=address))
    else:
        click.echo(_("{email} was not in the register; the address is now suppressed.").format(
            email=address))


@group.command("end-role")
@click.argument("email")
@click.option("--role", required=True, help="The role that ends, e.g. kommunchef.")
@click.option("--municipality", default="", help="Where (needed if the person holds the role "
              "in several places).")
@click.option("--on", "on", type=_DATE, help="The first day the person no longer holds it "
              "(YYYY-MM-DD; default today).")
@pass_app
def end_role_(app: App, email: str, role: str, municipality: str, on) -> None:
    """End a position: it stays in the history and no longer counts in segments.

    Someone left with no position stays a subscriber as ovrig of that municipality.

    Example: newsletter contacts end-role anna@asele.example.se --role kommunchef --on 2027-01-01
    """
    with app.transaction() as session:
        changes = end_role(session, app.settings, email, role=role, municipality=municipality,
                           on=_on(on))
    _print_changes(changes.ended + changes.started)


@group.command("hand-over")
@click.option("--role", required=True, help="The role handed over, e.g. kommunchef.")
@click.option("--municipality", required=True, help='Name, "X kommun" or kommunkod.')
@click.option("--to", "to", required=True, metavar="EMAIL", help="The new holder (added as a "
              "contact if new).")
@click.option("--name", default="", help="The new holder's name.")
@click.option("--from", "from_", metavar="EMAIL", help="The holder who leaves, when several "
              "hold the role.")
@click.option("--on", "on", type=_DATE, help="The day of the hand-over (YYYY-MM-DD; default "
              "today).")
@pass_app
def hand_over_(app: App, role: str, municipality: str, to: str, name: str, from_: str | None,
               on) -> None:
    """Hand a role over: the holder's position ends and the new holder's starts the same day.

    The old holder stays a subscriber (with their other positions, or as ovrig).

    Example: newsletter contacts hand-over --role kommunchef --municipality Åsele
    --to eva@asele.example.se --name "Eva Lind" --on 2027-02-01
    """
    with app.transaction() as session:
        changes = hand_over(session, app.settings, role=role, municipality=municipality, to=to,
                            name=name, from_=from_, on=_on(on))
    _print_changes(changes.ended + changes.started)


@group.command("change-email")
@click.argument("old")
@click.argument("new")
@pass_app
def change_email_(app: App, old: str, new: str) -> None:
    """Change a contact's address: the same person, positions, areas and history.

    Refused if the new address is another contact's or on the suppression list.

    Example: newsletter contacts change-email anna@asele.se anna.berg@asele.se
    """
    with app.transaction() as session:
        person = change_email(session, app.settings, old, new)
        click.echo(_("{old} is now {new} ({status})").format(
            old=normalise_email(old), new=person.email, status=person.status))


@group.command("export-person")
@click.argument("email")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="text or json (default: "
              "json for a FILE ending in .json, else text).")
@pass_app
def export_person_(app: App, email: str, file: Path | None, fmt: str | None) -> None:
    """Everything held about one person (GDPR art. 15): positions with dates, areas, lawful
    basis, registrations, events and the mailings they were sent.

    Without FILE the text goes to stdout; a FILE is created readable only by its owner (0600).

    Example: newsletter contacts export-person anna@asele.example.se anna.json
    """
    with app.transaction() as session:
        _record, text = export_person(session, app.settings, email, file, fmt=fmt)
    if file is None:
        click.echo(text, nl=False)
    else:
        click.echo(_("Wrote {file}").format(file=file), err=True)


def register(main: click.Group) -> None:
    main.add_command(group)
