"""The staff console: `create_app(settings)` builds a Flask app separate from the public pages.

It never shares a port, a cookie or a session with `newsletter serve` (newsletter/web/), so an
operator can publish the public pages and keep the console on the internal network. It is built
as if that network were hostile all the same: every route declares who may use it (access.py),
sessions are server-side, every POST carries a CSRF token tied to its session, and the pages run
no script but our own (a strict Content-Security-Policy). One blueprint per page.

No request waits on another server: what must be mailed (test copies) or fetched (the feeds)
is recorded and left to the app's background sender (background.py), one thread per process,
started by the first request that needs it or by `newsletter console`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, current_app, g, request, send_file
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException, NotFound

from .. import db, i18n, labels
from ..background import BackgroundSender, Schedule
from ..errors import ConfigError, NewsletterError
from ..i18n import _
from ..settings import Settings
from ..web import refuse_nul
from . import (
    access,
    branding_pages,
    compose,
    contacts_pages,
    dashboard,
    inbox_pages,
    items,
    mailings_pages,
    media_view,
    preview,
    review_pages,
    signin_pages,
    staff_pages,
    statistics_pages,
    webinar_pages,
)
from .context import ConsoleContext, swedish_date, swedish_datetime, swedish_month, utc_now
from .context import page as render_page
from .mailer import LinkMailer
from .oidc import OidcClient

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
# Rendered emails shown in the preview's sandboxed iframes: inline styles, no script at all.
FRAME_CSP = ("default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}


def _status_text(status: int) -> tuple[str, str]:
    texts = {
        400: (_("Bad request"), _("The form could not be accepted. Go back and try again.")),
        401: (_("Not signed in"), _("Sign in first.")),
        403: (_("Not allowed"), _("You may not do this, or the form came from another page. "
                                  "Go back, reload the page and try again.")),
        404: (_("Not found"), _("There is no such page.")),
        405: (_("Not allowed"), _("This page cannot be used like that.")),
        409: (_("Changed meanwhile"), _("Someone changed this in the meantime.")),
        413: (_("Too large"), _("What was sent is too large.")),
        429: (_("Too many attempts"), _("Wait a while and try again.")),
    }
    return texts.get(status, (_("Something went wrong"), _("Try again in a while.")))


def error_page(status: int, message: str | None = None) -> Response:
    title, text = _status_text(status)
    return render_page("error.html", status=status, title=title, text=message or text)


def _handle_http(exc: HTTPException) -> Response:
    response = error_page(exc.code or 500)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _handle_newsletter_error(exc: NewsletterError) -> Response:
    return error_page(exc.http_status, str(exc))


def _handle_unexpected(exc: Exception) -> Response:
    current_app.logger.exception("unexpected error")
    return error_page(500)


def _end_request(exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is None:
        return
    try:
        if exc is None and session.in_transaction():
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


def _commit_before_response(response: Response) -> Response:
    # Commit here, not at teardown, so that a failed commit becomes a 500, not a lie.
    session = g.get("db")
    if session is not None:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
    return response


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    headers.setdefault("Cache-Control", "no-store")
    if request.scheme == "https" or current_app.config["CONSOLE_SECURE"]:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


@access.public
def asset(name: str) -> Response:
    """templates/console/NAME (site first, then the package): the stylesheet and script."""
    if name not in ASSETS:
        raise NotFound()
    for folder in current_app.extensions["newsletter-console"].settings.templates_dirs:
        path = folder / "console" / name
        if path.is_file():
            response = send_file(path, mimetype=ASSETS[name], max_age=300)
            response.headers["Cache-Control"] = "private, max-age=300"
            return response
    raise NotFound()


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None,
               schedule: Schedule | None = None) -> Flask:
    """The staff console of the site SETTINGS describes, on its (already initialised) database.

    CLOCK: the time source for sessions, links and rate limits (tests pass their own).
    SCHEDULE: when the background sender works (`context.background_of(app)`).
    """
    if not settings.secret_key:
        raise ConfigError(_("NEWSLETTER_SECRET_KEY is not set and there is no .secret_key: "
                            "run `newsletter init` or set NEWSLETTER_SECRET_KEY"))
    engine = db.make_engine(settings.db_url)
    db.require_current(engine, settings.secret_key)

    app = Flask(__name__, static_folder=None)
    limit = settings.console.max_upload_bytes
    app.config.update(MAX_CONTENT_LENGTH=limit + 256 * 1024, MAX_FORM_MEMORY_SIZE=1024 * 1024,
                      TRAP_HTTP_EXCEPTIONS=False,
                      CONSOLE_SECURE=settings.console.base_url.startswith("https://"))
    sessions, writers = db.session_factory(engine), db.session_factory(db.writer(engine))
    background = BackgroundSender(settings, sessions, writers,
                                  tasks=(inbox_pages.FetchTask(sessions),), schedule=schedule,
                                  logger=app.logger)
    app.extensions["newsletter-console"] = ConsoleContext(
        settings, sessions, writers, clock or utc_now, LinkMailer(settings),
        OidcClient(settings.console) if OidcClient.configured(settings.console) else None,
        background)
    app.jinja_loader = ChoiceLoader([FileSystemLoader([str(d) for d in settings.templates_dirs])])
    i18n.activate(settings.organisation.language)
    i18n.install(app.jinja_env)
    app.jinja_env.globals.update(csrf_token=access.csrf_token, csrf_field=access.CSRF_FIELD)
    app.jinja_env.filters.update(swedish_date=swedish_date, swedish_datetime=swedish_datetime,
                                 swedish_month=swedish_month,
                                 mailing_status=labels.mailing_status)

    for module in (signin_pages, dashboard, compose, items, preview, media_view, staff_pages,
                   contacts_pages):
        app.register_blueprint(module.blueprint)
    for module in (inbox_pages, statistics_pages, review_pages, mailings_pages, webinar_pages,
                   branding_pages):
        app.register_blueprint(module.blueprint)
    app.add_url_rule("/static/<name>", "asset", asset)
    access.check_declared(app)

    app.before_request(refuse_nul)
    app.before_request(access.enforce)
    app.after_request(_commit_before_response)
    app.after_request(access.finish)
    app.after_request(_headers)
    app.teardown_request(_end_request)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(NewsletterError, _handle_newsletter_error)
    app.register_error_handler(Exception, _handle_unexpected)
    return app
