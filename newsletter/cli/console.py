"""`newsletter console` and `newsletter staff`: the staff console and who may sign in to it."""

from __future__ import annotations

import signal

import click

from .. import signin, staff
from ..errors import NotFound
from ..i18n import _, ngettext
from ..models import STAFF_ROLES
from .app import App, pass_app


def _exit_on_sigterm(signum, frame) -> None:
    # systemd stops a service with SIGTERM: leave waitress's loop as Ctrl-C does, so that the
    # background sender gets to finish the messages in flight.
    raise SystemExit(0)


@click.command("console")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep it on the internal network).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port to listen on (never the port of `newsletter serve`).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Worker threads.")
@pass_app
def console(app: App, host: str, port: int, threads: int) -> None:
    """Serve the staff console: compose, check and preview the issue in a browser.

    A separate app from `newsletter serve`, with its own port, cookie and sessions, so that the
    public pages can face the internet while the console stays inside. Staff sign in with the
    identity provider ([console] oidc_issuer) or a one-time link by email. Set console.base_url
    (or NEWSLETTER_CONSOLE_URL) to the address staff use. A background thread sends the test
    copies staff ask for and fetches the feeds when they ask; at exit it finishes the messages
    in flight (at most 10 seconds).

    Example: newsletter console --host 127.0.0.1 --port 8001
    """
    import waitress  # only this command serves

    from ..console import create_app  # flask: only for this command
    from ..console.context import background_of  # the same: it imports flask

    wsgi = create_app(app.settings)
    background = background_of(wsgi)
    if background.config_error is not None:
        click.echo(_("Warning: no mail can be sent until this is fixed, and test sends are "
                     "refused meanwhile: {reason}").format(reason=background.config_error),
                   err=True)
    click.echo(_("Staff console {url} on http://{host}:{port}/ (stop with Ctrl-C)").format(
        url=app.settings.console.base_url, host=host, port=port))
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    background.start()
    try:
        waitress.serve(wsgi, host=host, port=port, threads=threads, ident="newsletter-console",
                       clear_untrusted_proxy_headers=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not background.stop():
            click.echo(_("The background sender did not finish in time: the messages it was "
                         "sending are sent again by the next sender."), err=True)


@click.group("staff")
def staff_group() -> None:
    """Staff accounts of the console: redaktor, granskare or admin."""


@staff_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The person's name.")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES),
              help="redaktor composes; granskare also approves and sends; admin also manages "
                   "staff.")
@pass_app
def staff_add(app: App, email: str, name: str, role: str) -> None:
    """Add a staff member (or change the name and role of one).

    Example: newsletter staff add eva.ek@example.se --name "Eva Ek" --role redaktor
    """
    with app.transaction() as session:
        member = staff.add_staff(session, email, name=name, role=role)
        click.echo(_("{email}: {role}").format(email=member.email,
                                               role=staff.role_label(member.role)))


@staff_group.command("list")
@pass_app
def staff_list(app: App) -> None:
    """List the staff members with their roles and last sign-in.

    Example: newsletter staff list
    """
    with app.transaction() as session:
        members = staff.list_staff(session)
        for member in members:
            seen = (member.last_sign_in_at.strftime("%Y-%m-%d %H:%M UTC")
                    if member.last_sign_in_at else "-")
            click.echo(f"{member.email}\t{member.name}\t{member.role}\t{seen}")
        click.echo(ngettext("{n} staff member.", "{n} staff members.", len(members))
                   .format(n=len(members)))


@staff_group.command("remove")
@click.argument("email")
@pass_app
def staff_remove(app: App, email: str) -> None:
    """Remove a staff member; their sessions and sign-in links end at once.

    Example: newsletter staff remove eva.ek@example.se
    """
    with app.transaction() as session:
        staff.remove_staff(session, email)
    click.echo(_("Removed {email}.").format(email=email))


@staff_group.command("login-link")
@click.argument("email")
@pass_app
def staff_login_link(app: App, email: str) -> None:
    """Print a one-time sign-in URL for the console (valid 15 minutes, usable once).

    Example: newsletter staff login-link eva.ek@example.se
    """
    settings = app.settings
    with app.transaction() as session:
        member = staff.find_staff(session, email)
        if member is None:
            raise NotFound(_("no staff member {email} (newsletter staff add)").format(
                email=email))
        token = signin.issue_link_token(session, settings, member)
    click.echo(signin.link_url(settings, token))


def register(main: click.Group) -> None:
    main.add_command(console)
    main.add_command(staff_group)
