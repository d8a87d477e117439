"""When a mailing goes: now (`send_now`) or at a time (`schedule`), and the start of a scheduled
one when its time comes (`start`, the worker's); `cancel` before that.

Both paths pass preflight.py first (an unfinished or unapproved issue, demo settings to real
addresses are refused), and only for a new mailing: the same command again resumes.

Scheduling freezes the content at once (outbox.creating.open_mailing with status scheduled,
then freeze): what was approved is what goes, whatever happens to the files afterwards. The
recipients are fixed only when the time comes (outbox.creating.add_recipients, positions judged
on that day, the segment's expression as it was approved), and the send engine re-checks suppression
per message as always. To pick each person's variant then without the issue's files, the
mailing's meta keeps a picker (`pick`: the priority areas and each item's area and roles, from
the issue's manifest) that gives the same key as `IssueRenderer.variant_key`. The variants
frozen at scheduling are those the segment's persons get on that day, plus "every area, no
role-restricted item". Someone whose areas or roles changed since, into a combination nobody
had then, gets every area (with their role-restricted items if that variant was frozen, else
without them): never content their roles do not unlock. The issue's public web version is
frozen too (meta `web`) and published in the archive when the mailing starts, not before.

Times are local to `[organisation] timezone` (Europe/Stockholm), parsed like a webinar's start
(webinars.parse_start): a time the clocks skip (02:00-03:00 on the last Sunday of March) is
refused; a repeated hour (02:00-03:00 on the last Sunday of October) means its first
occurrence, summer time; a time in the past is refused.

Failure modes. Starting is one transaction: a compare-and-set of the status (scheduled -> sending,
outbox.lifecycle.start_scheduled) and the recipients' rows, committed together. Two workers at the
same moment: one wins the compare-and-set, the other starts nothing. A worker killed meanwhile: the
transaction rolls back and the mailing is still scheduled for the next round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, selectinload

from . import preflight, segments, webinars
from .content import Issue, Item
from .errors import InputError, Refused, SendError
from .events import EventKind, log_event
from .i18n import _
from .kinds import issue as issue_kind
from .kinds import webinar as webinar_kind
from .markdown import convert
from .models import Mailing, MailingKind, MailingStatus, Person
from .outbox import creating, lifecycle
from .render import IssueRenderer
from .settings import Area, Settings
from .sources import Content, Profile, Source

_BATCH = 500
_PROBE = Profile(id=0, public_id="scheduled", email="schemalagd@example.se", name="", areas=None,
                 roles=frozenset())


def local_day(settings: Settings, now: datetime) -> date:
    """NOW's date where the organisation is: the day positions are judged on."""
    return now.astimezone(ZoneInfo(settings.organisation.timezone)).date()


def parse_at(settings: Settings, text: str, *, now: datetime | None = None) -> datetime:
    """'2026-12-08 08:00' (local time, see the module) -> an aware UTC datetime after NOW."""
    at = webinars.parse_start(settings, text, field_name="--at")
    if at < (now or datetime.now(UTC)).replace(second=0, microsecond=0):
        raise InputError(_("{at} has already passed: give a later time, or send it now "
                           "without --at").format(at=text.strip()), field="--at")
    return at


# --- now ------------------------------------------------------------------------------------------

def send_now(session: Session, settings: Settings, source: Source, segment: str, *,
             by: str | None = None,
             before_create: Callable[[], None] | None = None) -> creating.Created:
    """The mailing of SOURCE to SEGMENT to send now: the existing one (to resume), or a new one
    once preflight passes (BEFORE_CREATE() then runs, e.g. a question on the terminal); a new
    issue mailing publishes its web version in the archive."""
    existing = creating.find_mailing(session, source.kind, source.key, segment)
    if existing is not None and existing.status == MailingStatus.SCHEDULED:
        raise Refused(_("mailing {id} is scheduled for {at}: it goes then (newsletter send "
                        "cancel {id} cancels it)").format(
            id=existing.id, at=_local(settings, existing.scheduled_at)))
    if existing is None:
        preflight.check_send(session, settings, source, segment, by=by)
        if before_create is not None:
            before_create()
    created = creating.create_mailing(session, settings, source, segment)
    if created.new and isinstance(source, issue_kind.IssueSource):
        issue_kind.publish(session, settings, source)
    return created


def _local(settings: Settings, at: datetime | None) -> str:
    if at is None:
        return "?"
    return at.astimezone(ZoneInfo(settings.organisation.timezone)).strftime("%Y-%m-%d %H:%M")


# --- at a time ---------------------------------------------------------------------------------

def schedule(session: Session, settings: Settings, source: Source, segment: str,
             at: datetime, *, by: str | None = None, now: datetime | None = None) -> Mailing:
    """A mailing of SOURCE to SEGMENT, to start at AT: preflight passed, content frozen now,
    recipients fixed when the worker starts it (see the module)."""
    now = now or datetime.now(UTC)
    if at < now.replace(second=0, microsecond=0):
        raise InputError(_("the time has already passed: give a later time, or send it now "
                           "without --at"), field="--at")
    if isinstance(source, webinar_kind.WebinarMessage) and (
            source.method in webinar_kind.PERSONAL or source.variant is None):
        raise InputError(_("only the issue, a targeted mailing or a webinar announcement can "
                           "be scheduled"))
    existing = creating.find_mailing(session, source.kind, source.key, segment)
    if existing is not None:
        raise Refused(_("{kind} {key} to {segment} is already mailing {id} ({status}): "
                        "newsletter send status {id}").format(
            kind=source.kind, key=source.key, segment=segment, id=existing.id,
            status=existing.status))
    preflight.check_send(session, settings, source, segment, by=by)
    if isinstance(source, issue_kind.IssueSource):
        mailing = _schedule_issue(session, settings, source, segment, at, now)
    else:
        key = source.variant_of(_PROBE)
        mailing = creating.open_mailing(session, settings, source, segment,
                                        status=MailingStatus.SCHEDULED, scheduled_at=at,
                                        meta={"pick": {"kind": "one", "key": key}})
        creating.freeze(session, mailing, replace(source.render(key), key=key))
    session.flush()
    log_event(session, EventKind.MAILING_SCHEDULED, mailing=mailing.id,
              ref=f"{source.kind}:{source.key}", at=at.isoformat(), by=by)
    return mailing


def _fields(content: Content) -> dict[str, Any]:
    return {"subject": content.subject, "html": content.html, "text": content.text,
            "preheader": content.preheader, "attachments": content.attachments,
            "key": content.key}


def _schedule_issue(session: Session, settings: Settings, source: issue_kind.IssueSource,
                    segment: str, at: datetime, now: datetime) -> Mailing:
    renderer = source.renderer
    web = source.web_version()
    pick = {"kind": "issue", "month": source.month,
            "areas": [[a.slug, a.name] for a in settings.areas],
            "items": [[item.area, sorted(item.roles)] for item in source.issue.items],
            "fallback": renderer.variant_key(None, frozenset())}
    meta = {"pick": pick,
            "web": {**_fields(web), "attachments": [], "manifest": dict(web.manifest)}}
    mailing = creating.open_mailing(session, settings, source, segment,
                                    status=MailingStatus.SCHEDULED, scheduled_at=at, meta=meta)
    keys = {pick["fallback"]}
    today = local_day(settings, now)
    for people in _segment_people(session, settings, segment, today):
        for person in people:
            areas = frozenset(a.area for a in person.areas) or None
            keys.add(renderer.variant_key(areas, person.roles(today)))
            session.expunge(person)
    for key in sorted(keys):
        creating.freeze(session, mailing, renderer.render(key))
    return mailing


def _segment_people(session: Session, settings: Settings, segment: str, today: date):
    query = segments.recipients_query(settings, segment, today=today).options(
        selectinload(Person.areas), selectinload(Person.positions))
    batch: list[Person] = []
    for person in session.scalars(query):
        batch.append(person)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def cancel(session: Session, mailing_id: int, *, by: str | None = None) -> Mailing:
    """Cancel scheduled MAILING_ID (before a worker starts it); BY, if given, must be a staff
    member who may send."""
    preflight.check_sender(session, by)
    mailing = lifecycle.cancel(session, mailing_id, _("cancelled before it was sent"))
    log_event(session, EventKind.MAILING_CANCELLED, mailing=mailing_id, by=by)
    return mailing


def scheduled_at_local(settings: Settings, mailing: Mailing) -> str:
    """MAILING's time, as 'YYYY-MM-DD HH:MM' in the organisation's time zone."""
    return _local(settings, mailing.scheduled_at)


# --- when the time comes ----------------------------------------------------------------------

@dataclass
class FrozenSource:
    """A scheduled mailing as a Source: each person's variant picked from what was frozen (see
    the module); nothing is rendered, no file is read."""

    settings: Settings
    mailing: Mailing
    frozen: set[str]
    today: date
    _renderer: IssueRenderer | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.mailing.kind

    @property
    def key(self) -> str:
        return self.mailing.source

    @property
    def transactional(self) -> bool:
        return bool((self.mailing.meta or {}).get("transactional"))

    @property
    def subject(self) -> str:
        return self.mailing.subject

    @property
    def pick(self) -> dict[str, Any]:
        return (self.mailing.meta or {}).get("pick") or {}

    def variant_of(self, person: Profile) -> str:
        """PERSON's frozen variant: areas as chosen, roles as held on the day the mailing
        started (outbox.add_recipients reads them for that day)."""
        pick = self.pick
        if pick.get("kind") != "issue":
            return pick["key"]
        renderer = self._keys()
        areas, roles = person.areas, person.roles
        for key in (renderer.variant_key(areas, roles), renderer.variant_key(None, roles)):
            if key in self.frozen:
                return key
        return pick["fallback"]

    def _keys(self) -> IssueRenderer:
        """A renderer of the picker's items, for its variant_key only (no text, no files)."""
        if self._renderer is None:
            pick = self.pick
            body = convert("")
            items = tuple(Item(id=f"item-{n}", source="", title="", area=area, kind="nyhet",
                               url=None, date=None, tags=(), roles=frozenset(roles), body=body)
                          for n, (area, roles) in enumerate(pick["items"]))
            issue = Issue(month=pick["month"], source="", subject="", preheader="", author="",
                          editorial=body, items=items)
            areas = tuple(Area(slug, name) for slug, name in pick["areas"])
            self._renderer = IssueRenderer(self.settings.with_overrides(areas=areas), issue)
        return self._renderer

    def render(self, key: str) -> Content:
        raise SendError(_("mailing {id}: variant “{key}” was not frozen").format(
            id=self.mailing.id, key=key))


@dataclass(frozen=True)
class _FrozenWeb:
    """The web version frozen with a scheduled issue, for kinds.issue.publish."""

    month: str
    content: Content

    def web_version(self) -> Content:
        return self.content


def start(session: Session, settings: Settings, mailing_id: int, *,
          now: datetime | None = None) -> creating.Created | None:
    """Start scheduled MAILING_ID (its time has come): fix its recipients as of NOW's day and
    publish a frozen issue's web version. None if another worker started it first, or it was
    cancelled; a site on demo settings whose segment now reaches beyond example.se cancels it
    with the reason."""
    now = now or datetime.now(UTC)
    mailing = creating.get_mailing(session, mailing_id)
    if mailing.status != MailingStatus.SCHEDULED:
        return None
    expr = (mailing.meta or {}).get("segment_expr") or mailing.segment
    try:
        preflight.check_demo_recipients(session, settings, expr)
    except Refused as exc:
        lifecycle.cancel(session, mailing_id, str(exc))
        log_event(session, EventKind.MAILING_CANCELLED, mailing=mailing_id, by=None)
        return None
    if not lifecycle.start_scheduled(session, mailing_id):
        return None
    mailing = creating.get_mailing(session, mailing_id)
    source = FrozenSource(settings, mailing, creating.frozen_keys(session, mailing_id),
                          local_day(settings, now))
    created = creating.add_recipients(session, settings, mailing, source,
                                      today=local_day(settings, now))
    web = (mailing.meta or {}).get("web")
    if mailing.kind == MailingKind.ISSUE and web:
        pick = source.pick
        content = Content(subject=web["subject"], html=web["html"], text=web["text"],
                          preheader=web["preheader"], key=web["key"],
                          manifest=web.get("manifest") or {})
        areas = tuple(Area(slug, name) for slug, name in pick["areas"])
        issue_kind.publish(session, settings.with_overrides(areas=areas),
                           _FrozenWeb(pick["month"], content))
    return created
