"""`newsletter doctor`: the checklist before a site goes live."""

from __future__ import annotations

import click

from .. import doctor as checklist
from ..i18n import _
from .app import App, pass_app


@click.command()
@click.option("--dns-server", metavar="HOST[:PORT]", envvar="NEWSLETTER_DNS_SERVER",
              help="Ask this DNS resolver instead of the system's (also NEWSLETTER_DNS_SERVER).")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True,
              help="Seconds each network check may take.")
@pass_app
def doctor(app: App, dns_server: str | None, timeout: float) -> None:
    """Check that the site is ready to send real mail, one line each: ✓ or ✗ and what to do.

    Settings (valid, not the demo's), the database (reachable, current, made with this secret
    key), the worker's heartbeat, the transport (connect, EHLO, STARTTLS, AUTH, MAIL FROM;
    nothing is sent), the sender domain's SPF, DKIM and DMARC records, and the public pages
    (HTTPS with a valid certificate; the RFC 8058 one-click unsubscribe POST). Exit status 0
    when every check passes, 1 when one fails, 78 when the settings cannot be read.

    Example: newsletter doctor --dns-server 192.0.2.53
    """
    failed = total = 0
    for check in checklist.checks(app.settings, dns_server=dns_server, timeout=timeout):
        total += 1
        click.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            if check.fix:
                click.echo(f"    → {check.fix}")
    if failed:
        click.echo(_("{failed} of {total} checks failed.").format(failed=failed, total=total))
        raise SystemExit(1)
    click.echo(_("All {total} checks passed.").format(total=total))


def register(main: click.Group) -> None:
    main.add_command(doctor)
