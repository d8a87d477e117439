"""What every page shares: the request's settings and database session, the page frame,
the error page, the Swedish date filters the templates use, and the app's background sender
(`send_later`: a request never sends mail itself)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, g, render_template, request
from sqlalchemy.orm import Session, sessionmaker

from .. import branding, dates, media
from ..background import BackgroundSender
from ..i18n import _
from ..settings import Settings

# Our own pages: no script at all, styles only from our stylesheet.
PAGE_CSP = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")
HTTP_TEXTS = {
    400: ("Felaktig begäran", "Formuläret kunde inte tas emot. Gå tillbaka och försök igen."),
    403: ("Förbjuden begäran", ("Formuläret skickades från en annan webbplats och har inte "
                                "tagits emot. Öppna länken i ditt e-postmeddelande och försök "
                                "igen.")),
    404: ("Sidan finns inte", ("Länken är felaktig eller gäller inte längre. Kontrollera att "
                               "hela länken från e-postmeddelandet kom med.")),
    405: ("Metoden stöds inte", "Den här sidan kan inte användas så."),
    409: ("Det går inte här", ("Adressen kan inte läggas till igen via webben. Kontakta oss "
                               "så hjälper vi dig.")),
    413: ("För stor begäran", "Det som skickades var för stort."),
    500: ("Något gick fel", "Ett fel uppstod hos oss. Försök igen om en stund."),
}


@dataclass
class WebContext:
    """What every request needs: the settings and a way to open database sessions."""

    settings: Settings
    sessions: sessionmaker[Session]
    writers: sessionmaker[Session]  # for POSTs: they read, then write (see db.writer)
    background: BackgroundSender  # sends what the requests recorded


def web_context() -> WebContext:
    return current_app.extensions["newsletter"]


def background_of(app: Flask) -> BackgroundSender:
    """APP's background sender: `newsletter serve` starts and stops it, tests wait for it."""
    return app.extensions["newsletter"].background


def check_sending() -> None:
    """Raise the configuration error that keeps this site from sending mail, if any: a page
    about to record mail calls it first, so that it answers 500 and records nothing."""
    web_context().background.check()


def send_later(mailing_ids: list[int] | tuple[int, ...] = ()) -> None:
    """Send MAILING_IDS (created and committed by this request) in the background; with none,
    wake the background tasks (e.g. a sign-up was recorded). Returns at once, never raises."""
    web_context().background.submit(mailing_ids)


def session() -> Session:
    """The request's database session, committed when the request succeeds."""
    if "db" not in g:
        context = web_context()
        g.db = (context.writers if request.method == "POST" else context.sessions)()
        g.db.begin()
    return g.db


def local_now() -> datetime:
    return datetime.now(ZoneInfo(web_context().settings.organisation.timezone))


def swedish_date(value: date) -> str:
    """'3 mars 2026' (dates.py: one way everywhere, in the site's language)."""
    return dates.day(value)


def swedish_datetime(value: datetime) -> str:
    """E.g. "tisdag 3 mars 2026 kl. 10.00" in the organisation's time zone."""
    return dates.moment(value, dates.zone(web_context().settings))


def swedish_time(value: datetime) -> str:
    """'10.00': the end of a span after swedish_datetime."""
    return dates.clock(value, dates.zone(web_context().settings))


def swedish_month(month: str) -> str:
    """'2026-03' -> 'mars 2026'."""
    return dates.month(month)


def page(template: str, status: int = 200, **context) -> Response:
    """Render templates/web/TEMPLATE with the organisation and the logo in the context."""
    settings = web_context().settings
    brand = branding.current(settings)  # as saved now, perhaps in the console after the start
    logo = media.logo(settings, brand)
    if logo is not None:  # from this site's own /media/, which the pages' CSP allows
        logo = replace(logo, url=media.URL_PREFIX + brand.logo)
    body = render_template(f"web/{template}", org=settings.organisation, logo=logo,
                           brand=brand.colour, **context)
    return Response(body, status=status, mimetype="text/html")


def error_page(status: int) -> Response:
    """The one page for each error status: the same body whatever caused it."""
    if status == 429:  # a sign-up form's client limit (web/signup.py)
        return page("error.html", status=status, title=_("Too many attempts"),
                    text=_("Too many sign-ups came from your network in a short time. Wait "
                           "an hour and try again, or write to us."))
    title, text = HTTP_TEXTS.get(status, HTTP_TEXTS[500 if status >= 500 else 400])
    return page("error.html", status=status, title=title, text=text)
