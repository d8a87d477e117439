"""Webinars through the real CLI and a real aiosmtpd: registrations, waiting list, messages."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from newsletter import sender, webinars
from newsletter.models import Mailing, MailingVariant, OutboxRow, Person, Webinar
from newsletter.transports import from_settings

from .helpers import future_start, new_webinar, past_webinar

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Kommunchefer of member municipalities, a kommunchef of a non-member, a politician.
PEOPLE = [
    ("anna.oberg@example.se", "Anna Öberg", "Åsele", "kommunchef"),
    ("bengt.lind@example.se", "Bengt Lind", "Dorotea", "kommunchef"),
    ("cecilia.sjo@example.se", "Cecilia Sjö", "Storuman", "kommunchef"),
    ("david.ahl@example.se", "David Åhl", "Sorsele", "kommunchef"),
    ("erik.nilsson@example.se", "Erik Nilsson", "Malmö", "kommunchef"),
    ("fatima.berg@example.se", "Fatima Berg", "Åsele", "politiker"),
]
KOMMUNCHEFER = [p[0] for p in PEOPLE[:4]]


def seed(site) -> None:
    site.cli("municipalities", "members", "Åsele", "Dorotea", "Storuman", "Sorsele")
    for address, name, municipality, role in PEOPLE:
        site.cli("contacts", "add", address, "--name", name, "--municipality", municipality,
                 "--role", role)


def smtp_env(server) -> dict:
    return {"NEWSLETTER_TRANSPORT": server.url}


def calendars(message: EmailMessage) -> list[tuple[str, Calendar, str]]:
    """(the part's content type, the parsed calendar, its raw text) of each calendar part."""
    found = []
    for part in message.walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            raw = part.get_content()
            raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            found.append((part, Calendar.from_ical(raw), raw))
    return found


def check_invite(message: EmailMessage) -> tuple[str, object]:
    """Validate every calendar file of MESSAGE; return (METHOD, the VEVENT)."""
    methods, event = set(), None
    for part, cal, raw in calendars(message):
        method = str(cal["METHOD"])
        if part.get_content_type() == "text/calendar":
            assert part.get_param("method") == method  # the MIME part says what the file says
        assert cal.walk("VTIMEZONE") and cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/Stockholm"
        (event,) = cal.walk("VEVENT")
        assert event.decoded("DTSTAMP").utcoffset() == timedelta(0)
        assert any(line.startswith("DTSTAMP:") and line.endswith("Z")
                   for line in raw.splitlines())
        assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
        methods.add(method)
    assert len(methods) == 1, methods
    return methods.pop(), event


def by_recipient(server) -> dict[str, list[EmailMessage]]:
    out: dict[str, list[EmailMessage]] = {}
    for received, message in zip(server.messages, server.parsed(), strict=True):
        for rcpt in received.rcpt_tos:
            out.setdefault(rcpt.lower(), []).append(message)
    return out


def subjects(server, address: str) -> list[str]:
    return [str(m["Subject"]).split(":")[0] for m in by_recipient(server).get(address, [])]


# --- the whole story, as it is judged ----------------------------------------------------------

def test_announce_register_move_remind_unregister_cancel_on_a_real_smtp_server(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start(), "--capacity", "2")
    anna, bengt, cecilia, david = KOMMUNCHEFER

    site.cli("webinar", "announce", "bredband", "--to", "kommunchefer", "--yes", env=env)
    site.cli("webinar", "announce", "bredband", "--to", "kommunchefer", "--yes", env=env)
    assert smtp_server.copies() == Counter({a: 1 for a in KOMMUNCHEFER})
    announcement = by_recipient(smtp_server)[anna][0]
    assert announcement.defects == [] and check_invite(announcement)[0] == "PUBLISH"
    (ics_part,) = [p for p in announcement.walk() if p.get_content_type() == "text/calendar"]
    assert ics_part.get_content_disposition() == "attachment"
    assert ics_part.get_filename() == "webinar.ics"
    assert "ATTENDEE" not in check_invite(announcement)[1]
    assert "https://nyhetsbrev.example.se/webinar/bredband" in (
        announcement.get_body(("plain",)).get_content())
    uid = str(check_invite(announcement)[1]["UID"])

    assert "Anmäld" in site.cli("webinar", "register", "bredband", anna, env=env).stdout
    site.cli("webinar", "register", "bredband", bengt, env=env)
    waiting = site.cli("webinar", "register", "bredband", cecilia, env=env).stdout
    assert "Väntelista, nummer 1" in waiting
    assert "Redan anmäld" in site.cli("webinar", "register", "bredband", anna, env=env).stdout
    confirmation = by_recipient(smtp_server)[anna][1]
    method, event = check_invite(confirmation)
    assert method == "REQUEST" and str(event["UID"]) == uid and event["SEQUENCE"] == 0
    assert str(event["ATTENDEE"]) == f"mailto:{anna}"
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert str(event["ORGANIZER"]) == "mailto:nyhetsbrev@example.se"
    assert calendars(by_recipient(smtp_server)[cecilia][1]) == []  # the waiting list: no invite

    moved = future_start(hour=15)
    site.cli("webinar", "edit", "bredband", "--start", moved, env=env)
    update = by_recipient(smtp_server)[bengt][-1]
    method, event = check_invite(update)
    assert method == "REQUEST" and str(event["UID"]) == uid and event["SEQUENCE"] == 1
    assert event.decoded("DTSTART").replace(tzinfo=None) == datetime.fromisoformat(moved)
    assert event.decoded("DTSTART").astimezone(UTC) == (
        datetime.fromisoformat(moved).replace(tzinfo=STOCKHOLM).astimezone(UTC))

    for when in ("day", "day", "hour", "hour"):  # weeks ahead: by hand it needs --force
        site.cli("webinar", "remind", "bredband", "--when", when, "--force", env=env)

    out = site.cli("webinar", "unregister", "bredband", anna, env=env).stdout
    assert "Cecilia Sjö" in out  # the first on the waiting list got the place
    method, event = check_invite(by_recipient(smtp_server)[anna][-1])
    assert method == "CANCEL" and str(event["UID"]) == uid
    method, event = check_invite(by_recipient(smtp_server)[cecilia][-1])
    assert method == "REQUEST" and event["SEQUENCE"] == 1
    assert str(event["ATTENDEE"]) == f"mailto:{cecilia}"

    assert "Väntelista" in site.cli("webinar", "register", "bredband", david, env=env).stdout
    site.cli("webinar", "cancel", "bredband", env=env)
    site.cli("webinar", "cancel", "bredband", env=env)
    assert calendars(by_recipient(smtp_server)[david][-1]) == []
    for address in (bengt, cecilia):
        method, event = check_invite(by_recipient(smtp_server)[address][-1])
        assert (method, str(event["STATUS"]), event["SEQUENCE"]) == ("CANCEL", "CANCELLED", 2)
        assert str(event["UID"]) == uid

    assert subjects(smtp_server, anna) == [
        "Inbjudan", "Bekräftelse", "Ändrat", "Påminnelse", "Påminnelse", "Avanmäld"]
    assert subjects(smtp_server, bengt) == [
        "Inbjudan", "Bekräftelse", "Ändrat", "Påminnelse", "Påminnelse", "Inställt"]
    assert subjects(smtp_server, cecilia) == [
        "Inbjudan", "Väntelista", "Bekräftelse", "Inställt"]
    assert subjects(smtp_server, david) == ["Inbjudan", "Väntelista", "Inställt"]
    assert smtp_server.copies() == Counter({anna: 6, bengt: 6, cecilia: 4, david: 3})
    for message in smtp_server.parsed():
        assert message.defects == []
        if calendars(message):
            check_invite(message)


# --- reminders -------------------------------------------------------------------------------

def test_a_reminder_reaches_each_registered_person_once_and_resumes(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start(), "--capacity", "2")
    for address in KOMMUNCHEFER[:3]:  # two registered, one on the waiting list
        site.cli("webinar", "register", "bredband", address, env=env)
    before = smtp_server.copies()
    # A remind whose mailing was made but never sent (the process died): the next run sends it.
    with site.transaction() as session:
        webinars.remind(session, site.settings, "bredband", "day", force=True)
    site.cli("webinar", "remind", "bredband", "--force", env=env)
    site.cli("webinar", "remind", "bredband", "--force", env=env)
    reminders = smtp_server.copies() - before
    assert reminders == Counter({KOMMUNCHEFER[0]: 1, KOMMUNCHEFER[1]: 1})


def test_a_reminder_after_the_start_is_refused(site):
    seed(site)
    past_webinar(site, "2026-03-30 10:00")
    result = site.cli("webinar", "remind", "bredband", ok=False)
    assert result.exit_code == 1 and "har redan börjat" in result.stderr


# --- registration and the waiting list -------------------------------------------------------

def test_waiting_list_goes_in_order_and_more_places_promote(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start(), "--capacity", "1")
    for address in KOMMUNCHEFER:
        site.cli("webinar", "register", "bredband", address, env=env)
    show = site.cli("webinar", "show", "bredband").stdout
    assert "anmälda:     1" in show and "väntelista:  3" in show
    assert show.index("Bengt Lind") < show.index("Cecilia Sjö") < show.index("David Åhl")

    out = site.cli("webinar", "edit", "bredband", "--capacity", "3", env=env).stdout
    assert "Bengt Lind" in out and "Cecilia Sjö" in out and "David Åhl" not in out
    for address in KOMMUNCHEFER[1:3]:
        assert check_invite(by_recipient(smtp_server)[address][-1])[0] == "REQUEST"
    assert subjects(smtp_server, KOMMUNCHEFER[3]) == ["Väntelista"]
    # A title change moves nothing in calendars: no message, SEQUENCE kept.
    site.cli("webinar", "edit", "bredband", "--title", "Fiber på landsbygden", env=env)
    with site.transaction() as session:
        assert webinars.get_webinar(session, "bredband").sequence == 0
    assert sum(smtp_server.copies().values()) == 6


def test_unregister_and_register_again_is_a_new_round(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start())
    anna = KOMMUNCHEFER[0]
    site.cli("webinar", "register", "bredband", anna, env=env)
    site.cli("webinar", "unregister", "bredband", anna, env=env)
    assert "var inte anmäld" in site.cli("webinar", "unregister", "bredband", anna,
                                         env=env).stdout
    site.cli("webinar", "register", "bredband", anna, env=env)
    assert subjects(smtp_server, anna) == ["Bekräftelse", "Avanmäld", "Bekräftelse"]
    assert [check_invite(m)[0] for m in by_recipient(smtp_server)[anna]] == [
        "REQUEST", "CANCEL", "REQUEST"]


def test_web_page_registration_uses_the_same_core_function(site, smtp_server):
    seed(site)
    new_webinar(site, future_start())
    with site.transaction() as session:
        webinar = webinars.get_webinar(session, "bredband")
        person = webinars.find_person(session, KOMMUNCHEFER[1])
        outcome = webinars.register(session, site.settings, webinar, person)
    assert outcome.status == "registered" and len(outcome.mailings) == 1
    reports = sender.deliver(site.settings, site.sessions(), outcome.mailings,
                             transport=from_settings(site.settings, smtp_server.url))
    assert reports[0].sent == 1
    assert smtp_server.copies() == Counter({KOMMUNCHEFER[1]: 1})


@pytest.mark.parametrize("address, code, words", [
    ("nobody@example.se", 1, "ingen kontakt"),
    ("inte-en-adress", 1, "ogiltig e-postadress"),
])
def test_register_refuses_unknown_people_in_one_line(site, address, code, words):
    seed(site)
    new_webinar(site, future_start())
    result = site.cli("webinar", "register", "bredband", address, ok=False)
    assert result.exit_code == code and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_unsubscribed_people_and_cancelled_webinars_take_no_registrations(site):
    seed(site)
    new_webinar(site, future_start())
    site.cli("contacts", "unsubscribe", KOMMUNCHEFER[0])
    result = site.cli("webinar", "register", "bredband", KOMMUNCHEFER[0], ok=False)
    assert result.exit_code == 1 and "är avregistrerad och kan inte anmälas" in result.stderr
    site.cli("webinar", "cancel", "bredband")
    result = site.cli("webinar", "register", "bredband", KOMMUNCHEFER[1], ok=False)
    assert result.exit_code == 1 and "är inställt" in result.stderr


# --- follow-up ---------------------------------------------------------------------------------

def test_followup_goes_once_to_those_registered(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start(), "--capacity", "1")
    site.cli("webinar", "register", "bredband", KOMMUNCHEFER[0], env=env)
    site.cli("webinar", "register", "bredband", KOMMUNCHEFER[1], env=env)  # waiting list
    before = smtp_server.copies()
    for _ in range(2):
        site.cli("webinar", "followup", "bredband", "--recording",
                 "https://play.example.se/bredband", env=env)
    assert smtp_server.copies() - before == Counter({KOMMUNCHEFER[0]: 1})
    last = by_recipient(smtp_server)[KOMMUNCHEFER[0]][-1]
    assert "https://play.example.se/bredband" in last.get_body(("plain",)).get_content()


# --- creating and listing ----------------------------------------------------------------------

@pytest.mark.parametrize("local, utc_hour", [
    ("2026-03-27 10:00", 9), ("2026-03-30 10:00", 8),
    ("2026-10-23 10:00", 8), ("2026-10-26 10:00", 9),
])
def test_start_is_read_in_stockholm_time_on_both_sides_of_the_clock_changes(site, local,
                                                                               utc_hour):
    past_webinar(site, local)
    with site.transaction() as session:
        starts_at = webinars.get_webinar(session, "bredband").starts_at
    assert starts_at == datetime.fromisoformat(local).replace(hour=utc_hour, tzinfo=UTC)


@pytest.mark.parametrize("local, utc_hour", [("2026-03-30 10:00", 8), ("2026-10-26 10:00", 9),
                                             ("2026-03-27 10:00", 9), ("2026-10-23 10:00", 8)])
def test_sent_invites_are_right_across_the_clock_changes(site, smtp_server, local, utc_hour):
    """Past dates, so the clock is set back for the registration (the core takes `now`)."""
    seed(site)
    past_webinar(site, local)
    with site.transaction() as session:
        outcome = webinars.register(session, site.settings, "bredband", KOMMUNCHEFER[0],
                                    now=datetime(2026, 1, 15, tzinfo=UTC))
    sender.deliver(site.settings, site.sessions(), outcome.mailings,
                   transport=from_settings(site.settings, smtp_server.url))
    (message,) = smtp_server.parsed()
    method, event = check_invite(message)
    start = event.decoded("DTSTART")
    assert method == "REQUEST" and start.replace(tzinfo=None) == datetime.fromisoformat(local)
    assert start.astimezone(UTC).hour == utc_hour
    (_, cal, _) = calendars(message)[0]
    own_zone = cal.walk("VTIMEZONE")[0].to_tz(lookup_tzid=False)
    in_file = datetime.fromisoformat(local).replace(tzinfo=own_zone).astimezone(UTC)
    assert in_file.hour == utc_hour


def test_new_list_show_and_a_description_file(site, tmp_path):
    text = tmp_path / "beskrivning.md"
    text.write_text("Vi går igenom **bredbandsstödet** 2027.\n", encoding="utf-8")
    first_start, second_start = future_start(10), future_start(45)
    site.cli("webinar", "new", "--title", "Bredband på landsbygden", "--start", first_start,
             "--join-url", "https://teams.example.se/l/x", "--description", str(text))
    site.cli("webinar", "new", "--title", "Bredband på landsbygden", "--start", second_start,
             "--join-url", "https://teams.example.se/l/y", "--capacity", "40")
    second_slug = f"bredband-pa-landsbygden-{second_start[:10]}"
    header, rule, *listing = site.cli("webinar", "list").stdout.splitlines()
    assert header.split() == ["Kortnamn", "Start", "Status", "Anmälda", "Väntelista", "Rubrik"]
    assert set(rule) == {"-", " "} and len(listing) == 2
    assert listing[0].split() == ["bredband-pa-landsbygden", first_start[:10], "kl.",
                                  first_start[11:].replace(":", "."), "planerat", "0", "0",
                                  "Bredband", "på", "landsbygden"]
    assert listing[1].startswith(second_slug + " ") and " 0/40 " in listing[1]
    assert listing[1].endswith("Bredband på landsbygden")
    with site.transaction() as session:
        first = webinars.get_webinar(session, "bredband-pa-landsbygden")
        second = webinars.get_webinar(session, second_slug)
        assert first.description == "Vi går igenom **bredbandsstödet** 2027."
        assert first.uid != second.uid and first.uid.endswith("@example.se")
    show = site.cli("webinar", "show", "bredband-pa-landsbygden").stdout
    assert "/webinar/bredband-pa-landsbygden" in show and "obegränsat" in show


@pytest.mark.parametrize("args, words", [
    (("--start", "2026-03-29 02:30"), "finns inte i"),
    (("--start", "10/12 14:00"), "är ingen starttid"),
    (("--area", "fiske"), "okänt område"),
    (("--join-url", "teams"), "är inte en http(s)-URL"),
    (("--capacity", "0"), "minst 1"),
    (("--slug", "Bredband På"), "är inget kortnamn"),
    (("--start", "2026-03-30 10:00"), "starttiden 2026-03-30 kl. 10.00 har redan passerat"),
])
def test_new_refuses_bad_input_in_one_line(site, args, words):
    base = {"--title": "Bredband", "--start": future_start(),
            "--join-url": "https://teams.example.se/l/x"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for pair in base.items() for x in pair]
    result = site.cli("webinar", "new", *flat, ok=False)
    assert result.exit_code == 1, result.output
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_webinar_names_the_known_ones(site):
    new_webinar(site, future_start())
    result = site.cli("webinar", "show", "fiber", ok=False)
    assert result.exit_code == 1 and "bredband" in result.stderr


def test_dry_run_changes_and_sends_nothing(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start())
    out = site.cli("webinar", "announce", "bredband", "--to", "kommunchefer", "--dry-run",
                   env=env).stdout
    assert "4 mottagare" in out
    site.cli("webinar", "register", "bredband", KOMMUNCHEFER[0], "--dry-run", env=env)
    site.cli("webinar", "edit", "bredband", "--start", future_start(hour=9), "--dry-run", env=env)
    assert smtp_server.messages == []
    with site.transaction() as session:
        assert session.scalar(select(Mailing.id)) is None
        assert webinars.counts(session, webinars.get_webinar(session, "bredband")).registered == 0


# --- the webinar block -----------------------------------------------------------------

def test_upcoming_lists_scheduled_future_webinars_soonest_first(site):
    for slug, start in (("c", future_start(60)), ("a", future_start(10)), ("b", future_start(20)),
                        ("d", future_start(90))):
        new_webinar(site, start, slug=slug)
    past_webinar(site, "2026-03-30 10:00", slug="old")
    site.cli("webinar", "cancel", "b")
    with site.transaction() as session:
        found = webinars.upcoming(session, site.settings)
        assert [w.url.rsplit("/", 1)[1] for w in found] == ["a", "c", "d"]
        assert found[0].title == "Bredband på landsbygden" and found[0].duration_minutes == 60
        assert found[0].url == "https://nyhetsbrev.example.se/webinar/a"
        later = webinars.upcoming(session, site.settings,
                                  now=datetime.now(UTC) + timedelta(days=70), limit=5)
        assert [w.url.rsplit("/", 1)[1] for w in later] == ["d"]


def test_personal_invites_render_the_html_once(site):
    seed(site)
    new_webinar(site, future_start())
    with site.transaction() as session:
        for address in KOMMUNCHEFER:
            webinars.register(session, site.settings, "bredband", address)
        webinars.edit_webinar(session, site.settings, "bredband",
                              starts_at=webinars.parse_start(site.settings, future_start(hour=10)))
        mailing = session.scalar(select(Mailing).where(Mailing.source == "bredband:update:1"))
        variants = mailing.variants
        assert len(variants) == 4 and len({v.html for v in variants}) == 1
        assert len({v.attachments[0]["data"] for v in variants}) == 4
        keys = set(session.scalars(select(OutboxRow.variant_key)
                                   .where(OutboxRow.mailing_id == mailing.id)))
        assert keys == {v.key for v in variants}
        assert session.scalar(select(Webinar.sequence)) == 1


def test_forget_erases_the_personal_invites_frozen_for_that_person(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start())
    anna, bengt = KOMMUNCHEFER[:2]
    for address in (anna, bengt):
        site.cli("webinar", "register", "bredband", address, env=env)
    site.cli("webinar", "edit", "bredband", "--start", future_start(hour=10), env=env)
    site.cli("contacts", "forget", anna, "--yes")
    with site.transaction() as session:
        frozen = [v.html + v.text + repr(v.attachments) for v in session.scalars(
            select(MailingVariant))]
    assert frozen and not any(anna in text or "Öberg" in text for text in frozen)
    assert any(bengt in text for text in frozen)  # the others' invites are kept


def test_a_paused_person_still_gets_what_they_registered_for(site, smtp_server):
    seed(site)
    env = smtp_env(smtp_server)
    new_webinar(site, future_start())
    anna, bengt = KOMMUNCHEFER[:2]
    with site.transaction() as session:
        person = session.scalar(select(Person).where(Person.email == anna))
        person.paused_until = date.today() + timedelta(days=90)
    site.cli("webinar", "announce", "bredband", "--to", "kommunchefer", "--yes", env=env)
    for address in (anna, bengt):
        site.cli("webinar", "register", "bredband", address, env=env)
    site.cli("webinar", "remind", "bredband", "--force", env=env)
    subjects: dict[str, list[str]] = {}
    for received, message in zip(smtp_server.messages, smtp_server.parsed(), strict=True):
        subjects.setdefault(received.rcpt_tos[0], []).append(str(message["Subject"]))
    # The announcement is the newsletter's: held back by the pause. The confirmation and the
    # reminder answer Anna's own registration: they reach her.
    assert len(subjects[bengt]) == 3
    assert len(subjects[anna]) == 2
    assert sorted(subjects[anna]) == sorted(s for s in subjects[bengt] if s in subjects[anna])
