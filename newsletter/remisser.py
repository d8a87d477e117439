"""Remisser: the consultations the association may answer, tracked to their answer date.

A remiss is an intake entry from a feed of kind "remiss". Its answer date comes from the entry
("Sista dag att svara på remissen är den 13 april 2026", "senast den ..."), else from the
remiss page, fetched with the same safe fetcher (only from the host of the feed the entry came
from, at most `PAGES_PER_ROUND` pages a round and `PAGE_ATTEMPTS` tries a remiss), else by
hand. Its state is to_answer, answered or declined (rejecting the entry declines it).

`reminders_due` is what the worker calls to remind `[intake] remind_to` (staff accounts come
with the console) `[intake] remind_days` before the answer date. It records each reminder it
returns in the caller's transaction: commit after sending them and each goes out once (per
remiss, answer date and address); roll back if sending failed and they come back next round.

The call for input to a segment (`call_for_input`) and the reminder are Markdown built from
templates in `templates/intake/`, which a site can override: staff edit the wording there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import content, fetcher, letters
from .errors import InputError, NewsletterError, NotFound
from .i18n import _
from .kinds.issue import next_issue
from .markdown import safe_url
from .models import (
    EntryStatus,
    IntakeEntry,
    Remiss,
    RemissReminder,
    RemissState,
    utcnow,
)
from .settings import Settings

PAGES_PER_ROUND = 5
PAGE_ATTEMPTS = 3
CALL_TEMPLATE = "intake/remiss_call.md"
REMINDER_TEMPLATE = "intake/remiss_reminder.md"
_MONTHS = {m: i for i, m in enumerate(
    ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
     "oktober", "november", "december"], start=1)}
_DAY_MONTH_YEAR = (r"(?:(?:mån|tis|ons|tors|fre|lör|sön)dagen\s*)?(?:den\s*)*"
                   r"(?P<day>\d{1,2})(?::e|:a)?\s+(?P<month>[a-zåäö]+)\s+(?P<year>\d{4})")
_AT = r"(?:kl(?:ockan)?\.?\s*\d{1,2}(?:[.:]\d{2})?\s+)?"
_ANSWER_DATE = [re.compile(p, re.IGNORECASE) for p in (
    r"sista\s+dag(?:en)?\b[^.]{0,60}?\s(?:är|var)\s+" + _AT + _DAY_MONTH_YEAR,
    r"remisstiden\s+(?:gick|går)\s+ut\s+" + _AT + _DAY_MONTH_YEAR,
    r"senast\s+" + _AT + _DAY_MONTH_YEAR,
)]
_ISO = re.compile(r"(?:sista\s+(?:svars)?dag(?:en)?|svarsdatum|senast)\D{0,30}"
                  r"(?P<iso>\d{4}-\d{2}-\d{2})", re.IGNORECASE)


def parse_answer_date(text: str | None) -> date | None:
    """The answer date a remiss text states in one of the Government Offices' phrasings,
    or None."""
    if not text:
        return None
    for pattern in _ANSWER_DATE:
        for m in pattern.finditer(text):
            month = _MONTHS.get(m["month"].lower())
            if month:
                try:
                    return date(int(m["year"]), month, int(m["day"]))
                except ValueError:
                    continue
    m = _ISO.search(text)
    if m:
        try:
            return date.fromisoformat(m["iso"])
        except ValueError:
            return None
    return None


# --- answer dates from the remiss pages ---------------------------------------------------------

def find_answer_dates(session: Session, settings: Settings, *, now: datetime | None = None,
                      limit: int = PAGES_PER_ROUND) -> int:
    """Fetch the pages of remisser that still lack an answer date (the feed did not say) and
    read it there; returns how many were found. Commits SESSION; never raises for a page."""
    feeds = {f.name: f for f in settings.intake.feeds}
    rows = session.execute(
        select(Remiss.entry_id, IntakeEntry.url, IntakeEntry.feed).join(IntakeEntry)
        .where(Remiss.answer_by.is_(None), Remiss.page_attempts < PAGE_ATTEMPTS,
               Remiss.state == RemissState.TO_ANSWER, IntakeEntry.url.is_not(None))
        .order_by(Remiss.entry_id.desc())).all()
    todo = [(entry_id, url) for entry_id, url, feed in rows
            if feed in feeds and _same_host(url, feeds[feed].url)][:limit]
    session.commit()  # no transaction open while the pages are fetched
    dates = {}
    for entry_id, url in todo:
        try:
            resp = fetcher.fetch(settings, url)
            dates[entry_id] = parse_answer_date(page_text(resp.body, resp.headers))
        except NewsletterError:
            dates[entry_id] = None
    found = 0
    for entry_id, answer_by in dates.items():
        remiss = session.get(Remiss, entry_id)
        if remiss is None or remiss.answer_by is not None:  # decided meanwhile
            continue
        remiss.page_attempts += 1
        if answer_by:
            remiss.answer_by, remiss.answer_by_source = answer_by, "page"
            found += 1
    session.commit()
    return found


def _same_host(url: str, feed_url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() == (urlsplit(feed_url).hostname or "").lower()


def page_text(body: bytes, headers: dict[str, str]) -> str:
    """An HTML page as plain text (tags, scripts and styles gone), in the charset it names."""
    charset = "utf-8"
    found = re.search(r"charset=([\w-]+)", headers.get("content-type", ""))
    found = found or re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", body[:4096], re.IGNORECASE)
    if found:
        value = found.group(1)
        charset = value.decode("ascii") if isinstance(value, bytes) else value
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return content.plain_text(text)


# --- what staff do with a remiss -----------------------------------------------------------------

def get_remiss(session: Session, entry_id: int) -> Remiss:
    remiss = session.get(Remiss, entry_id)
    if remiss is None:
        if session.get(IntakeEntry, entry_id) is None:
            raise NotFound(_("no intake entry {id}").format(id=entry_id))
        raise InputError(_("entry {id} is not a remiss (its feed's kind is not remiss)")
                         .format(id=entry_id))
    return remiss


def list_remisser(session: Session, *, open_only: bool = True) -> list[Remiss]:
    """The remisser (those still to answer, with open_only), the soonest answer date first and
    those without a date last."""
    query = select(Remiss).join(IntakeEntry)
    if open_only:
        query = query.where(Remiss.state == RemissState.TO_ANSWER,
                            IntakeEntry.status != EntryStatus.REJECTED)
    query = query.order_by(Remiss.answer_by.asc().nullslast(), Remiss.entry_id)
    return list(session.scalars(query))


def set_remiss(session: Session, entry_id: int, *, answer_by: date | None = None,
               state: str | None = None) -> Remiss:
    """Set a remiss's answer date by hand and/or its state."""
    remiss = get_remiss(session, entry_id)
    if answer_by is not None:
        remiss.answer_by, remiss.answer_by_source = answer_by, "hand"
    if state is not None:
        if state not in RemissState.__members__.values():
            raise InputError(_("unknown state “{state}” (valid: {valid})").format(
                state=state, valid=", ".join(RemissState)), field="state")
        remiss.state = state
    session.flush()
    return remiss


def record_answer(session: Session, settings: Settings, entry_id: int, url: str, *,
                  month: str | None = None, now: datetime | None = None):
    """Record the association's published answer to a remiss and write it as an item (kind
    remiss) in issue MONTH, or the next issue; returns the item's path."""
    if not safe_url(url) or urlsplit(url).scheme.lower() not in ("https", "http"):
        raise InputError(_("not a web address: “{url}”").format(url=url), field="url")
    remiss = get_remiss(session, entry_id)
    entry = remiss.entry
    now = now or utcnow()
    today = now.astimezone(ZoneInfo(settings.organisation.timezone)).date()
    month = content.check_month(month) if month else next_issue(session, settings, today)
    area = entry.area or entry.suggested_area or (
        "omvarld" if "omvarld" in settings.area_slugs else settings.area_slugs[0])
    title = f"Vårt remissvar: {entry.title}"
    body = content.markdown_text(
        f"Föreningen har svarat på remissen {entry.title}.")
    path = content.new_item(settings, month, title=title, area=area, kind="remiss", url=url,
                              day=today, body=body, free_name=True)
    remiss.state, remiss.answer_url, remiss.answered_at = RemissState.ANSWERED, url, now
    remiss.answer_item = str(path.relative_to(settings.root))
    try:
        session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# --- messages: the call for input and the reminder ------------------------------------------------

@dataclass(frozen=True)
class Reminder:
    """A reminder to send: to whom, what, and about which remiss and date."""

    to: str
    subject: str
    body: str  # Markdown
    entry_id: int
    answer_by: date


def call_for_input(session: Session, settings: Settings, entry_id: int) -> letters.Letter:
    """The subject and Markdown body of a call for input on a remiss, from
    templates/intake/remiss_call.md; send it as a targeted mailing."""
    remiss = get_remiss(session, entry_id)
    return letters.write(settings, CALL_TEMPLATE, _context(settings, remiss))


def reminders_due(session: Session, settings: Settings, now: datetime) -> list[Reminder]:
    """The reminders to send now: for each open remiss whose answer date is at most
    `[intake] remind_days` away (and not past), one per `[intake] remind_to` address that has
    not had one for that date. Records them in SESSION's transaction (see the module)."""
    addresses = settings.intake.remind_to
    if not addresses:
        return []
    today = now.astimezone(ZoneInfo(settings.organisation.timezone)).date()
    horizon = today + timedelta(days=settings.intake.remind_days)
    due = [r for r in list_remisser(session) if r.answer_by and today <= r.answer_by <= horizon]
    out = []
    for remiss in due:
        sent = set(session.scalars(select(RemissReminder.recipient).where(
            RemissReminder.entry_id == remiss.entry_id,
            RemissReminder.answer_by == remiss.answer_by)))
        todo = [a for a in addresses if a not in sent]
        if not todo:
            continue
        message = letters.write(settings, REMINDER_TEMPLATE,
                           {**_context(settings, remiss), "days_left": (remiss.answer_by - today)
                            .days})
        for address in todo:
            try:
                with session.begin_nested():
                    session.add(RemissReminder(entry_id=remiss.entry_id,
                                               answer_by=remiss.answer_by, recipient=address,
                                               created_at=now))
            except IntegrityError:  # another worker handed it out meanwhile
                continue
            out.append(Reminder(to=address, subject=message.subject, body=message.body,
                                entry_id=remiss.entry_id, answer_by=remiss.answer_by))
    return out


def _context(settings: Settings, remiss: Remiss) -> dict:
    entry = remiss.entry
    return {
        "title": entry.title,
        "url": entry.url or "",
        "summary": entry.summary,
        "answer_by": (format_date(remiss.answer_by, "d MMMM y", locale="sv_SE")
                      if remiss.answer_by else ""),
        "organisation": settings.organisation.name,
        "reply_to": settings.organisation.reply_to,
        "entry_id": entry.id,
    }

