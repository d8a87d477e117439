"""Webinars: scheduling, registrations and the waiting list, and which messages they cause.

Every message goes through the send engine as a mailing of kind "webinar" whose source says what
it is, so that running a command again resumes it and never sends anyone a second copy:

| source | to | calendar file |
|---|---|---|
| `SLUG:announce` | the segment given | PUBLISH, the same for everyone |
| `SLUG:confirm:PUBLIC_ID:SEQUENCE:N` | one person, registered | REQUEST, personal |
| `SLUG:waitlist:PUBLIC_ID:N` | one person, on the waiting list | none |
| `SLUG:withdrawn:PUBLIC_ID:N` | one person, who unregistered | CANCEL, personal |
| `SLUG:update:SEQUENCE` | `registered:SLUG` | REQUEST, personal |
| `SLUG:cancel:SEQUENCE` | `registered:SLUG` | CANCEL, personal |
| `SLUG:cancel:PUBLIC_ID:N` | one person on the waiting list of a cancelled webinar | none |
| `SLUG:remind-day`, `SLUG:remind-hour` | `registered:SLUG` | none |
| `SLUG:followup` | `registered:SLUG` | none |

N is the registration's round (its created_at, as a Unix time): one who unregisters and registers
again gets a new confirmation, and nobody gets the same one twice.

The state change and the mailings it causes (kinds/webinar.py says what they say) are made in the
caller's transaction; each command returns the ids of those mailings in `Outcome.mailings`, and
the caller sends them after its commit (`sender.deliver`). Run again after a crash (kill -9 in
the middle of a send), a command completes what it had created: the repeatable ones (announce,
remind, follow-up, register) find their mailing again, and those whose change is already made
(edit, cancel, unregister) return the unfinished mailings of their kind in `Outcome.resumed`
(updates and confirmations; cancellations; the withdrawal and the promoted's confirmation),
which the caller sends too. `unfinished(session, webinar)` lists what is not done.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import dates, ical, labels, links
from .contacts import find_person
from .content import slugify
from .errors import InputError, NotFound
from .events import EventKind, log_event
from .i18n import _, shown
from .kinds import webinar as messages
from .markdown import safe_url
from .models import MailingKind, MailingStatus, Person, Registration, Webinar
from .outbox import creating
from .render import WebinarInfo
from .settings import Settings

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_SLUG = 60
_MAX_TITLE: int = Webinar.__table__.c.title.type.length
# More places than any meeting service holds (the column is a 32-bit integer on PostgreSQL).
MAX_CAPACITY = 1_000_000
# Longer than any meeting link (Teams' run to some 500 characters), far below a flood.
MAX_URL = 2_000
REMINDERS = ("day", "hour")
REMIND_AHEAD = timedelta(days=2)  # `webinar remind` by hand refuses earlier (unless --force)
FIRST_YEAR, LAST_YEAR = 2000, 2100  # the years a webinar may start in


@dataclass(frozen=True)
class Counts:
    registered: int = 0
    waitlisted: int = 0
    cancelled: int = 0


@dataclass
class Outcome:
    """What a command did: the webinar, a one-word status and the mailings to deliver."""

    webinar: Webinar
    status: str
    mailings: list[int] = field(default_factory=list)
    person: Person | None = None
    promoted: list[Person] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    position: int | None = None
    # Mailings of the same kind that an earlier run created and did not finish (it was killed,
    # say): the caller sends them with MAILINGS, so that the same command again completes them.
    resumed: list[int] = field(default_factory=list)


# --- webinars -------------------------------------------------------------------------------

def parse_start(settings: Settings, text: str, *, field_name: str = "--start") -> datetime:
    """'2026-12-10 14:00' in the organisation's time zone -> an aware UTC datetime.

    A time that does not exist (the hour skipped in spring) is refused; an ambiguous one (the hour
    repeated in autumn) is read as the first, summer-time, occurrence.
    """
    try:
        naive = datetime.strptime(text.strip().replace("T", " "), "%Y-%m-%d %H:%M")
    except ValueError:
        raise InputError(_("“{text}” is not a start time like 2026-12-10 14:00").format(
            text=shown(text)),
                         field=field_name) from None
    if not FIRST_YEAR <= naive.year <= LAST_YEAR:  # 0001 or 9999 overflow in time zone sums
        raise InputError(_("{start}: the year must be between {first} and {last}").format(
            start=text, first=FIRST_YEAR, last=LAST_YEAR), field=field_name)
    tz = ical.zone(settings)
    local = naive.replace(tzinfo=tz)
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise InputError(_("{text} does not exist in {zone} (the clocks skip that hour)").format(
            text=text, zone=tz.key),
                         field=field_name)
    return local.astimezone(UTC)


def read_description(value: str) -> str:
    """The description: the text of VALUE if it names an existing .md file, else VALUE itself."""
    if value.endswith(".md") and "\n" not in value:
        path = Path(value)
        if not path.is_file():
            raise InputError(_("no such file"), source=value, field="--description")
        return path.read_text(encoding="utf-8-sig")
    return value


def get_webinar(session: Session, slug: str) -> Webinar:
    found = session.scalar(select(Webinar).where(Webinar.slug == slug))
    if found is None:
        known = ", ".join(session.scalars(select(Webinar.slug).order_by(Webinar.starts_at)))
        if not known:
            raise NotFound(_("webinar “{slug}” does not exist (there are no webinars yet)"
                             ).format(slug=shown(slug)))
        raise NotFound(_("webinar “{slug}” does not exist (webinars: {known})").format(
            slug=shown(slug), known=known))
    return found


def _check(settings: Settings, *, title: str | None = None, duration: int | None = None,
           join_url: str | None = None, area: str | None = None,
           capacity: int | None = None) -> None:
    if title is not None and not title.strip():
        raise InputError(_("the title is empty"), field="--title")
    if title is not None and len(title.strip()) > _MAX_TITLE:
        raise InputError(_("the title is {n} characters long, at most {max}").format(
            n=len(title.strip()), max=_MAX_TITLE), field="--title")
    if duration is not None and not 0 < duration <= 24 * 60:
        raise InputError(_("{duration} is not a duration in minutes (1-1440)").format(
            duration=duration), field="--duration")
    if join_url is not None:
        _check_url(join_url, "--join-url")
    if area is not None and area not in settings.area_slugs:
        raise InputError(_("unknown area “{area}” (valid: {valid})").format(
            area=shown(area), valid=", ".join(settings.area_slugs)),
                         field="--area")
    if capacity is not None and capacity < 1:
        raise InputError(_("the capacity must be at least 1"), field="--capacity")
    if capacity is not None and capacity > MAX_CAPACITY:
        raise InputError(_("the capacity is {n}, at most {most}").format(
            n=capacity, most=MAX_CAPACITY), field="--capacity")


def _check_url(url: str, field_name: str) -> None:
    """An http(s) address that goes into every invitation's link and calendar file as it is."""
    if len(url) > MAX_URL:
        raise InputError(_("the link is {n} characters long, at most {most}").format(
            n=len(url), most=MAX_URL), field=field_name)
    if not (url.lower().startswith(("https://", "http://")) and safe_url(url)):
        raise InputError(_("{url} is not an http(s) URL (a link such as "
                           "https://teams.microsoft.com/l/meetup-join/...)").format(
                               url=repr(url[:200])), field=field_name)


def create_webinar(session: Session, settings: Settings, *, title: str, starts_at: datetime,
                   duration_minutes: int, join_url: str, area: str | None = None,
                   description: str = "", capacity: int | None = None,
                   slug: str | None = None, now: datetime | None = None) -> Webinar:
    """A new scheduled webinar with a stable iCalendar UID; the slug defaults to the title's.
    A start that is not after NOW (default: now) is refused: nobody could register."""
    _check(settings, title=title, duration=duration_minutes, join_url=join_url, area=area,
           capacity=capacity)
    if starts_at <= (now or datetime.now(UTC)):
        raise InputError(_("the start {start} is in the past").format(
            start=dates.stamp(starts_at, dates.zone(settings))), field="--start")
    if slug is not None:
        if not _SLUG.fullmatch(slug) or len(slug) > _MAX_SLUG:
            raise InputError(_("“{slug}” is not a slug (a-z, 0-9 and -, at most {max})").format(
                slug=shown(slug), max=_MAX_SLUG),
                             field="--slug")
        if session.scalar(select(Webinar.id).where(Webinar.slug == slug)) is not None:
            raise InputError(_("a webinar “{slug}” already exists").format(slug=shown(slug)),
                             field="--slug")
    else:
        slug = _free_slug(session, slugify(title, fallback="webinar"), starts_at)
    domain = settings.organisation.sender.rpartition("@")[2] or "newsletter.invalid"
    webinar = Webinar(slug=slug, uid=f"{uuid.uuid4()}@{domain}", title=title.strip(),
                      starts_at=starts_at, duration_minutes=duration_minutes, join_url=join_url,
                      area=area, description=description.strip(), capacity=capacity,
                      sequence=0, status="scheduled")
    session.add(webinar)
    session.flush()
    return webinar


def _free_slug(session: Session, base: str, starts_at: datetime) -> str:
    taken = set(session.scalars(select(Webinar.slug).where(Webinar.slug.like(f"{base}%"))))
    candidates = [base, f"{base}-{starts_at:%Y-%m-%d}"]
    candidates += [f"{base}-{n}" for n in range(2, len(taken) + 3)]
    return next(c for c in candidates if c not in taken)


def counts(session: Session, webinar: Webinar) -> Counts:
    rows = dict(session.execute(
        select(Registration.status, func.count()).where(Registration.webinar_id == webinar.id)
        .group_by(Registration.status)).all())
    return Counts(**{k: rows.get(k, 0) for k in ("registered", "waitlisted", "cancelled")})


def list_webinars(session: Session) -> list[tuple[Webinar, Counts]]:
    """Every webinar, soonest first, with its registration counts."""
    webinars = session.scalars(select(Webinar).order_by(Webinar.starts_at, Webinar.id))
    return [(w, counts(session, w)) for w in webinars]


def registrations(session: Session, webinar: Webinar, status: str) -> list[Registration]:
    """Registrations of WEBINAR with STATUS in the order they came (the waiting list's order)."""
    return list(session.scalars(
        select(Registration).where(Registration.webinar_id == webinar.id,
                                   Registration.status == status)
        .order_by(Registration.created_at, Registration.id)))


def upcoming(session: Session, settings: Settings, now: datetime | None = None,
             limit: int = 3) -> list[WebinarInfo]:
    """The next scheduled webinars starting after NOW, for the issue's webinar block."""
    now = now or datetime.now(UTC)
    rows = session.scalars(
        select(Webinar).where(Webinar.status == "scheduled", Webinar.starts_at > now)
        .order_by(Webinar.starts_at, Webinar.id).limit(limit))
    return [WebinarInfo(title=w.title, starts_at=w.starts_at,
                        url=links.webinar_url(settings, w.slug),
                        duration_minutes=w.duration_minutes) for w in rows]


def _person(session: Session, email: str) -> Person:
    person = find_person(session, email)
    if person is None:
        raise NotFound(_("no contact with the address {email} (add them with "
                         "`newsletter contacts add` first)").format(email=shown(email)))
    if person.status != "active":
        raise InputError(_("{email} is {status} and cannot be registered").format(
            email=person.email, status=labels.contact_status(person.status)),
                         field="EMAIL")
    return person


def _open(webinar: Webinar, now: datetime) -> None:
    if webinar.status != "scheduled":
        raise InputError(_("webinar {slug} is {status}").format(
            slug=webinar.slug, status=labels.webinar_status(webinar.status)), field="SLUG")
    if webinar.starts_at <= now:
        raise InputError(_("webinar {slug} has already started").format(slug=webinar.slug),
                         field="SLUG")


def _ids(mailing_id: int | None) -> list[int]:
    return [] if mailing_id is None else [mailing_id]


def _earlier(session: Session, prefix: str) -> list[int]:
    """The webinar mailings whose key starts with PREFIX (to resume them)."""
    return creating.mailing_ids_like(session, MailingKind.WEBINAR, prefix)


def _resume(session: Session, outcome: Outcome, *prefixes: str) -> Outcome:
    """Add to OUTCOME.resumed the unfinished mailings whose keys start with PREFIXES."""
    for prefix in prefixes:
        for mailing_id in creating.unfinished_like(session, MailingKind.WEBINAR, prefix):
            if mailing_id not in outcome.mailings and mailing_id not in outcome.resumed:
                outcome.resumed.append(mailing_id)
    return outcome


def unfinished(session: Session, webinar: Webinar) -> list[int]:
    """WEBINAR's mailings that are not done: still sending (or interrupted), paused or
    scheduled, oldest first (`webinar show` lists them)."""
    return creating.unfinished_like(
        session, MailingKind.WEBINAR, f"{webinar.slug}:",
        statuses=(MailingStatus.SENDING, MailingStatus.PAUSED, MailingStatus.SCHEDULED))


def _to_registered(session: Session, settings: Settings, webinar: Webinar, what: str, *,
                   message: str = "") -> int:
    """The mailing of message WHAT to everyone registered for WEBINAR."""
    source = messages.to_registered(settings, webinar, what, message=message)
    return creating.create_mailing(session, settings, source,
                                   f"registered:{webinar.slug}").mailing.id


def _to_one(session: Session, settings: Settings, webinar: Webinar, what: str, person: Person,
            registration: Registration, position: int | None = None, *,
            message: str = "") -> int | None:
    """The mailing of message WHAT to PERSON alone; None when the address may not be mailed."""
    source = messages.to_one(settings, webinar, what, person, registration, position,
                             message=message)
    created = creating.create_mailing(session, settings, source, f"person:{person.public_id}",
                                      persons=[person])
    return created.mailing.id if created.recipients else None


# --- registrations and the waiting list -----------------------------------------------------

def _registration(session: Session, webinar: Webinar, person: Person) -> Registration | None:
    return session.scalar(select(Registration).where(Registration.webinar_id == webinar.id,
                                                     Registration.person_id == person.id))


def waitlist_position(session: Session, registration: Registration) -> int:
    """1 for the first on the waiting list."""
    ahead = [r.id for r in registrations(session, _webinar_of(session, registration), "waitlisted")]
    return ahead.index(registration.id) + 1


def _webinar_of(session: Session, registration: Registration) -> Webinar:
    return session.get(Webinar, registration.webinar_id)


def register(session: Session, settings: Settings, webinar: Webinar | str, person: Person | str,
             *, now: datetime | None = None) -> Outcome:
    """Register PERSON (an active contact) for WEBINAR, or put them on its waiting list if full.

    Returns status "registered", "waitlisted", or "already-registered"/"already-waitlisted"
    (then nothing changes: the message they got before is only resumed if its send was cut off).
    """
    now = now or datetime.now(UTC)
    webinar = get_webinar(session, webinar) if isinstance(webinar, str) else webinar
    person = _person(session, person) if isinstance(person, str) else person
    registration = _registration(session, webinar, person)
    if registration is not None and registration.status in ("registered", "waitlisted"):
        kind = "confirm" if registration.status == "registered" else "waitlist"
        earlier = _earlier(session, f"{webinar.slug}:{kind}:{person.public_id}:")
        return Outcome(webinar, f"already-{registration.status}", earlier, person=person)
    _open(webinar, now)
    _lock_places(session, webinar)
    full = webinar.capacity is not None and counts(session, webinar).registered >= webinar.capacity
    status = "waitlisted" if full else "registered"
    if registration is None:
        registration = Registration(webinar_id=webinar.id, person_id=person.id)
        session.add(registration)
    registration.status = status
    registration.created_at = now  # a new round: the waiting list goes by this time
    session.flush()
    log_event(session, EventKind.WEBINAR_WAITLISTED if full else EventKind.WEBINAR_REGISTERED,
              person, webinar=webinar.slug)
    if full:
        position = waitlist_position(session, registration)
        mailing = _to_one(session, settings, webinar, "waitlist", person, registration, position)
        return Outcome(webinar, status, _ids(mailing), person=person, position=position)
    mailing = _to_one(session, settings, webinar, "confirm", person, registration)
    return Outcome(webinar, status, _ids(mailing), person=person)


def unregister(session: Session, settings: Settings, webinar: Webinar | str,
               person: Person | str, *, now: datetime | None = None) -> Outcome:
    """Cancel PERSON's registration (or place on the waiting list) for WEBINAR.

    One who was registered gets a METHOD:CANCEL for their calendar, and the place goes to the
    first on the waiting list, who gets the confirmation with the invite. Status "cancelled",
    or "not-registered" when there was nothing to cancel.
    """
    now = now or datetime.now(UTC)
    webinar = get_webinar(session, webinar) if isinstance(webinar, str) else webinar
    if isinstance(person, str):
        found = find_person(session, person)
        if found is None:
            raise NotFound(_("no contact with the address {email}").format(email=shown(person)))
        person = found
    registration = _registration(session, webinar, person)
    if registration is None or registration.status == "cancelled":  # done before? finish it
        return _resume(session, Outcome(webinar, "not-registered", person=person),
                       f"{webinar.slug}:withdrawn:{person.public_id}:", f"{webinar.slug}:confirm:")
    was = registration.status
    registration.status = "cancelled"
    session.flush()
    log_event(session, EventKind.WEBINAR_UNREGISTERED, person, webinar=webinar.slug)
    outcome = Outcome(webinar, "cancelled", person=person)
    if was == "registered" and webinar.status == "scheduled":
        outcome.mailings += _ids(_to_one(session, settings, webinar, "withdrawn", person,
                                         registration))
        _promote(session, settings, webinar, outcome, now)
    return _resume(session, outcome, f"{webinar.slug}:confirm:")


def _lock_places(session: Session, webinar: Webinar) -> None:
    """Count places under a lock on the webinar, so two registrations at once cannot both take
    the last one (FOR UPDATE where the database has it; SQLite serialises writers, db.writer)."""
    session.execute(select(Webinar.id).where(Webinar.id == webinar.id).with_for_update())


def _promote(session: Session, settings: Settings, webinar: Webinar, outcome: Outcome,
             now: datetime) -> None:
    """Give free places to the first on the waiting list (active contacts only), in order."""
    if webinar.status != "scheduled" or webinar.starts_at <= now:
        return
    _lock_places(session, webinar)
    taken = counts(session, webinar).registered
    for registration in registrations(session, webinar, "waitlisted"):
        if webinar.capacity is not None and taken >= webinar.capacity:
            break
        person = session.get(Person, registration.person_id)
        if person is None or person.status != "active":
            continue
        registration.status = "registered"
        session.flush()
        taken += 1
        log_event(session, EventKind.WEBINAR_PROMOTED, person, webinar=webinar.slug)
        outcome.promoted.append(person)
        outcome.mailings += _ids(_to_one(session, settings, webinar, "confirm", person,
                                         registration))


# --- changes to a webinar -------------------------------------------------------------------

_TIME_AND_PLACE = ("starts_at", "duration_minutes", "join_url")


def edit_webinar(session: Session, settings: Settings, slug: str, *, now: datetime | None = None,
                 **changes: object) -> Outcome:
    """Change fields of a webinar (title, starts_at, duration_minutes, join_url, area,
    description, capacity). A new time or place raises SEQUENCE and sends everyone registered an
    updated invite (same UID); a larger capacity gives places to the waiting list.
    """
    now = now or datetime.now(UTC)
    webinar = get_webinar(session, slug)
    unknown = set(changes) - {"title", "starts_at", "duration_minutes", "join_url", "area",
                              "description", "capacity"}
    if unknown:
        raise TypeError(f"edit_webinar: unknown fields {sorted(unknown)}")
    given = {k: v for k, v in changes.items() if v is not None}
    _check(settings, title=given.get("title"), duration=given.get("duration_minutes"),
           join_url=given.get("join_url"), area=given.get("area"),
           capacity=given.get("capacity"))
    changed = [k for k, v in given.items() if getattr(webinar, k) != v]
    outcome = Outcome(webinar, "unchanged" if not changed else "changed", changed=changed)
    if not changed:  # the same command again after a crash: finish what it had started
        return _resume(session, outcome, f"{slug}:update:", f"{slug}:confirm:")
    if webinar.status == "cancelled":
        raise InputError(_("webinar {slug} is cancelled and cannot be changed").format(slug=slug),
                         field="SLUG")
    if "starts_at" in changed and given["starts_at"] <= now:
        raise InputError(_("the new start is in the past"), field="--start")
    for key in changed:
        setattr(webinar, key, given[key])
    if any(k in _TIME_AND_PLACE for k in changed):
        webinar.sequence += 1
        session.flush()
        if counts(session, webinar).registered:
            outcome.mailings.append(_to_registered(session, settings, webinar, "update"))
    if "capacity" in changed:
        _promote(session, settings, webinar, outcome, now)
    session.flush()
    return _resume(session, outcome, f"{slug}:update:", f"{slug}:confirm:")


def cancel_webinar(session: Session, settings: Settings, slug: str, *,
                   message: str = "") -> Outcome:
    """Cancel a webinar: SEQUENCE raised, METHOD:CANCEL to everyone registered, and a plain
    notice to those on the waiting list. MESSAGE, the staff's own words (a new date, say), goes
    into both; without it the messages promise nothing."""
    webinar = get_webinar(session, slug)
    if webinar.status == "cancelled":  # the same command again: finish what it had started
        return _resume(session, Outcome(webinar, "already-cancelled"), f"{slug}:cancel:")
    webinar.status = "cancelled"
    webinar.sequence += 1
    session.flush()
    outcome = Outcome(webinar, "cancelled")
    waiting = [(session.get(Person, r.person_id), r)
               for r in registrations(session, webinar, "waitlisted")]
    for person, registration in waiting:
        outcome.mailings += _ids(_to_one(session, settings, webinar, "cancel", person,
                                         registration, message=message))
    if counts(session, webinar).registered:
        outcome.mailings.append(_to_registered(session, settings, webinar, "cancel",
                                               message=message))
    return outcome


def announce(session: Session, settings: Settings, slug: str, segment: str, *,
             now: datetime | None = None) -> Outcome:
    """The invitation to SEGMENT, with the registration link and a PUBLISH calendar file."""
    webinar = get_webinar(session, slug)
    _open(webinar, now or datetime.now(UTC))
    created = creating.create_mailing(session, settings, messages.announcement(settings, webinar),
                                      segment)
    return Outcome(webinar, "announced", [created.mailing.id])


def remind(session: Session, settings: Settings, slug: str, when: str = "day", *,
           now: datetime | None = None, force: bool = False) -> Outcome:
    """A reminder to everyone registered; each reminder (day, hour) reaches a person once.
    More than REMIND_AHEAD before the start it is refused unless FORCE (the worker sends the
    reminders by themselves: reminders.py)."""
    if when not in REMINDERS:
        raise InputError(_("“{when}” is not one of {valid}").format(
            when=shown(when), valid=", ".join(REMINDERS)), field="--when")
    webinar = get_webinar(session, slug)
    now = now or datetime.now(UTC)
    _open(webinar, now)
    if not force and webinar.starts_at - now > REMIND_AHEAD:
        raise InputError(_("webinar {slug} starts in {days} days: a reminder now would come "
                           "too early (the worker sends them by itself, [webinars] "
                           "reminders); --force sends it all the same").format(
            slug=slug, days=(webinar.starts_at - now).days), field="--when")
    return Outcome(webinar, "reminded",
                   [_to_registered(session, settings, webinar, f"remind-{when}")])


def followup(session: Session, settings: Settings, slug: str, recording_url: str) -> Outcome:
    """Thanks and the recording, to everyone registered (once)."""
    webinar = get_webinar(session, slug)
    if webinar.status == "cancelled":
        raise InputError(_("webinar {slug} was cancelled").format(slug=slug), field="SLUG")
    _check_url(recording_url, "--recording")
    webinar.recording_url = recording_url
    session.flush()
    return Outcome(webinar, "followed-up",
                   [_to_registered(session, settings, webinar, "followup")])


def registered_people(session: Session, webinar: Webinar, status: str) -> list[Person]:
    """The persons with STATUS (registered, waitlisted) for WEBINAR, in the order they came."""
    return list(session.scalars(
        select(Person).join(Registration, Registration.person_id == Person.id)
        .where(Registration.webinar_id == webinar.id, Registration.status == status)
        .order_by(Registration.created_at, Registration.id)))
