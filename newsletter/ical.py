"""iCalendar files for webinars (RFC 5545 objects, RFC 5546 methods), made with `icalendar`.

Named ical.py, not calendar.py, so that it never shadows the standard library's `calendar`.

Choices, and why:
- One UID per webinar, kept for its whole life, so that the announcement (PUBLISH), the personal
  invite (REQUEST), every update (REQUEST, SEQUENCE raised) and the cancellation (CANCEL) all act
  on the same calendar entry.
- The announcement goes to a whole segment, most of whom have not registered: it is METHOD:PUBLISH
  ("here is an event, add it if you like"), without attendees. A REQUEST would be a meeting
  invitation to people who are not on its attendee list: Outlook warns about that, Google does not
  add it, and an "Accept" would answer our mailbox without registering anyone.
  Outlook imports PUBLISH from an attached .ics file but not from an inline text/calendar part
  ([MS-STANOICAL] 2.2.99), so it travels as an attachment (Content-Disposition: attachment).
- The personal invite is METHOD:REQUEST with ORGANIZER = the organisation's mailbox (CN = its
  name) and ATTENDEE = the person, PARTSTAT=ACCEPTED (they registered) and RSVP=FALSE: Exchange
  sets ResponseRequested to FALSE when no attendee has RSVP=TRUE, so Outlook/Microsoft 365 put the
  event in the calendar without asking the person to send an answer to a mailbox nobody reads.
- VTIMEZONE is derived from the zoneinfo database: yearly RRULEs (BYMONTH, BYDAY=-1SU ...) as
  Outlook itself writes them, verified against zoneinfo for the years around the event; a zone
  whose rules do not fit that shape gets icalendar's RDATE-based Timezone.from_tzid instead.
"""

from __future__ import annotations

import calendar as _stdcal
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress
from icalendar.prop import vRecur

from . import markdown
from .dates import zone
from .i18n import _
from .models import Webinar
from .settings import Settings

PRODID = "-//newsletter//webinar//SV"
METHODS = ("PUBLISH", "REQUEST", "CANCEL")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class Attendee(Protocol):
    """Whom a personal invite is for: a models.Person, or anything with these two."""

    email: str
    name: str


def _transitions(tz: ZoneInfo, year: int) -> list[tuple[datetime, timedelta, timedelta, bool]]:
    """Offset changes in YEAR: (instant in UTC, offset before, offset after, DST after)."""
    found = []
    start = datetime(year, 1, 1, tzinfo=UTC)
    previous = start.astimezone(tz).utcoffset()
    for day in range(1, 367):
        moment = start + timedelta(days=day)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            low, high = int((moment - timedelta(days=1)).timestamp()), int(moment.timestamp())
            while high - low > 1:  # the first second of the new offset
                mid = (low + high) // 2
                if datetime.fromtimestamp(mid, tz).utcoffset() == previous:
                    low = mid
                else:
                    high = mid
            instant = datetime.fromtimestamp(high, UTC)
            found.append((instant, previous, offset, bool(instant.astimezone(tz).dst())))
            previous = offset
    return [t for t in found if t[0].year == year]


def _rule(local: datetime) -> tuple[int, int, int]:
    """(month, weekday, n) for a local date: n-th weekday of the month, -1 for the last."""
    last_day = _stdcal.monthrange(local.year, local.month)[1]
    n = -1 if local.day + 7 > last_day else (local.day - 1) // 7 + 1
    return local.month, local.weekday(), n


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> int:
    days = [d for d in range(1, _stdcal.monthrange(year, month)[1] + 1)
            if date(year, month, d).weekday() == weekday]
    return days[n - 1] if n > 0 else days[-1]


def _rdate_zone(tz: ZoneInfo, year: int) -> Timezone:
    return Timezone.from_tzid(tz.key, first_date=date(year - 1, 1, 1),
                              last_date=date(year + 2, 1, 1))


def _rules_hold(rules: list, transitions: list) -> bool:
    """Whether the yearly RULES (made from one year) give exactly TRANSITIONS (of another)."""
    if len(transitions) != len(rules):
        return False
    for (instant, before, after, _dst), (local, r_before, r_after, _d, _n, (m, wd, n)) in zip(
            transitions, rules, strict=True):
        when = (instant + before).replace(tzinfo=None)
        if (before, after) != (r_before, r_after) or (when.month, when.time()) != (
                m, local.time()) or when.day != _nth_weekday(when.year, m, wd, n):
            return False
    return True


def vtimezone(tz: ZoneInfo, year: int) -> Timezone:
    """A VTIMEZONE for TZ with its DST rules, right from the year before YEAR to the year after."""
    years = [_transitions(tz, y) for y in (year - 1, year, year + 1)]
    if not any(years):
        return _fixed_zone(tz, year)
    rules = []
    for instant, before, after, dst in years[0]:
        local = (instant + before).replace(tzinfo=None)  # DTSTART is in the offset before
        rules.append((local, before, after, dst, instant.astimezone(tz).tzname(), _rule(local)))
    if not all(_rules_hold(rules, transitions) for transitions in years):
        return _rdate_zone(tz, year)
    vtz = Timezone()
    vtz.add("tzid", tz.key)
    for local, before, after, dst, name, (month, weekday, n) in rules:
        part = TimezoneDaylight() if dst else TimezoneStandard()
        part.add("dtstart", local)
        part.add("rrule", vRecur(freq="YEARLY", bymonth=month, byday=f"{n}{_DAYS[weekday]}"))
        part.add("tzname", name)
        part.add("tzoffsetfrom", before)
        part.add("tzoffsetto", after)
        vtz.add_component(part)
    return vtz


def _fixed_zone(tz: ZoneInfo, year: int) -> Timezone:
    moment = datetime(year, 1, 1, tzinfo=UTC).astimezone(tz)
    vtz = Timezone()
    vtz.add("tzid", tz.key)
    part = TimezoneStandard()
    part.add("dtstart", datetime(1970, 1, 1))
    part.add("tzname", moment.tzname())
    part.add("tzoffsetfrom", moment.utcoffset())
    part.add("tzoffsetto", moment.utcoffset())
    vtz.add_component(part)
    return vtz


def webinar_calendar(settings: Settings, webinar: Webinar, *, method: str,
                     attendee: Attendee | None = None, stamp: datetime | None = None,
                     registration_url: str | None = None) -> str:
    """The iCalendar text (CRLF lines) of WEBINAR for METHOD (PUBLISH, REQUEST or CANCEL).

    PUBLISH is the announcement: no attendee, the registration page as URL. REQUEST and CANCEL
    are personal: ATTENDEE is the person, LOCATION and URL the join link. STAMP (DTSTAMP) is
    written in UTC; it defaults to now.
    """
    if method not in METHODS:
        raise ValueError(f"unknown iCalendar method {method!r}")
    if method != "PUBLISH" and attendee is None:
        raise ValueError(f"METHOD:{method} needs an attendee")
    tz = zone(settings)
    start = webinar.starts_at.astimezone(tz)
    org = settings.organisation

    event = Event()
    event.add("uid", webinar.uid)
    event.add("sequence", webinar.sequence)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=webinar.duration_minutes))
    event.add("summary", webinar.title)
    organizer = vCalAddress(f"mailto:{org.sender}")
    organizer.params["CN"] = org.name
    event.add("organizer", organizer)
    if method == "PUBLISH":
        event.add("location", _("Online"))
        if registration_url:
            event.add("url", registration_url)
        event.add("description", _description(webinar, _("Register: {url}").format(
            url=registration_url) if registration_url else ""))
    else:
        event.add("location", webinar.join_url)
        event.add("url", webinar.join_url)
        event.add("description", _description(webinar, _("Join: {url}").format(
            url=webinar.join_url)))
        event.add("attendee", _attendee(attendee))
    cancelled = method == "CANCEL" or webinar.status == "cancelled"
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PUBLIC")

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    cal.add_component(vtimezone(tz, start.year))
    cal.add_component(event)
    return cal.to_ical().decode("utf-8")


def attachment(ics_text: str, method: str, filename: str = "invite.ics") -> dict:
    """An attachment for the send engine; the part's method= is the METHOD inside the file."""
    return {"filename": filename,
            "content_type": f"text/calendar; method={method}; charset=UTF-8",
            "data": ics_text}


def calendar_attachments(ics_text: str, method: str = "REQUEST") -> list[dict]:
    """An iTIP invite as Outlook and Gmail read it: a text/calendar alternative with the
    method, plus the same file as an invite.ics attachment for clients that look only there."""
    return [
        {"content_type": f"text/calendar; method={method}; charset=UTF-8", "data": ics_text,
         "alternative": True},
        {"content_type": "application/ics", "filename": "invite.ics", "data": ics_text},
    ]


def _attendee(person: Attendee) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = person.name
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = "ACCEPTED"
    address.params["RSVP"] = "FALSE"
    return address


def _description(webinar: Webinar, link_line: str) -> str:
    """The event's DESCRIPTION: plain text (calendars show it as it is, so the description's
    Markdown is written as text: no asterisks, links as "label (URL)"), then LINK_LINE."""
    parts = [markdown.to_text(webinar.description or "").strip(), link_line]
    return "\n\n".join(p for p in parts if p)
