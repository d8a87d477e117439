"""The iCalendar files: parsed back with icalendar, times right across the summer-time changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from newsletter import ical
from newsletter.models import Person, Webinar
from newsletter.settings import load_settings

from .helpers import REPO

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def settings():
    return load_settings(REPO, env={"NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production"})


def _webinar(start_utc: datetime, **extra) -> Webinar:
    values = {"slug": "bredband", "uid": "0f3c-test@example.se",
              "title": "Bredband på landsbygden", "starts_at": start_utc, "duration_minutes": 90,
              "join_url": "https://teams.example.se/l/meetup-join/abc",
              "description": "Hur **Åsele** och Dorotea byggde ut fibern; frågor, svar.",
              "sequence": 0, "status": "scheduled"}
    values.update(extra)
    return Webinar(**values)


def _event(text: str):
    cal = Calendar.from_ical(text)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def _local_to_utc_by_vtimezone(cal: Calendar, local: datetime) -> datetime:
    """Convert LOCAL with the VTIMEZONE in the file itself (not the system's zone database)."""
    tz = cal.walk("VTIMEZONE")[0].to_tz(lookup_tzid=False)
    return local.replace(tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize("local, expected_utc", [
    (datetime(2026, 3, 27, 10, 0), datetime(2026, 3, 27, 9, 0)),    # before summer time
    (datetime(2026, 3, 30, 10, 0), datetime(2026, 3, 30, 8, 0)),    # after the spring change
    (datetime(2026, 10, 23, 10, 0), datetime(2026, 10, 23, 8, 0)),  # still summer time
    (datetime(2026, 10, 26, 10, 0), datetime(2026, 10, 26, 9, 0)),  # after the autumn change
])
def test_times_are_right_on_both_sides_of_the_clock_changes(settings, local, expected_utc):
    start = local.replace(tzinfo=STOCKHOLM).astimezone(UTC)
    assert start == expected_utc.replace(tzinfo=UTC)
    cal, event = _event(ical.webinar_calendar(settings, _webinar(start), method="PUBLISH"))
    dtstart = event.decoded("DTSTART")
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert dtstart.replace(tzinfo=None) == local
    assert dtstart.astimezone(UTC) == expected_utc.replace(tzinfo=UTC)
    assert event.decoded("DTEND") - dtstart == timedelta(minutes=90)
    # The VTIMEZONE in the file gives the same instant as the zone database.
    assert _local_to_utc_by_vtimezone(cal, local) == expected_utc.replace(tzinfo=UTC)


def test_vtimezone_carries_the_eu_summer_time_rules(settings):
    start = datetime(2026, 12, 10, 13, 0, tzinfo=UTC)
    cal, _ = _event(ical.webinar_calendar(settings, _webinar(start), method="PUBLISH"))
    vtz = cal.walk("VTIMEZONE")[0]
    assert vtz["TZID"] == "Europe/Stockholm"
    daylight, standard = vtz.walk("DAYLIGHT")[0], vtz.walk("STANDARD")[0]
    assert daylight["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
    assert standard["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"
    assert daylight.decoded("DTSTART").time().hour == 2  # 02:00 CET becomes 03:00 CEST
    assert standard.decoded("DTSTART").time().hour == 3  # 03:00 CEST becomes 02:00 CET
    # Every hour over three years converts as the zone database says.
    tz = vtz.to_tz(lookup_tzid=False)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment < datetime(2028, 1, 1, tzinfo=UTC):
        assert moment.astimezone(tz).utcoffset() == moment.astimezone(STOCKHOLM).utcoffset()
        moment += timedelta(hours=1)


def test_zones_with_other_rules_still_convert_right():
    for name in ("America/New_York", "Australia/Sydney", "Asia/Tokyo", "Europe/London"):
        zone = ZoneInfo(name)
        tz = ical.vtimezone(zone, 2026).to_tz(lookup_tzid=False)
        moment = datetime(2025, 6, 1, tzinfo=UTC)
        while moment < datetime(2027, 6, 1, tzinfo=UTC):
            assert moment.astimezone(tz).utcoffset() == moment.astimezone(zone).utcoffset(), name
            moment += timedelta(hours=3)


def test_request_names_organizer_and_attendee_for_outlook_and_google(settings):
    person = Person(email="anna.oberg@example.se", name="Anna Öberg, Åsele kommun")
    stamp = datetime(2026, 11, 30, 9, 15, tzinfo=ZoneInfo("Europe/Stockholm"))
    text = ical.webinar_calendar(settings, _webinar(datetime(2026, 12, 10, 13, 0, tzinfo=UTC)),
                                 method="REQUEST", attendee=person, stamp=stamp)
    cal, event = _event(text)
    assert cal["METHOD"] == "REQUEST"
    assert event["UID"] == "0f3c-test@example.se"
    assert str(event["ORGANIZER"]) == "mailto:nyhetsbrev@example.se"
    assert event["ORGANIZER"].params["CN"] == settings.organisation.name
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:anna.oberg@example.se"
    assert attendee.params["CN"] == "Anna Öberg, Åsele kommun"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert attendee.params["RSVP"] == "FALSE"
    assert event["LOCATION"] == "https://teams.example.se/l/meetup-join/abc"
    assert event["STATUS"] == "CONFIRMED"
    # DTSTAMP is written in UTC whatever zone it was given in.
    assert "DTSTAMP:20261130T081500Z" in text
    assert "Åsele" in event["DESCRIPTION"] and "frågor, svar" in event["DESCRIPTION"]
    # Text, not Markdown: a calendar shows the description as it is.
    assert event["DESCRIPTION"] == ("Hur Åsele och Dorotea byggde ut fibern; frågor, svar.\n\n"
                                    "Delta: https://teams.example.se/l/meetup-join/abc")
    assert all(len(line.encode("utf-8")) <= 75 for line in text.split("\r\n"))


def test_publish_has_no_attendee_and_links_the_registration_page(settings):
    text = ical.webinar_calendar(settings, _webinar(datetime(2026, 12, 10, 13, 0, tzinfo=UTC)),
                                 method="PUBLISH",
                                 registration_url="https://nyhetsbrev.example.se/webinar/bredband")
    cal, event = _event(text)
    assert cal["METHOD"] == "PUBLISH"
    assert "ATTENDEE" not in event
    assert event["URL"] == "https://nyhetsbrev.example.se/webinar/bredband"
    assert "join" not in text  # the join link is for those registered


def test_cancel_keeps_uid_and_marks_cancelled(settings):
    person = Person(email="per@example.se", name="")
    webinar = _webinar(datetime(2026, 12, 10, 13, 0, tzinfo=UTC), sequence=2, status="cancelled")
    cal, event = _event(ical.webinar_calendar(settings, webinar, method="CANCEL",
                                              attendee=person))
    assert cal["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert event["UID"] == "0f3c-test@example.se"
    assert "CN" not in event["ATTENDEE"].params


def test_personal_methods_need_an_attendee(settings):
    with pytest.raises(ValueError):
        ical.webinar_calendar(settings, _webinar(datetime(2026, 12, 10, 13, tzinfo=UTC)),
                              method="REQUEST")


def test_attachment_method_matches_the_file(settings):
    text = ical.webinar_calendar(settings, _webinar(datetime(2026, 12, 10, 13, tzinfo=UTC)),
                                 method="PUBLISH")
    part = ical.attachment(text, "PUBLISH", "webinar.ics")
    assert part["content_type"] == "text/calendar; method=PUBLISH; charset=UTF-8"
    assert Calendar.from_ical(part["data"])["METHOD"] == "PUBLISH"
