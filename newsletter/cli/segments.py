"""`newsletter segments`: named segments and ad-hoc segment expressions, counted and sampled."""

from __future__ import annotations

import click

from ..errors import ConfigError, NewsletterError
from ..i18n import _, ngettext
from ..models import Person
from ..segments import count, named_segment, sample
from .app import App, pass_app

SAMPLE_SIZE = 5


@click.group("segments")
def group() -> None:
    """Segments: who a mailing reaches, e.g. "role:kommunchef and member".

    Fields: role, municipality, kommunkod, county, member, area, language, registered;
    combine with and, or, not and parentheses; quote values with spaces: county:"Jämtlands län".
    """


def _positions(person: Person) -> str:
    parts = []
    for position in person.positions_on():
        place = position.municipality.name if position.municipality else _("the association")
        parts.append(f"{place}: {position.role}")
    return "; ".join(parts) or "-"


def _print_sample(people: list[Person], reach: int) -> None:
    if not people:
        return
    click.echo(_("Examples ({n} of {reach}):").format(n=len(people), reach=reach))
    for person in people:
        click.echo(f"  {person.email:<36} {person.name or '-':<28} {_positions(person)}")


@group.command("list")
@pass_app
def list_(app: App) -> None:
    """List the named segments of newsletter.toml with their expression and how many they reach.

    Example: newsletter segments list
    """
    broken: list[str] = []
    with app.transaction() as session:
        for name, expr in app.settings.segments.items():
            try:
                reach = str(count(session, app.settings, expr))
            except NewsletterError as exc:
                reach = _("ERROR")
                broken.append(f"{name}: {exc}")
            click.echo(f"{name:<20} {reach:>7}  {expr}")
    if broken:
        raise ConfigError(_("newsletter.toml [segments] {problem}").format(problem=broken[0]))


@group.command("show")
@click.argument("name")
@pass_app
def show(app: App, name: str) -> None:
    """Show a named segment: its expression, how many it reaches and a few of them.

    Example: newsletter segments show kommunchefer
    """
    expr = named_segment(app.settings, name)
    with app.transaction() as session:
        reach = count(session, app.settings, expr)
        people = sample(session, app.settings, expr, SAMPLE_SIZE)
        click.echo(f"{name} = {expr}")
        click.echo(ngettext("{n} recipient", "{n} recipients", reach).format(n=reach))
        _print_sample(people, reach)


@group.command("count")
@click.argument("expr", nargs=-1, required=True)
@pass_app
def count_(app: App, expr: tuple[str, ...]) -> None:
    """Count the recipients of a segment expression (or a named segment) and show a few.

    Quote the expression for the shell. Example:
    newsletter segments count 'role:kommunchef and county:"Jämtlands län"'
    """
    text = " ".join(expr)
    with app.transaction() as session:
        reach = count(session, app.settings, text)
        people = sample(session, app.settings, text, SAMPLE_SIZE)
        click.echo(ngettext("{n} recipient", "{n} recipients", reach).format(n=reach))
        _print_sample(people, reach)


def register(main: click.Group) -> None:
    main.add_command(group)
