"""How dates and times are written: one way everywhere (the emails, the calendar files' text,
the public pages, the console and the command line), in the site's language.

Swedish as Språkrådet writes it: "torsdag 10 december 2026", "kl. 14.00" (a full stop between
hours and minutes, "kl." before), a span "kl. 14.00–15.00" with an en dash. English: "Thursday
10 December 2026", "14:00". The language is the process's (i18n.language()); a moment is shown
in the time zone TZ the caller passes (the organisation's: `zone(settings)`), a date as it is.
Patterns are Babel's (CLDR); a language without its own patterns is written as English.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime

from .errors import ConfigError
from .i18n import _, language, shown
from .settings import Settings

LOCALES = {"sv": "sv_SE", "en": "en_GB"}
# Babel patterns per language: a day, a day with its weekday, a time of day, a month, and the
# short form of a day and time (subjects); THEN joins a day and its time.
PATTERNS = {
    "sv": {"day": "d MMMM y", "weekday": "EEEE d MMMM y", "clock": "HH.mm", "at": "'kl.' HH.mm",
           "month": "LLLL y", "short": "d MMMM 'kl.' HH.mm", "stamp": "y-MM-dd 'kl.' HH.mm",
           "then": " "},
    "en": {"day": "d MMMM y", "weekday": "EEEE d MMMM y", "clock": "HH:mm", "at": "HH:mm",
           "month": "LLLL y", "short": "d MMMM, HH:mm", "stamp": "y-MM-dd HH:mm", "then": ", "},
}


def zone(settings: Settings) -> ZoneInfo:
    """The organisation's time zone (organisation.timezone, Europe/Stockholm by default)."""
    try:
        return ZoneInfo(settings.organisation.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(_("newsletter.toml: organisation.timezone “{zone}” is not a known "
                            "time zone").format(zone=shown(settings.organisation.timezone))
                          ) from None


def _lang() -> str:
    return language() if language() in PATTERNS else "en"


def _pattern(name: str) -> str:
    return PATTERNS[_lang()][name]


def _locale() -> str:
    return LOCALES.get(_lang(), "en_GB")


def _local(moment: datetime, tz: tzinfo | None) -> datetime:
    return moment.astimezone(tz) if tz is not None else moment


def _format(moment: datetime, pattern: str, tz: tzinfo | None) -> str:
    local = _local(moment, tz)
    return format_datetime(local, pattern, tzinfo=local.tzinfo, locale=_locale())


def day(value: date | datetime, tz: tzinfo | None = None) -> str:
    """'10 december 2026'."""
    if isinstance(value, datetime):
        value = _local(value, tz).date()
    return format_date(value, _pattern("day"), locale=_locale())


def weekday(value: date | datetime, tz: tzinfo | None = None) -> str:
    """'torsdag 10 december 2026'."""
    if isinstance(value, datetime):
        value = _local(value, tz).date()
    return format_date(value, _pattern("weekday"), locale=_locale())


def clock(moment: datetime, tz: tzinfo | None = None) -> str:
    """'14.00': the time of day alone (after "kl." the caller wrote, or in a span)."""
    return _format(moment, _pattern("clock"), tz)


def at(moment: datetime, tz: tzinfo | None = None) -> str:
    """'kl. 14.00'."""
    return _format(moment, _pattern("at"), tz)


def moment(value: datetime, tz: tzinfo | None = None, *, with_weekday: bool = True) -> str:
    """'torsdag 10 december 2026 kl. 14.00' (without the weekday: '10 december 2026 kl. 14.00')."""
    first = weekday(value, tz) if with_weekday else day(value, tz)
    return f"{first}{_pattern('then')}{at(value, tz)}"


def span(start: datetime, end: datetime, tz: tzinfo | None = None) -> str:
    """'torsdag 10 december 2026 kl. 14.00–15.00' (an end on another day is written whole)."""
    if _local(start, tz).date() != _local(end, tz).date():
        return f"{moment(start, tz)}–{moment(end, tz)}"
    return f"{moment(start, tz)}–{clock(end, tz)}"


def short(value: datetime, tz: tzinfo | None = None) -> str:
    """'10 december kl. 14.00': a day and time in a subject line."""
    return _format(value, _pattern("short"), tz)


def stamp(value: datetime, tz: tzinfo | None = None) -> str:
    """'2026-12-10 kl. 14.00': a compact moment for tables (sorts as text)."""
    return _format(value, _pattern("stamp"), tz)


def month(value: str | date) -> str:
    """'december 2026' of 'YYYY-MM' or a date."""
    if isinstance(value, str):
        year, mon = (int(part) for part in value.split("-"))
        value = date(year, mon, 1)
    return format_date(value, _pattern("month"), locale=_locale())
