"""`newsletter serve`: the public pages under waitress, a production WSGI server, with the
app's background sender (background.py), which sends what the pages record."""

from __future__ import annotations

import signal

import click
import waitress

from ..i18n import _
from ..web import create_app
from ..web.pages import background_of
from .app import App, pass_app


def _exit_on_sigterm(signum, frame) -> None:
    # systemd stops a service with SIGTERM: leave waitress's loop as Ctrl-C does, so that the
    # background sender below gets to finish the messages in flight.
    raise SystemExit(0)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface, e.g. behind a proxy).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port to listen on.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Worker threads.")
@pass_app
def serve(app: App, host: str, port: int, threads: int) -> None:
    """Serve the public pages: unsubscribe, preferences, webinar registration and the archive.

    Runs under waitress until stopped (Ctrl-C or SIGTERM). Put a TLS-terminating proxy in front
    and point organisation.base_url in newsletter.toml at it. A background thread sends the
    confirmations the pages record and retries those the relay deferred; at exit it finishes
    the messages in flight (at most 10 seconds).

    Example: newsletter serve --host 127.0.0.1 --port 8000
    """
    wsgi = create_app(app.settings)
    background = background_of(wsgi)
    if background.config_error is not None:
        click.echo(_("Warning: no mail can be sent until this is fixed, and registrations are "
                     "refused meanwhile: {reason}").format(reason=background.config_error),
                   err=True)
    click.echo(_("Serving {site} on http://{host}:{port}/ (stop with Ctrl-C)").format(
        site=app.settings.organisation.base_url, host=host, port=port))
    proxy = app.settings.tracking.trusted_proxy
    # Behind a reverse proxy, its X-Forwarded-For names the client (for the click filter).
    behind = ({"trusted_proxy": proxy, "trusted_proxy_count": 1,
               "trusted_proxy_headers": {"x-forwarded-for"}} if proxy else {})
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    background.start()
    try:
        waitress.serve(wsgi, host=host, port=port, threads=threads, ident="newsletter",
                       clear_untrusted_proxy_headers=True, **behind)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not background.stop():
            click.echo(_("The background sender did not finish in time: the messages it was "
                         "sending are sent again by the next sender."), err=True)


def register(main: click.Group) -> None:
    main.add_command(serve)
