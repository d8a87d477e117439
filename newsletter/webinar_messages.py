"""What the webinar messages say, and how they become mailings of the send engine.

Each message is rendered once (render.render_message); a personal invite only adds each
person's calendar file to that same rendering, in a content variant keyed by their public_id.
Sources and their meaning are listed in webinars.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from babel.dates import format_datetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ical, links, outbox
from .messages import calendar_attachments
from .models import Mailing, Person, Registration, Webinar
from .render import render_message
from .settings import Settings

KIND = "webinar"
_SNAPSHOT = ("slug", "uid", "title", "starts_at", "duration_minutes", "join_url", "area",
             "description", "capacity", "sequence", "status", "recording_url")


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


def mailings_like(session: Session, prefix: str) -> list[int]:
    """Ids of webinar mailings whose source starts with PREFIX (to resume them)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(session.scalars(select(Mailing.id).where(
        Mailing.kind == KIND, Mailing.source.like(escaped + "%", escape="\\"))
        .order_by(Mailing.id)))


def stamp() -> datetime:
    """DTSTAMP of the calendar files of a mailing: when it was created, in UTC."""
    return datetime.now(UTC).replace(microsecond=0)


def registration_round(registration: Registration) -> int:
    """When the registration was (re)made, in microseconds: one round of it."""
    return int(registration.created_at.timestamp() * 1_000_000)


def person_label(person: Person) -> str:
    return f"{person.name} <{person.email}>" if person.name else person.email


# --- mailings --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """A rendered message as the send engine freezes it, with its attachments."""

    subject: str
    preheader: str
    html: str
    text: str
    attachments: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class _Attendee:
    email: str
    name: str


def _render(settings: Settings, text: Text) -> Message:
    r = render_message(settings, subject=text.subject, body_markdown=text.body,
                       preheader=text.preheader)
    return Message(r.subject, r.preheader, r.html, r.text)


def snapshot(webinar: Webinar) -> Webinar:
    """A detached copy, so that rendering never depends on the session's state."""
    return Webinar(**{name: getattr(webinar, name) for name in _SNAPSHOT})


def _invite(settings: Settings, webinar: Webinar, method: str, attendee: _Attendee,
            stamp_at: datetime) -> list[dict]:
    ics = ical.webinar_calendar(settings, webinar, method=method, attendee=attendee,
                                stamp=stamp_at)
    return calendar_attachments(ics, method)


def announcement_mailing(session: Session, settings: Settings, webinar: Webinar,
                         segment: str) -> int:
    """SLUG:announce to SEGMENT: one variant for all, with the PUBLISH file as an attachment."""
    frozen = snapshot(webinar)
    text = announcement_text(settings, frozen)

    def render(_key: str) -> Message:
        ics = ical.webinar_calendar(settings, frozen, method="PUBLISH", stamp=stamp(),
                                    registration_url=links.webinar_url(settings, frozen.slug))
        base = _render(settings, text)
        return Message(base.subject, base.preheader, base.html, base.text,
                       [ical.attachment(ics, "PUBLISH", "webinar.ics")])

    return outbox.create_mailing(session, settings, kind=KIND, source=f"{frozen.slug}:announce",
                                 segment_expr=segment, variant_of=lambda _p: "announce",
                                 render=render, subject=text.subject).id


def registered_mailing(session: Session, settings: Settings, webinar: Webinar, what: str) -> int:
    """SLUG:WHAT to `registered:SLUG`: update and cancel carry a personal invite (a variant per
    person, the HTML rendered once); reminders and the follow-up are one variant for all."""
    frozen = snapshot(webinar)
    texts: dict[str, Callable[[], Text]] = {
        "update": lambda: update_text(settings, frozen),
        "cancel": lambda: cancellation_text(settings, frozen),
        "followup": lambda: followup_text(settings, frozen)}
    text = texts[what]() if what in texts else reminder_text(settings, frozen)
    method = {"update": "REQUEST", "cancel": "CANCEL"}.get(what)
    source = f"{frozen.slug}:{what}" + (f":{frozen.sequence}" if method else "")
    base: list[Message] = []
    attendees: dict[str, _Attendee] = {}
    stamp_at = stamp()

    def variant_of(person: Person) -> str:
        if method is None:
            return what
        attendees[person.public_id] = _Attendee(person.email, person.name or "")
        return person.public_id

    def render(key: str) -> Message:
        if not base:
            base.append(_render(settings, text))
        if method is None:
            return base[0]
        return Message(base[0].subject, base[0].preheader, base[0].html, base[0].text,
                       _invite(settings, frozen, method, attendees[key], stamp_at))

    return outbox.create_mailing(session, settings, kind=KIND, source=source,
                                 segment_expr=f"registered:{frozen.slug}", variant_of=variant_of,
                                 render=render, subject=text.subject, transactional=True).id


def personal_mailing(session: Session, settings: Settings, webinar: Webinar, what: str,
                     person: Person, registration: Registration,
                     position: int | None = None) -> int | None:
    """A message to one person, once per registration round: confirm (REQUEST), waitlist,
    withdrawn (CANCEL), cancel (to one on the waiting list when the webinar is cancelled).

    Transactional: it reaches a person who paused the newsletter. None when the address may
    not be mailed.
    """
    frozen = snapshot(webinar)
    round_ = registration_round(registration)
    source = {"confirm": f"{frozen.slug}:confirm:{person.public_id}:{frozen.sequence}:{round_}",
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

    def render(_key: str) -> Message:
        message = _render(settings, text)
        attendee = _Attendee(person.email, person.name or "")
        attachments = _invite(settings, frozen, method, attendee, stamp()) if method else []
        return Message(message.subject, message.preheader, message.html, message.text,
                       attachments)

    created = outbox.create(session, settings, kind=KIND, source=source,
                            segment_expr=f"person:{person.public_id}",
                            variant_of=lambda p: p.public_id, render=render,
                            subject=text.subject, transactional=True, recipients=[person])
    return created.mailing.id if created.recipients else None
