"""The public URLs that messages carry and the web app serves. One place, so both agree."""

from __future__ import annotations

from .models import Person
from .settings import Settings
from .signing import make_token

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
REGISTRATION = "webinar-registration"


def _base(settings: Settings) -> str:
    return settings.organisation.base_url.rstrip("/")


def unsubscribe_url(settings: Settings, person: Person) -> str:
    """The personal unsubscribe page; also the RFC 8058 one-click POST target. Never expires."""
    return f"{_base(settings)}/u/{make_token(settings.secret_key, UNSUBSCRIBE, person.public_id)}"


def preferences_url(settings: Settings, person: Person) -> str:
    return f"{_base(settings)}/p/{make_token(settings.secret_key, PREFERENCES, person.public_id)}"


def archive_url(settings: Settings, month: str | None = None) -> str:
    """The archive, or one issue's web version ("view in browser"): never personal."""
    return f"{_base(settings)}/arkiv/{month}" if month else f"{_base(settings)}/arkiv/"


def feed_url(settings: Settings) -> str:
    return f"{_base(settings)}/arkiv/feed.atom"


def webinar_url(settings: Settings, slug: str) -> str:
    """The public registration page of a webinar."""
    return f"{_base(settings)}/webinar/{slug}"


CONFIRM = "signup"


def signup_url(settings: Settings) -> str:
    """The public sign-up page."""
    return f"{_base(settings)}/prenumerera"


def confirm_url(settings: Settings, signup_public_id: str) -> str:
    """The link in a sign-up's confirmation mail: works once, for `[register] confirm_days`
    (signups.py keeps the sign-up; the token only names it)."""
    token = make_token(settings.secret_key, CONFIRM, signup_public_id)
    return f"{_base(settings)}/prenumerera/bekrafta/{token}"


def registration_token(settings: Settings, person: Person) -> str:
    """The token that names PERSON on their webinar registrations' pages. Never expires."""
    return make_token(settings.secret_key, REGISTRATION, person.public_id)


def registration_url(settings: Settings, slug: str, token: str) -> str:
    """The page where the person of TOKEN cancels their registration for webinar SLUG
    (`/webinar/SLUG/avanmal/TOKEN`: it asks, and a POST cancels). TOKEN is
    `registration_token(...)`, or the placeholder a message carries until it is sent."""
    return f"{_base(settings)}/webinar/{slug}/avanmal/{token}"
