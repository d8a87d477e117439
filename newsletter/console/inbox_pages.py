"""/inkorg: the intake inbox in the console: what the feeds brought in, grouped by suggested
priority area (with the score and why), accepted into an issue or rejected, several at once;
the remisser still to answer, soonest first, with their answer dates; the feeds' state.

Every decision goes through inbox.py and remisser.py (the CLI's functions): an accepted entry
becomes an item file through content.new_item, exactly as `intake accept` writes it. Each
ticked entry succeeds or fails on its own; the page then says which and why.

"Fetch now" does not fetch: the request records the wish (intake.request_fetch) and wakes the
console's background sender, whose task (`FetchTask`) fetches the feeds outside any request;
`fetch_due` (the worker) honours the same wish, whichever comes first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .. import content, inbox, intake, remisser
from ..classify import explain
from ..errors import InputError, NewsletterError
from ..events import EventKind
from ..i18n import _, ngettext
from ..models import IntakeEntry, Remiss, RemissState
from ..settings import Settings
from ..staff import REDAKTOR
from . import access
from . import context as ctx

blueprint = Blueprint("inbox", __name__)
UNCATEGORISED = "okategoriserad"
MONTHS_AHEAD = 3  # months offered for accepting: the next issue and the two after it


@dataclass
class FetchTask:
    """The background sender's task: fetch the feeds when someone asked for it. It reads
    first (cheap, every sweep) and takes a write lock only when there is a wish to take."""

    sessions: sessionmaker[Session]

    def __call__(self, settings: Settings, writers: sessionmaker[Session]) -> list[int]:
        with self.sessions() as session:
            if intake.fetch_requested(session) is None:
                return []
        with writers() as session:
            intake.fetch_if_requested(session, settings)
        return []

    def __str__(self) -> str:
        return "intake fetch"


@dataclass(frozen=True)
class Group:
    """The new entries of one suggested area (SLUG None: okategoriserad)."""

    slug: str | None
    name: str
    entries: list[IntakeEntry]


@dataclass(frozen=True)
class Result:
    """What became of one ticked entry: the item it became, or why nothing was done."""

    title: str
    error: str | None = None
    month: str | None = None
    item: str | None = None  # the item's id (file name without .md)


def _notice(key: str) -> str | None:
    """The confirmation ?meddelande=KEY asks for (looked up per request, see compose._notice)."""
    n = request.args.get("antal", type=int) or 0
    month = request.args.get("nummer", "")
    texts = {
        "antagna": lambda: ngettext("{n} entry was accepted into the issue {month}.",
                                    "{n} entries were accepted into the issue {month}.",
                                    n).format(n=n, month=month),
        "avvisade": lambda: ngettext("{n} entry was rejected.", "{n} entries were rejected.",
                                     n).format(n=n),
        "remiss": lambda: _("The remiss was saved."),
        "hamtning": lambda: _("The feeds will be fetched in the background in a moment. Reload "
                              "the page to see what came in."),
    }
    return texts[key]() if key in texts else None


def _groups(entries: list[IntakeEntry]) -> list[Group]:
    settings = ctx.settings()
    by_area: dict[str | None, list[IntakeEntry]] = defaultdict(list)
    for entry in entries:
        slug = entry.suggested_area if entry.suggested_area in settings.area_slugs else None
        by_area[slug].append(entry)
    groups = [Group(a.slug, a.name, by_area[a.slug]) for a in settings.areas if by_area[a.slug]]
    if by_area[None]:
        groups.append(Group(None, _("Uncategorised"), by_area[None]))
    return groups


def _months(next_issue: str) -> list[str]:
    """The issues an entry may go into: the next one, the months after it, and any later
    issue already begun."""
    year, month = (int(x) for x in next_issue.split("-"))
    first = date(year, month, 1)
    ahead = []
    for _n in range(MONTHS_AHEAD):
        ahead.append(first.strftime("%Y-%m"))
        first = (first + timedelta(days=32)).replace(day=1)
    begun = [m for m in content.issue_months(ctx.settings()) if m >= next_issue]
    return sorted(set(ahead) | set(begun))


def _page(*, status: int = 200, results: list[Result] | None = None,
          error: str | None = None, form: dict | None = None) -> Response:
    settings, session = ctx.settings(), ctx.db()
    entries = inbox.list_entries(session, status="new")
    answer_dates = {r.entry_id: r for r in session.scalars(
        select(Remiss).where(Remiss.entry_id.in_([e.id for e in entries])))}
    next_issue = remisser.next_issue(session, settings, ctx.today())
    return ctx.page(
        "inbox.html", status=status, groups=_groups(entries), total=len(entries),
        remisser_by_entry=answer_dates, explain=explain, areas=settings.areas,
        area_names={a.slug: a.name for a in settings.areas},
        months=_months(next_issue), next_issue=next_issue,
        form=form or {"month": next_issue, "areas": {}, "ticked": set()},
        remiss_list=remisser.list_remisser(session, open_only=True), today=ctx.today(),
        feeds=intake.feed_states(session, settings),
        interval=settings.intake.interval_minutes,
        fetch_asked=intake.fetch_requested(session), results=results or [], error=error,
        notice=_notice(request.args.get("meddelande", "")))


@blueprint.get("/inkorg")
@access.requires(REDAKTOR)
def index() -> Response:
    return _page()


def _ticked() -> list[int]:
    try:
        return list(dict.fromkeys(int(v) for v in request.form.getlist("entry")))
    except ValueError:
        raise InputError(_("unknown entry"), field="entry") from None


@blueprint.post("/inkorg")
@access.requires(REDAKTOR)
def decide() -> Response:
    """Accept (`action=accept`, into `month`, each in its `area-ID`) or reject the ticked
    entries (`entry`, repeated)."""
    settings, session = ctx.settings(), ctx.db()
    action = request.form.get("action", "")
    ids = _ticked()
    month = request.form.get("month", "").strip()
    areas = {i: request.form.get(f"area-{i}", "").strip() for i in ids}
    form = {"month": month, "areas": areas, "ticked": set(ids)}
    if action not in ("accept", "reject"):
        return _page(status=400, form=form, error=_("Choose to accept or to reject."))
    if not ids:
        return _page(status=400, form=form, error=_("Tick at least one entry."))
    titles = {e.id: e.title for e in session.scalars(
        select(IntakeEntry).where(IntakeEntry.id.in_(ids)))}
    if action == "reject":
        outcomes = inbox.reject(session, ids, now=ctx.now())
        results = [Result(titles.get(o.entry_id, str(o.entry_id)), o.error) for o in outcomes]
        done = [o.entry_id for o in outcomes if o.error is None]
        if done:
            ctx.audit(EventKind.CONSOLE_INTAKE_REJECTED, entries=done)
        return _answer(results, len(done), "avvisade", form)
    try:
        content.check_month(month)
    except InputError:
        return _page(status=400, form=form, error=_("Choose the issue to accept them into."))
    results, done = [], []
    by_area: dict[str, list[int]] = defaultdict(list)
    for entry_id in ids:
        if areas[entry_id] in settings.area_slugs:
            by_area[areas[entry_id]].append(entry_id)
        else:
            results.append(Result(titles.get(entry_id, str(entry_id)),
                                  _("choose a priority area for it")))
    for area, group in by_area.items():
        for outcome in inbox.accept(session, settings, group, month, area=area, now=ctx.now()):
            title = titles.get(outcome.entry_id, str(outcome.entry_id))
            if outcome.error:
                results.append(Result(title, outcome.error))
            else:
                done.append(outcome.entry_id)
                results.append(Result(title, None, month, outcome.path.stem))
    if done:
        ctx.audit(EventKind.CONSOLE_INTAKE_ACCEPTED, entries=done, month=month)
    return _answer(results, len(done), "antagna", form, month=month)


def _answer(results: list[Result], done: int, key: str, form: dict, *,
            month: str = "") -> Response:
    """Back to the inbox: a redirect when all went well, else the page with each outcome
    (200 when some were done, which are then committed; 400 when none was)."""
    if all(r.error is None for r in results):
        query = urlencode({"meddelande": key, "antal": done, **({"nummer": month} if month
                                                                 else {})})
        return redirect(f"/inkorg?{query}", code=303)
    form = {**form, "ticked": set()} if done else form
    return _page(status=200 if done else 400, results=results, form=form)


# --- remisser ---------------------------------------------------------------------------------

@blueprint.post("/inkorg/remiss/<int:entry_id>")
@access.requires(REDAKTOR)
def remiss(entry_id: int) -> Response:
    """Set a remiss's answer date (`answer_by`, YYYY-MM-DD) or decline it (`state=declined`)."""
    raw = request.form.get("answer_by", "").strip()
    state = request.form.get("state", "").strip() or None
    try:
        answer_by = date.fromisoformat(raw) if raw else None
    except ValueError:
        return _page(status=400, error=_("Not a date: {value} (write YYYY-MM-DD)").format(
            value=raw))
    if state not in (None, RemissState.DECLINED, RemissState.TO_ANSWER):
        return _page(status=400, error=_("Unknown state."))
    if answer_by is None and state is None:
        return _page(status=400, error=_("Give an answer date, or decline the remiss."))
    try:
        saved = remisser.set_remiss(ctx.db(), entry_id, answer_by=answer_by, state=state)
    except InputError as exc:
        return _page(status=400, error=str(exc))
    ctx.audit(EventKind.CONSOLE_REMISS_SAVED, entry=entry_id,
              answer_by=answer_by.isoformat() if answer_by else None, state=state)
    return redirect(f"/inkorg?meddelande=remiss#remiss-{saved.entry_id}", code=303)


# --- fetching ---------------------------------------------------------------------------------

@blueprint.post("/inkorg/hamta")
@access.requires(REDAKTOR)
def fetch() -> Response:
    """Ask for the feeds to be fetched; the background sender's FetchTask does it."""
    if not ctx.settings().intake.feeds:
        raise NewsletterError(_("No feeds are configured ([[intake.feeds]] in newsletter.toml)."))
    intake.request_fetch(ctx.db(), ctx.now())
    ctx.audit(EventKind.CONSOLE_FETCH_REQUESTED)
    ctx.db().commit()  # before the background thread looks for it
    ctx.send_later()
    return redirect("/inkorg?meddelande=hamtning", code=303)
