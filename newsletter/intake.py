"""Omvärldsbevakning: the configured feeds fetched into the inbox of intake entries.

`fetch_feeds` fetches each `[[intake.feeds]]` (RSS 2.0 or Atom, parsed by feedparser) through
fetcher.fetch, keeps every entry once (by its GUID and by its canonical URL, across feeds and
fetches), with its title and summary as sanitised plain text, a suggested area
(classify.Classifier) and, for a feed of kind remiss, a Remiss row with the answer date when the
entry states it (remisser.py looks for it on the remiss page otherwise). `fetch_due` is what the
worker calls each round: the feeds whose `[intake] interval` has passed, or every feed when
someone asked for a fetch (`request_fetch`: the console's "fetch now", which records the wish
in `site_meta` and answers at once; the console's background thread takes it with
`fetch_if_requested`, whichever of the two comes first).

Failure modes: a feed that cannot be fetched (see fetcher.py) or is not a feed at all fails
alone with a one-line reason in its FeedReport and in `intake_feeds.last_error`; its validators
are kept, so the next fetch asks again, and the other feeds go on. A feed that is malformed but
still yields entries (feedparser's lenient parser) or whose declared charset was wrong is
stored with a warning. The database is written per feed in a transaction of its own after the
network is done with, so nothing already stored is ever lost and no lock is held while a server
makes us wait. SESSION is committed by these functions: hand them one with nothing pending.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import classify, fetcher, remisser
from .content import KINDS, plain_text
from .errors import ConfigError, NewsletterError, NotFound
from .i18n import _, ngettext, shown
from .markdown import safe_url
from .models import IntakeEntry, IntakeFeed, Remiss, SiteMeta, utcnow
from .settings import CONFIG_NAME, Feed, Settings

FETCH_REQUEST = "intake:fetch-requested"  # site_meta key: someone asked for a fetch, and when
MAX_SUMMARY = 2000  # characters of a summary kept
MAX_TITLE = 500
_MOJIBAKE = ("Ã¥", "Ã¤", "Ã¶", "Ã…", "Ã„", "Ã–", "Ã©", "â€")


class FeedError(NewsletterError):
    """What came back is not a feed we can read; the message says why in one line."""


@dataclass
class FeedReport:
    """How fetching one feed went."""

    name: str
    status: str  # "ok", "not-modified" or "error"
    new: int = 0
    duplicates: int = 0
    skipped: int = 0  # entries with neither a GUID nor a usable link
    error: str | None = None
    warning: str | None = None
    seconds: float = 0.0
    new_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedEntry:
    guid: str | None
    url: str | None
    title: str
    summary: str
    published_at: datetime | None


def configured_feeds(settings: Settings, names: list[str] | None = None) -> list[Feed]:
    """The feeds of newsletter.toml (those NAMES only, if given), their kinds checked."""
    for i, feed in enumerate(settings.intake.feeds):
        if feed.kind not in KINDS:
            raise ConfigError(_("{file}: intake.feeds[{i}].kind: unknown kind “{kind}” (valid: "
                                "{valid})").format(file=CONFIG_NAME, i=i, kind=shown(feed.kind),
                                                   valid=", ".join(KINDS)))
    if not names:
        return list(settings.intake.feeds)
    known = {f.name: f for f in settings.intake.feeds}
    for name in names:
        if name not in known:
            raise NotFound(_("no feed “{name}” in [[intake.feeds]] (configured: {names})")
                           .format(name=name, names=", ".join(known) or _("none")))
    return [known[n] for n in names]


# --- one fetch ----------------------------------------------------------------------------------

def fetch_feeds(session: Session, settings: Settings, names: list[str] | None = None, *,
                now: datetime | None = None) -> list[FeedReport]:
    """Fetch the feeds (all, or NAMES), store what is new, then look up the answer dates of
    remisser that lack one. One FeedReport per feed, in order; never raises for one feed."""
    feeds = configured_feeds(settings, names)
    now = now or utcnow()
    reports = []
    classifier: classify.Classifier | None = None
    for feed in feeds:
        state = _state(session, feed)
        etag, modified = state.etag, state.last_modified
        session.commit()  # hold no transaction while another server makes us wait
        started = time.monotonic()
        report = FeedReport(feed.name, "ok")
        try:
            resp = fetcher.fetch(settings, feed.url, etag=etag, last_modified=modified)
            parsed = None if resp.not_modified else parse_feed(resp.body, resp.headers, resp.url)
        except NewsletterError as exc:
            state = _state(session, feed)
            state.checked_at, state.last_error = now, str(exc)
            session.commit()
            report.status, report.error = "error", str(exc)
            report.seconds = time.monotonic() - started
            reports.append(report)
            continue
        if parsed is None:
            report.status = "not-modified"
        else:
            entries, report.warning = parsed
            if classifier is None:
                classifier = classify.Classifier.for_site(session, settings)
            _store(session, feed, entries, classifier, now, report)
        state = _state(session, feed)
        state.checked_at, state.ok_at, state.last_error = now, now, report.warning
        if parsed is not None:
            state.etag = resp.headers.get("etag")
            state.last_modified = resp.headers.get("last-modified")
        session.commit()
        report.seconds = time.monotonic() - started
        reports.append(report)
    remisser.find_answer_dates(session, settings, now=now)
    return reports


def fetch_due(session: Session, settings: Settings, now: datetime) -> list[FeedReport]:
    """Fetch the feeds not tried for `[intake] interval` minutes (for the worker, each round).
    A failed feed is tried again after the interval too, not at every round."""
    interval = timedelta(minutes=settings.intake.interval_minutes)
    asked = _take_request(session)
    due = []
    for feed in configured_feeds(settings):
        state = session.scalar(select(IntakeFeed).where(IntakeFeed.name == feed.name))
        if asked or state is None or state.checked_at is None \
                or now - state.checked_at >= interval or state.url != feed.url:
            due.append(feed.name)
    session.commit()
    return fetch_feeds(session, settings, due, now=now) if due else []


def request_fetch(session: Session, now: datetime | None = None) -> None:
    """Ask for every feed to be fetched soon, in the caller's transaction (a request that must
    not wait on the feeds records this and answers; see the module's text)."""
    stamp = (now or utcnow()).astimezone(UTC).isoformat()
    row = session.get(SiteMeta, FETCH_REQUEST)
    if row is None:
        session.add(SiteMeta(key=FETCH_REQUEST, value=stamp))
    # An earlier wish not taken yet stands: its time says how long it has waited.


def fetch_requested(session: Session) -> datetime | None:
    """When a fetch was asked for that nobody has taken yet, or None."""
    value = session.scalar(select(SiteMeta.value).where(SiteMeta.key == FETCH_REQUEST))
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def fetch_if_requested(session: Session, settings: Settings, *,
                       now: datetime | None = None) -> list[FeedReport] | None:
    """Fetch every feed if someone asked for it (and take the wish, so that only one process
    acts on it); None if nobody asked. Commits SESSION, as fetch_feeds does."""
    asked = _take_request(session)
    session.commit()
    return fetch_feeds(session, settings, now=now) if asked else None


def feed_states(session: Session, settings: Settings) -> list[tuple[Feed, IntakeFeed | None]]:
    """Each configured feed with how its last fetch went (None: never fetched)."""
    states = {f.name: f for f in session.scalars(select(IntakeFeed))}
    return [(feed, states.get(feed.name)) for feed in settings.intake.feeds]


def _take_request(session: Session) -> bool:
    return session.execute(delete(SiteMeta).where(SiteMeta.key == FETCH_REQUEST)
                           .execution_options(synchronize_session=False)).rowcount > 0


def _state(session: Session, feed: Feed) -> IntakeFeed:
    state = session.scalar(select(IntakeFeed).where(IntakeFeed.name == feed.name))
    if state is None:
        state = IntakeFeed(name=feed.name, url=feed.url)
        session.add(state)
        session.flush()
    elif state.url != feed.url:  # another address: the validators were for the old one
        state.url, state.etag, state.last_modified = feed.url, None, None
    return state


# --- parsing ------------------------------------------------------------------------------------

def parse_feed(body: bytes, headers: dict[str, str], url: str,
               ) -> tuple[list[ParsedEntry], str | None]:
    """The entries of an RSS or Atom document, and a warning if it was not quite right.
    FeedError when it is not a feed at all."""
    parsed = feedparser.parse(body, response_headers={
        "content-type": headers.get("content-type", "application/xml"),
        "content-location": url})
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    warning = None
    if problem is not None:
        reason = " ".join(str(problem).split())[:200]
        if isinstance(problem, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType):
            warning = _("not quite right: {reason}").format(reason=reason)
        elif parsed.entries:
            warning = ngettext("malformed XML ({reason}); read {n} entry leniently",
                               "malformed XML ({reason}); read {n} entries leniently",
                               len(parsed.entries)).format(reason=reason, n=len(parsed.entries))
        else:
            raise FeedError(_("not a readable feed: malformed XML ({reason})")
                            .format(reason=reason))
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(_("not an RSS or Atom feed"))
    return [_entry(e, url) for e in parsed.entries], warning


def _entry(raw, base: str) -> ParsedEntry:
    link = raw.get("link")
    url = urljoin(base, link.strip()) if isinstance(link, str) and link.strip() else None
    if url and (not safe_url(url) or urlsplit(url).scheme.lower() not in ("http", "https")):
        url = None
    guid = raw.get("id")
    guid = guid.strip()[:2000] if isinstance(guid, str) and guid.strip() else None
    summary = raw.get("summary") or ""
    if not summary and raw.get("content"):
        summary = raw["content"][0].get("value", "")
    stamp = raw.get("published_parsed") or raw.get("updated_parsed")
    published = datetime(*stamp[:6], tzinfo=UTC) if stamp else None
    title = _repair(plain_text(raw.get("title") or ""))[:MAX_TITLE]
    return ParsedEntry(guid=guid, url=url, title=title,
                       summary=_shorten(_repair(plain_text(summary)), MAX_SUMMARY),
                       published_at=published)


def _repair(text: str) -> str:
    """UTF-8 read as Latin-1 or Windows-1252 (a feed that declares the wrong charset), undone."""
    if not any(m in text for m in _MOJIBAKE):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + " …"


def canonical_url(url: str) -> str:
    """URL as a key: https, host in lower case, no default port, no fragment or tracking
    parameters, no trailing slash. Two links to the same page get the same key."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not k.lower().startswith("utm_")))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))


def _key(value: str | None) -> str | None:
    return hashlib.sha256(value.encode("utf-8")).hexdigest() if value else None


# --- storing ------------------------------------------------------------------------------------

def _store(session: Session, feed: Feed, entries: list[ParsedEntry],
           classifier: classify.Classifier, now: datetime, report: FeedReport) -> None:
    for parsed in entries:
        guid_key = _key(parsed.guid)
        url_key = _key(canonical_url(parsed.url)) if parsed.url else None
        if not (guid_key or url_key) or not parsed.title:
            report.skipped += 1
            continue
        keys = [k for k in (IntakeEntry.guid_key == guid_key if guid_key else None,
                            IntakeEntry.url_key == url_key if url_key else None) if k is not None]
        if session.scalar(select(IntakeEntry.id).where(or_(*keys)).limit(1)) is not None:
            report.duplicates += 1
            continue
        suggestion = classifier.suggest(parsed.title, parsed.summary)
        entry = IntakeEntry(
            feed=feed.name, kind=feed.kind, guid_key=guid_key, url_key=url_key,
            guid=parsed.guid, url=parsed.url, title=parsed.title, summary=parsed.summary,
            published_at=parsed.published_at, fetched_at=now, suggested_area=suggestion.area,
            score=suggestion.score, reason=suggestion.reason)
        try:
            with session.begin_nested():
                session.add(entry)
                session.flush()
                if feed.kind == "remiss":
                    answer_by = remisser.parse_answer_date(parsed.summary)
                    session.add(Remiss(entry_id=entry.id, answer_by=answer_by,
                                       answer_by_source="entry" if answer_by else None))
        except IntegrityError:  # stored meanwhile by another fetch (the worker, say)
            report.duplicates += 1
            continue
        report.new += 1
        report.new_ids.append(entry.id)
