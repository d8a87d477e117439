"""The public web pages: `create_app(settings)` builds the Flask app.

Personal pages (unsubscribe, preferences) sit behind signed tokens; the archive and webinar
registration are public. No page sets a cookie; forms carry a signed token (see csrf.py). This
module assembles the app; what the pages share is in pages.py.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request, send_file
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from .. import branding, db, i18n, signups
from ..background import BackgroundSender, Schedule
from ..errors import ConfigError, NewsletterError
from ..settings import Settings
from . import archive, clicks, media, personal, signup, webinar, withdraw
from .pages import (
    PAGE_CSP,
    WebContext,
    error_page,
    swedish_date,
    swedish_datetime,
    swedish_month,
    swedish_time,
    web_context,
)

# Strict-Transport-Security when the base URL is https: browsers use https only, for a year.
HSTS_SECONDS = 365 * 24 * 3600


def _end_request(exc: BaseException | None) -> None:
    db_session = g.pop("db", None)
    if db_session is None:
        return
    try:
        if exc is None and db_session.in_transaction():
            db_session.commit()
        else:
            db_session.rollback()
    finally:
        db_session.close()


def refuse_nul() -> None:
    """A NUL character is in no address, token or form value of ours, and PostgreSQL refuses to
    store or even compare one (a 500): such a path is a 404, such a form a 400. A before_request
    hook of both apps, the public one and the staff console."""
    if "\x00" in request.path:
        raise NotFound()
    for values in (request.args, request.form):
        if any("\x00" in key or any("\x00" in v for v in values.getlist(key)) for key in values):
            raise BadRequest()


def _commit_before_response(response: Response) -> Response:
    # Commit here, not at teardown, so that a commit failure becomes a 500, not a lie.
    db_session = g.get("db")
    if db_session is not None and response.status_code < 400:
        db_session.commit()
    return response


def _security_headers(response: Response) -> Response:
    headers = response.headers
    if web_context().settings.organisation.base_url.startswith("https:"):
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    headers.setdefault("Cache-Control", "no-store")
    return response


def _canonical_redirect(response: Response) -> Response:
    """A redirect Werkzeug made itself (/arkiv -> /arkiv/) points at the configured base URL,
    never at the Host the request claimed: behind a proxy that is an internal name, and from a
    hostile client any name at all."""
    location = response.headers.get("Location", "")
    root = request.root_url
    if response.status_code in (301, 302, 303, 307, 308) and location.startswith(root):
        base = web_context().settings.organisation.base_url.rstrip("/")
        response.headers["Location"] = f"{base}/{location[len(root):]}"
    return response


def _handle_http(exc: HTTPException) -> Response:
    response = error_page(exc.code or 500)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _handle_newsletter_error(exc: NewsletterError) -> Response:
    if exc.http_status >= 500:  # a configuration error: the operator's to fix, so logged
        current_app.logger.error("%s %s: %s", request.method, request.path, exc)
    return error_page(exc.http_status)


def _handle_unexpected(exc: Exception) -> Response:
    current_app.logger.exception("unexpected error")
    return error_page(500)


def _stylesheet() -> Response:
    for folder in web_context().settings.templates_dirs:
        path = folder / "web" / "site.css"
        if path.is_file():
            response = send_file(path, mimetype="text/css", max_age=3600)
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response
    raise NotFound()


def _brand_stylesheet() -> Response:
    """/static/brand.css: the [branding] colour over site.css (after it in the page), so that a
    site's own site.css need not repeat it; and the logo's badge in the header."""
    colour = branding.current(web_context().settings).colour
    dark = "#" + "".join(f"{round(int(colour[i:i + 2], 16) * 0.75):02x}" for i in (1, 3, 5))
    css = (f"/* [branding] colour = \"{colour}\" (newsletter.toml or branding.toml) */\n"
           f".site-header {{ background: {colour}; }}\n"
           f"a {{ color: {colour}; }}\na:hover {{ color: {dark}; }}\n"
           f"button {{ background: {colour}; }}\nbutton:hover {{ background: {dark}; }}\n"
           f"button.secondary {{ color: {colour}; border-color: {colour}; }}\n"
           f"input {{ accent-color: {colour}; }}\n"
           ".site-logo { background: #fff; padding: 4px; border-radius: 4px; height: 2.5rem; "
           "width: auto; vertical-align: middle; margin-right: 0.5rem; }\n")
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def create_app(settings: Settings, *, schedule: Schedule | None = None) -> Flask:
    """The public pages of the site SETTINGS describes, on its (already initialised) database.

    The app owns a background sender (background.py; SCHEDULE: when it works), started by the
    first request that records mail or by `newsletter serve`; `pages.background_of(app)`.
    A transport that is misconfigured does not stop the pages: those that would record mail
    answer 500 (`pages.check_sending`), unsubscribes and the archive go on working.
    """
    if not settings.secret_key:
        raise ConfigError(i18n._("NEWSLETTER_SECRET_KEY is not set and there is no "
                                 ".secret_key: run `newsletter init` or set "
                                 "NEWSLETTER_SECRET_KEY"))
    engine = db.make_engine(settings.db_url)
    db.require_current(engine, settings.secret_key)

    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, MAX_FORM_MEMORY_SIZE=64 * 1024,
                      TRAP_HTTP_EXCEPTIONS=False)
    sessions, writers = db.session_factory(engine), db.session_factory(db.writer(engine))
    background = BackgroundSender(settings, sessions, writers, tasks=[signups.handle_pending],
                                  schedule=schedule, logger=app.logger)
    app.extensions["newsletter"] = WebContext(settings, sessions, writers, background)
    app.jinja_loader = ChoiceLoader([FileSystemLoader([str(d) for d in settings.templates_dirs])])
    i18n.activate(settings.organisation.language)
    i18n.install(app.jinja_env)
    app.jinja_env.filters.update(swedish_date=swedish_date, swedish_datetime=swedish_datetime,
                                 swedish_month=swedish_month, swedish_time=swedish_time)

    app.register_blueprint(personal.blueprint)
    app.register_blueprint(media.blueprint)
    app.register_blueprint(clicks.blueprint)
    clicks.install(app)
    app.register_blueprint(archive.blueprint)
    app.register_blueprint(webinar.blueprint)
    app.register_blueprint(signup.blueprint)
    app.register_blueprint(withdraw.blueprint)
    app.add_url_rule("/static/site.css", "stylesheet", _stylesheet)
    app.add_url_rule("/static/brand.css", "brand_stylesheet", _brand_stylesheet)
    app.add_url_rule("/", "home", lambda: archive.index())

    app.before_request(refuse_nul)
    app.after_request(_commit_before_response)
    app.after_request(_security_headers)
    app.after_request(_canonical_redirect)
    app.teardown_request(_end_request)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(NewsletterError, _handle_newsletter_error)
    app.register_error_handler(Exception, _handle_unexpected)
    return app
