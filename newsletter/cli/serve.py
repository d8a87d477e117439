"""`newsletter serve`: the public pages under waitress, a production WSGI server."""

from __future__ import annotations

import click
import waitress

from ..web import create_app
from .app import App, pass_app


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

    Runs under waitress until stopped (Ctrl-C). Put a TLS-terminating proxy in front and point
    organisation.base_url in newsletter.toml at it.

    Example: newsletter serve --host 127.0.0.1 --port 8000
    """
    wsgi = create_app(app.settings)
    click.echo(f"Serverar {app.settings.organisation.base_url} på http://{host}:{port}/ "
               f"(avsluta med Ctrl-C)")
    proxy = app.settings.tracking.trusted_proxy
    # Behind a reverse proxy, its X-Forwarded-For names the client (for the click filter).
    behind = ({"trusted_proxy": proxy, "trusted_proxy_count": 1,
               "trusted_proxy_headers": {"x-forwarded-for"}} if proxy else {})
    waitress.serve(wsgi, host=host, port=port, threads=threads, ident="newsletter",
                   clear_untrusted_proxy_headers=True, **behind)


def register(main: click.Group) -> None:
    main.add_command(serve)
