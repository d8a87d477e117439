"""What the webinar messages say: their texts, and one Source (`WebinarMessage`) for all.

Each message is rendered once (render.render_message); a personal calendar invite only adds
each person's calendar file to that same rendering, in a content variant keyed by their
public_id. Which message goes to whom, and when, is webinars.py's business; the keys and their
meaning are listed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

from babel.dates import format_datetime

from .. import ical, links
from ..models import MailingKind, Person, Registration, Webinar
from ..render import render_message
from ..settings import Settings
from ..sources import Content, Profile


@dataclass(frozen=True)
class Text:
    subject: str
    preheader: str
    body: str  # Markdown


def when(settings: Settings, webinar: Webinar) -> str:
    """'torsdag 10 december 2026 kl. 14.00–15.00' in the organisation's time zone."""
    tz = ical.zone(settings)
    start = webinar.starts_at.astimezone(tz)
    end = start + timedelta(minutes=webinar.duration_minutes)
    day = format_datetime(start, "EEEE d MMMM y 'kl.' HH.mm", locale="sv_SE")
    return f"{day}–{format_datetime(end, 'HH.mm', locale='sv_SE')}"


def _short(settings: Settings, webinar: Webinar) -> str:
    start = webinar.starts_at.astimezone(ical.zone(settings))
    return format_datetime(start, "d MMMM 'kl.' HH.mm", locale="sv_SE")


def _md_link(url: str) -> str:
    return f"[{url}]({url})"


def announcement_text(settings: Settings, webinar: Webinar) -> Text:
    page = links.webinar_url(settings, webinar.slug)
    body = [f"**{webinar.title}**", f"**När:** {when(settings, webinar)}  \n**Var:** online"]
    if webinar.description:
        body.append(webinar.description)
    body.append(f"**[Anmäl dig här]({page})**. Du får då en bekräftelse med länken till "
                "mötet och en kalenderinbjudan.")
    if webinar.capacity:
        body.append(f"Antalet platser är begränsat till {webinar.capacity}.")
    body.append("Vill du boka tiden redan nu? Öppna den bifogade filen webinar.ics så läggs "
                "webbinariet in i din kalender.")
    return Text(f"Inbjudan: {webinar.title}, {_short(settings, webinar)}",
                f"Webbinarium {when(settings, webinar)}. Anmäl dig på webben.", "\n\n".join(body))


def confirmation_text(settings: Settings, webinar: Webinar) -> Text:
    body = [f"Du är anmäld till webbinariet **{webinar.title}**.",
            (f"**När:** {when(settings, webinar)}  \n**Länk till mötet:** "
             f"{_md_link(webinar.join_url)}"),
            ("Kalenderinbjudan är bifogad: i Outlook och Google Kalender hamnar webbinariet "
             "i din kalender."),
            ("Kan du inte delta? Svara på det här mejlet, så avanmäler vi dig och platsen går "
             "till någon annan.")]
    return Text(f"Bekräftelse: {webinar.title}, {_short(settings, webinar)}",
                f"Du är anmäld. {when(settings, webinar)}.", "\n\n".join(body))


def waitlist_text(settings: Settings, webinar: Webinar, position: int) -> Text:
    body = [f"Webbinariet **{webinar.title}** ({when(settings, webinar)}) är fullbokat.",
            (f"Du står som nummer {position} på väntelistan. Om en plats blir ledig får du den "
             "automatiskt och då en bekräftelse med länken och en kalenderinbjudan."),
            "Du behöver inte göra något mer nu."]
    return Text(f"Väntelista: {webinar.title}",
                f"Du står som nummer {position} på väntelistan.", "\n\n".join(body))


def withdrawal_text(settings: Settings, webinar: Webinar) -> Text:
    page = links.webinar_url(settings, webinar.slug)
    body = [f"Du är avanmäld från webbinariet **{webinar.title}** ({when(settings, webinar)}).",
            "Den bifogade kalenderfilen tar bort webbinariet ur din kalender.",
            f"Ångrar du dig? Anmäl dig igen på {_md_link(page)}"]
    return Text(f"Avanmäld: {webinar.title}", "Din anmälan är borttagen.", "\n\n".join(body))


def update_text(settings: Settings, webinar: Webinar) -> Text:
    body = [f"Webbinariet **{webinar.title}** har ändrats.",
            (f"**Ny tid:** {when(settings, webinar)}  \n**Länk till mötet:** "
             f"{_md_link(webinar.join_url)}"),
            "Den bifogade kalenderinbjudan uppdaterar webbinariet i din kalender."]
    return Text(f"Ändrat: {webinar.title}, {_short(settings, webinar)}",
                f"Ny tid: {when(settings, webinar)}.", "\n\n".join(body))


def cancellation_text(settings: Settings, webinar: Webinar, *, invited: bool = True) -> Text:
    body = [f"Webbinariet **{webinar.title}** ({when(settings, webinar)}) är tyvärr inställt.",
            ("Den bifogade kalenderfilen tar bort det ur din kalender. " if invited else
             "Du stod på väntelistan; den är nu stängd. ")
            + "Vi hör av oss när vi har ett nytt datum."]
    return Text(f"Inställt: {webinar.title}", "Webbinariet är inställt.", "\n\n".join(body))


def _soon(settings: Settings, webinar: Webinar, now: datetime) -> str:
    """'I dag', 'I morgon' or 'Snart', by the local calendar dates of NOW and the start."""
    tz = ical.zone(settings)
    days = (webinar.starts_at.astimezone(tz).date() - now.astimezone(tz).date()).days
    return {0: "I dag", 1: "I morgon"}.get(days, "Snart")


def reminder_text(settings: Settings, webinar: Webinar, now: datetime | None = None) -> Text:
    lead = _soon(settings, webinar, now or datetime.now(UTC))
    body = [f"{lead} börjar webbinariet **{webinar.title}**.",
            (f"**När:** {when(settings, webinar)}  \n**Länk till mötet:** "
             f"{_md_link(webinar.join_url)}")]
    return Text(f"Påminnelse: {webinar.title}, {_short(settings, webinar)}",
                f"{lead}: {webinar.title}.", "\n\n".join(body))


def followup_text(settings: Settings, webinar: Webinar) -> Text:
    body = [f"Tack för att du anmälde dig till webbinariet **{webinar.title}**.",
            f"Inspelningen finns här: {_md_link(webinar.recording_url or '')}",
            "Dela den gärna med kollegor som inte kunde vara med."]
    return Text(f"Tack! Inspelningen av {webinar.title}", "Här är inspelningen.",
                "\n\n".join(body))


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
    keys it per person all the same (a message to one person)."""

    settings: Settings
    webinar: Webinar  # a snapshot
    key: str
    text: Text
    method: str | None = None
    variant: str | None = None
    transactional: bool = True
    stamped_at: datetime = field(default_factory=lambda: stamp())  # the files' DTSTAMP
    kind = MailingKind.WEBINAR

    def __post_init__(self) -> None:
        self._attendees: dict[str, _Attendee] = {}

    @property
    def subject(self) -> str:
        return self.text.subject

    def variant_of(self, person: Profile) -> str:
        if self.method in PERSONAL or self.variant is None:
            self._attendees[person.public_id] = _Attendee(person.email, person.name or "")
            return person.public_id
        return self.variant

    @cached_property
    def _base(self) -> Content:
        return render_message(self.settings, subject=self.text.subject,
                              body_markdown=self.text.body, preheader=self.text.preheader)

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
                          announcement_text(settings, frozen), method="PUBLISH",
                          variant="announce", transactional=False)


def to_registered(settings: Settings, webinar: Webinar, what: str, *,
                  now: datetime | None = None) -> WebinarMessage:
    """SLUG:WHAT to those registered: update and cancel (SLUG:WHAT:SEQUENCE) carry a personal
    invite; the reminders (remind-day, remind-hour) and the follow-up are one variant for all.
    NOW is when a reminder goes ("I dag", "I morgon")."""
    frozen = snapshot(webinar)
    texts = {"update": update_text, "cancel": cancellation_text, "followup": followup_text}
    text = (texts[what](settings, frozen) if what in texts
            else reminder_text(settings, frozen, now))
    method = {"update": "REQUEST", "cancel": "CANCEL"}.get(what)
    key = f"{frozen.slug}:{what}" + (f":{frozen.sequence}" if method else "")
    return WebinarMessage(settings, frozen, key, text, method=method, variant=what)


def to_one(settings: Settings, webinar: Webinar, what: str, person: Person,
           registration: Registration, position: int | None = None) -> WebinarMessage:
    """A message to one person, once per registration round: confirm (REQUEST), waitlist,
    withdrawn (CANCEL), cancel (to one on the waiting list when the webinar is cancelled)."""
    frozen = snapshot(webinar)
    round_ = registration_round(registration)
    key = {"confirm": f"{frozen.slug}:confirm:{person.public_id}:{frozen.sequence}:{round_}",
           "waitlist": f"{frozen.slug}:waitlist:{person.public_id}:{round_}",
           "withdrawn": f"{frozen.slug}:withdrawn:{person.public_id}:{round_}",
           "cancel": f"{frozen.slug}:cancel:{person.public_id}:{round_}"}[what]
    if what == "confirm":
        text, method = confirmation_text(settings, frozen), "REQUEST"
    elif what == "withdrawn":
        text, method = withdrawal_text(settings, frozen), "CANCEL"
    elif what == "cancel":  # on the waiting list: never had an invite, so no calendar file
        text, method = cancellation_text(settings, frozen, invited=False), None
    else:
        text, method = waitlist_text(settings, frozen, position or 0), None
    return WebinarMessage(settings, frozen, key, text, method=method)
