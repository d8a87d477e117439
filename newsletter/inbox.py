"""The intake inbox: staff triage what the feeds brought in.

An entry is new until a person accepts it into an issue (it becomes an item file there, through
content.new_item, which never overwrites) or rejects it. Nothing reaches a reader without a
person. `accept` and `reject` take several ids at once; each id succeeds or fails on its own,
with its reason, and the others go on. A file written for an entry whose database change then
fails is removed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import content
from .errors import InputError, NewsletterError, NotFound
from .i18n import _
from .models import EntryStatus, IntakeEntry, Remiss, RemissState, utcnow
from .settings import Settings

SUMMARY_IN_ITEM = 600  # characters of the feed's summary an item starts with


@dataclass(frozen=True)
class Outcome:
    """What became of one id: the item file written, or why nothing was done."""

    entry_id: int
    path: Path | None = None
    error: str | None = None


def list_entries(session: Session, *, status: str | None = EntryStatus.NEW,
                 area: str | None = None) -> list[IntakeEntry]:
    """Entries, newest first; STATUS None for all; AREA the suggested (or, once accepted,
    the chosen) area, or "okategoriserad" for those without one."""
    query = select(IntakeEntry)
    if status:
        if status not in EntryStatus.__members__.values():
            raise InputError(_("unknown status “{status}” (valid: {valid})").format(
                status=status, valid=", ".join(EntryStatus)), field="status")
        query = query.where(IntakeEntry.status == status)
    entries = session.scalars(query.order_by(IntakeEntry.published_at.desc().nullslast(),
                                             IntakeEntry.id.desc())).all()
    if area:
        wanted = None if area == "okategoriserad" else area
        entries = [e for e in entries if (e.area or e.suggested_area) == wanted]
    return list(entries)


def get_entry(session: Session, entry_id: int) -> IntakeEntry:
    entry = session.get(IntakeEntry, entry_id)
    if entry is None:
        raise NotFound(_("no intake entry {id} (newsletter intake list)").format(id=entry_id))
    return entry


def accept(session: Session, settings: Settings, ids: list[int], month: str, *,
           area: str | None = None, now: datetime | None = None) -> list[Outcome]:
    """Write each new entry of IDS as an item of issue MONTH, in AREA or else its suggested
    area; an entry that is not new, has no area or does not validate fails alone."""
    content.check_month(month)
    if area is not None and area not in settings.area_slugs:
        raise InputError(_("unknown area “{area}” (valid: {valid})").format(
            area=area, valid=", ".join(settings.area_slugs)), field="area")
    now = now or utcnow()
    outcomes, written = [], []
    try:
        for entry_id in ids:
            try:
                path = _accept_one(session, settings, entry_id, month, area, now)
            except NewsletterError as exc:
                outcomes.append(Outcome(entry_id, error=str(exc)))
                continue
            written.append(path)
            outcomes.append(Outcome(entry_id, path=path))
        session.flush()
    except BaseException:
        for path in written:  # the database did not take it: leave no item behind
            path.unlink(missing_ok=True)
        raise
    return outcomes


def _accept_one(session: Session, settings: Settings, entry_id: int, month: str,
                area: str | None, now: datetime) -> Path:
    entry = get_entry(session, entry_id)
    if entry.status != EntryStatus.NEW:
        where = f" ({entry.item_path})" if entry.item_path else ""
        raise InputError(_("entry {id} is already {status}{where}").format(
            id=entry_id, status=entry.status, where=where))
    chosen = area or entry.suggested_area
    if not chosen:
        raise InputError(_("entry {id} has no suggested area (okategoriserad): give --area SLUG")
                         .format(id=entry_id))
    path = content.new_item(settings, month, title=entry.title, area=chosen, kind=entry.kind,
                              url=entry.url, day=_day(settings, entry),
                              body=item_body(session, entry), free_name=True)
    entry.status, entry.area, entry.issue = EntryStatus.ACCEPTED, chosen, month
    entry.item_path, entry.decided_at = str(path.relative_to(settings.root)), now
    return path


def item_body(session: Session, entry: IntakeEntry) -> str:
    """The Markdown an accepted entry's item starts with: the summary, and a remiss's date."""
    text = entry.summary
    if len(text) > SUMMARY_IN_ITEM:
        text = text[:SUMMARY_IN_ITEM].rsplit(" ", 1)[0].rstrip(" ,.;:") + " …"
    body = content.markdown_text(text)
    remiss = session.get(Remiss, entry.id)
    if remiss is not None and remiss.answer_by is not None:
        when = format_date(remiss.answer_by, "d MMMM y", locale="sv_SE")
        body += ("\n\n" if body else "") + f"Sista dag att svara på remissen: {when}."
    return body


def _day(settings: Settings, entry: IntakeEntry) -> date:
    stamp = entry.published_at or entry.fetched_at
    return stamp.astimezone(ZoneInfo(settings.organisation.timezone)).date()


def reject(session: Session, ids: list[int], *, now: datetime | None = None) -> list[Outcome]:
    """Mark each new entry of IDS as rejected (a remiss among them as declined); staff's
    rejections teach the suggestions what is not for the newsletter."""
    now = now or utcnow()
    outcomes = []
    for entry_id in ids:
        try:
            entry = get_entry(session, entry_id)
            if entry.status != EntryStatus.NEW:
                raise InputError(_("entry {id} is already {status}").format(
                    id=entry_id, status=entry.status))
        except NewsletterError as exc:
            outcomes.append(Outcome(entry_id, error=str(exc)))
            continue
        entry.status, entry.decided_at = EntryStatus.REJECTED, now
        remiss = session.get(Remiss, entry.id)
        if remiss is not None and remiss.state == RemissState.TO_ANSWER:
            remiss.state = RemissState.DECLINED
        outcomes.append(Outcome(entry_id))
    session.flush()
    return outcomes
