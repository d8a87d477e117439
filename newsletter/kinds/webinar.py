"""What the webinar messages say, and one Source (`WebinarMessage`) for all of them.

The words are templates the association can change (letters.py): one file per message in
templates/email/messages/LANG/ (webinar_invitation.md, webinar_confirmation.md ...), rendered
with the webinar's facts (`facts`). Each message is then rendered once (render.render_message);
a personal calendar invite only adds each person's calendar file to that same rendering, in a
content variant keyed by their public_id, and the link to cancel one's own registration is a
personal placeholder (sources.WEBINAR_TOKEN) filled in per recipient. Which message goes to
whom, and when, is webinars.py's business; the keys and their meaning are listed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from .. import dates, ical, links
from ..letters import Letter, Markdown, write_message
from ..models import MailingKind, Person, Registration, Webinar
from ..render import render_message
from ..settings import Settings
from ..sources import WEBINAR_TOKEN, Content, Profile

# What each message is -> its template in templates/email/messages/LANG/.
TEMPLATES = {"announce": "webinar_invitation", "confirm": "webinar_confirmation",
             "waitlist": "webinar_waitlist", "withdrawn": "webinar_withdrawal",
             "update": "webinar_update", "remind": "webinar_reminder",
             "cancel": "webinar_cancellation", "followup": "webinar_followup"}
# Messages to someone still registered (or waiting): they offer to cancel the registration.
CANCELLABLE = ("confirm", "waitlist", "update", "remind")


def when(settings: Settings, webinar: Webinar) -> str:
    """'torsdag 10 december 2026 kl. 14.00–15.00' in the organisation's time zone."""
    start = webinar.starts_at
    return dates.span(start, start + timedelta(minutes=webinar.duration_minutes),
                      dates.zone(settings))


def facts(settings: Settings, webinar: Webinar) -> dict[str, Any]:
    """What a message template knows about WEBINAR (see templates/email/messages/README.md)."""
    tz = dates.zone(settings)
    return {
        "title": webinar.title, "when": when(settings, webinar),
        "day": dates.weekday(webinar.starts_at, tz), "start": dates.at(webinar.starts_at, tz),
        "short": dates.short(webinar.starts_at, tz), "duration": webinar.duration_minutes,
        "description": Markdown(webinar.description or ""), "capacity": webinar.capacity or "",
        "page_url": Markdown(links.webinar_url(settings, webinar.slug)),
        "join_url": Markdown(webinar.join_url),
        "recording_url": Markdown(webinar.recording_url or ""),
    }


def letter(settings: Settings, webinar: Webinar, what: str, **values: Any) -> Letter:
    """The words of message WHAT (a key of TEMPLATES) about WEBINAR, with VALUES (position,
    days_until, invited, message) as the template needs them."""
    context = {"webinar": facts(settings, webinar), "organisation": settings.organisation.name,
               "cancel_url": Markdown(links.registration_url(settings, webinar.slug,
                                                             WEBINAR_TOKEN)),
               "position": "", "days_until": "", "invited": True, "message": "", **values}
    return write_message(settings, TEMPLATES[what], context)


def days_until(settings: Settings, webinar: Webinar, now: datetime) -> int:
    """Calendar days from NOW to the start, in the organisation's time zone (0: today)."""
    tz = dates.zone(settings)
    return (webinar.starts_at.astimezone(tz).date() - now.astimezone(tz).date()).days


def stamp() -> datetime:
    """DTSTAMP of the calendar files of a mailing: when it was created, in UTC."""
    return datetime.now(UTC).replace(microsecond=0)


def registration_round(registration: Registration) -> int:
    """When the registration was (re)made, in microseconds: one round of it."""
    return int(registration.created_at.timestamp() * 1_000_000)


def person_label(person: Person) -> str:
    return f"{person.name} <{person.email}>" if person.name else person.email


# --- the Source ------------------------------------------------------------------------------

_SNAPSHOT = ("slug", "uid", "title", "starts_at", "duration_minutes", "join_url", "area",
             "description", "capacity", "sequence", "status", "recording_url")
PERSONAL = ("REQUEST", "CANCEL")  # calendar methods that name their attendee


def snapshot(webinar: Webinar) -> Webinar:
    """A detached copy, so that rendering never depends on the session's state."""
    return Webinar(**{name: getattr(webinar, name) for name in _SNAPSHOT})


@dataclass(frozen=True)
class _Attendee:
    email: str
    name: str


@dataclass
class WebinarMessage:
    """One webinar message as a mailing Source. METHOD is its calendar file: PUBLISH (the same
    for everyone), REQUEST or CANCEL (personal: one variant per person, keyed by public_id),
    or None. VARIANT is the key of the one variant a message without a personal file has; None
    keys it per person all the same (a message to one person). CANCELLABLE messages offer the
    person's own link to cancel the registration."""

    settings: Settings
    webinar: Webinar  # a snapshot
    key: str
    letter: Letter
    method: str | None = None
    variant: str | None = None
    transactional: bool = True
    cancellable: bool = False
    stamped_at: datetime = field(default_factory=lambda: stamp())  # the files' DTSTAMP
    kind = MailingKind.WEBINAR

    def __post_init__(self) -> None:
        self._attendees: dict[str, _Attendee] = {}

    @property
    def subject(self) -> str:
        return self.letter.subject

    def variant_of(self, person: Profile) -> str:
        if self.method in PERSONAL or self.variant is None:
            self._attendees[person.public_id] = _Attendee(person.email, person.name or "")
            return person.public_id
        return self.variant

    @cached_property
    def _base(self) -> Content:
        words = self.letter
        cancel = (links.registration_url(self.settings, self.webinar.slug, WEBINAR_TOKEN)
                  if self.cancellable else None)
        return render_message(self.settings, subject=words.subject, body_markdown=words.body,
                              preheader=words.preheader,
                              action=(words.action, words.action_url) if words.action else None,
                              transactional=self.transactional, cancel_url=cancel)

    def render(self, key: str) -> Content:
        attachments: list[dict] = []
        if self.method == "PUBLISH":
            ics = ical.webinar_calendar(
                self.settings, self.webinar, method="PUBLISH", stamp=self.stamped_at,
                registration_url=links.webinar_url(self.settings, self.webinar.slug))
            attachments = [ical.attachment(ics, "PUBLISH", "webinar.ics")]
        elif self.method in PERSONAL:
            ics = ical.webinar_calendar(self.settings, self.webinar, method=self.method,
                                        attendee=self._attendees[key], stamp=self.stamped_at)
            attachments = ical.calendar_attachments(ics, self.method)
        return replace(self._base, key=key, attachments=tuple(attachments))


def announcement(settings: Settings, webinar: Webinar) -> WebinarMessage:
    """SLUG:announce: the invitation, with the PUBLISH file, one variant for all. Not
    transactional: it goes to a segment, like the newsletter."""
    frozen = snapshot(webinar)
    return WebinarMessage(settings, frozen, f"{frozen.slug}:announce",
                          letter(settings, frozen, "announce"), method="PUBLISH",
                          variant="announce", transactional=False)


def to_registered(settings: Settings, webinar: Webinar, what: str, *, message: str = "",
                  now: datetime | None = None) -> WebinarMessage:
    """SLUG:WHAT to those registered: update and cancel (SLUG:WHAT:SEQUENCE) carry a personal
    invite; the reminders (remind-day, remind-hour) and the follow-up are one variant for all.
    MESSAGE: the staff's own words in a cancellation; NOW: when a reminder is written."""
    frozen = snapshot(webinar)
    template = "remind" if what.startswith("remind") else what
    text = letter(settings, frozen, template, message=message,
                  days_until=days_until(settings, frozen, now or datetime.now(UTC)))
    method = {"update": "REQUEST", "cancel": "CANCEL"}.get(what)
    key = f"{frozen.slug}:{what}" + (f":{frozen.sequence}" if method else "")
    return WebinarMessage(settings, frozen, key, text, method=method, variant=what,
                          cancellable=template in CANCELLABLE)


def to_one(settings: Settings, webinar: Webinar, what: str, person: Person,
           registration: Registration, position: int | None = None, *,
           message: str = "") -> WebinarMessage:
    """A message to one person, once per registration round: confirm (REQUEST), waitlist,
    withdrawn (CANCEL), cancel (to one on the waiting list when the webinar is cancelled,
    with the staff's MESSAGE)."""
    frozen = snapshot(webinar)
    round_ = registration_round(registration)
    key = {"confirm": f"{frozen.slug}:confirm:{person.public_id}:{frozen.sequence}:{round_}",
           "waitlist": f"{frozen.slug}:waitlist:{person.public_id}:{round_}",
           "withdrawn": f"{frozen.slug}:withdrawn:{person.public_id}:{round_}",
           "cancel": f"{frozen.slug}:cancel:{person.public_id}:{round_}"}[what]
    # On the waiting list of a cancelled webinar: never had an invite, so no calendar file.
    method = {"confirm": "REQUEST", "withdrawn": "CANCEL"}.get(what)
    text = letter(settings, frozen, what, position=position or "", invited=what != "cancel",
                  message=message)
    return WebinarMessage(settings, frozen, key, text, method=method,
                          cancellable=what in CANCELLABLE)
