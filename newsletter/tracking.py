"""Click counting without people: the links of a mailing go through /l/TOKEN, counted per link.

Off unless `[tracking] clicks = true`. When a mailing is created (outbox.creating.add_recipients,
after its variants are frozen and its recipients fixed), `track` numbers the web links found in its
frozen HTML (1, 2, ... in order of first appearance over all variants), stores each in
`tracked_links` with the item and priority area it belongs to, and returns the HTML and text of
every variant rewritten so that each such link points to `BASE/l/TOKEN` (the outbox package stores
them: it alone writes the mailing tables). The token is `signing.make_token(secret, "click",
"MAILING-NUMBER")`: it names the mailing and the link and nothing else, so every recipient of the
mailing gets the very same link; there is nothing in it, or in the table, that names or could single
out a person. The redirect (web/clicks.py) goes only to the URL stored for that mailing and number:
a token cannot carry a destination.

Never rewritten: anything that is not http(s) (mailto:, in-page anchors), the personal
placeholders (`__NL_UNSUBSCRIBE_URL__`, `__NL_PREFERENCES_URL__`: unsubscribe and preferences),
and the site's own archive, unsubscribe, preferences and click pages ("view in browser" is the
archive). Mailings with fewer than MIN_RECIPIENTS recipients (test copies, one-person webinar
messages) are not tracked at all: a count there would be a person.

An issue's links are mapped to items by `link_map`: each item's `url` and the links in its body.
A URL used by two items counts for the first (in the issue's order); links in the editorial,
the webinar block, targeted mailings and webinar messages count per mailing, without an item.

Failure modes: rewriting happens inside the transaction that creates the mailing, so a mailing
is either wholly tracked or not at all. If the secret key changes, old tokens stop verifying and
their links answer 404 (db.check_secret_key refuses a new key for that reason). Counting is one
UPDATE of one row (`record`); if it fails, the reader is still redirected and the count is lost.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from .content import Item, load_issue
from .errors import NewsletterError
from .models import MailingKind, TrackedLink
from .settings import Settings
from .signing import make_token, read_token

PURPOSE = "click"
# A mailing to fewer persons is not tracked: its counts would describe individuals.
MIN_RECIPIENTS = 5
# The site's own pages that are never counted: archive ("view in browser"), unsubscribe,
# preferences, and the click redirect itself.
_OWN_PAGES = ("/arkiv", "/u/", "/p/", "/l/")
_PLACEHOLDER = "__NL_"
_TOKEN_VALUE = re.compile(r"([1-9][0-9]{0,9})-([1-9][0-9]{0,5})")


@dataclass(frozen=True)
class Target:
    """What a link is about: an issue item (its id and title) and its priority area."""

    item: str | None = None
    title: str | None = None
    area: str | None = None


# --- tokens ------------------------------------------------------------------------------------

def click_token(secret: bytes, mailing_id: int, number: int) -> str:
    """The token of link NUMBER of mailing MAILING_ID: the same for every recipient."""
    return make_token(secret, PURPOSE, f"{mailing_id}-{number}")


def read_click_token(secret: bytes, token: str) -> tuple[int, int] | None:
    """(mailing id, link number) if TOKEN is a click token made with SECRET, else None."""
    value = read_token(secret, PURPOSE, token)
    match = _TOKEN_VALUE.fullmatch(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def click_url(settings: Settings, mailing_id: int, number: int) -> str:
    base = settings.organisation.base_url.rstrip("/")
    return f"{base}/l/{click_token(settings.secret_key, mailing_id, number)}"


# --- which links, and what they are about ------------------------------------------------------

@dataclass(frozen=True)
class LinkMap:
    """What the links of a mailing are about: the issue's items (none for other kinds).

    A link is attributed by where it stands in the rendered HTML: under an area's heading (the
    `id="omrade-SLUG"` anchor the issue template gives it) and an item's title (`<h3
    class="title">`), it belongs to that item and area, so that two items (in two areas) that
    link to the same page each get their own clicks. Links in the editorial and the webinar
    block belong to no item. A template without those anchors falls back to the URL: each
    item's `url` and the links in its body, a URL used by two items counting for the first.
    """

    items: tuple[Target, ...] = ()
    by_url: Mapping[str, Target] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[Item]) -> LinkMap:
        targets, by_url = [], {}
        for item in items:
            target = Target(item=item.id, title=item.title, area=item.area)
            targets.append(target)
            for url in ([item.url] if item.url else []) + list(item.body.links):
                by_url.setdefault(url, target)
        return cls(tuple(targets), by_url)

    def locate(self, html: str, base_url: str) -> list[tuple[str, Target]]:
        """Each trackable link of HTML, in order, with what it is about."""
        return [(url, target) for _match, url, target in self._walk(html, base_url)]

    def _walk(self, html: str, base_url: str) -> Iterator[tuple[re.Match[str], str, Target]]:
        by_title = {(t.area, " ".join((t.title or "").split())): t for t in self.items}
        anchored = _AREA_ANCHOR.search(html) is not None
        area: str | None = None
        item: Target | None = None
        for match in _SCAN.finditer(html):
            if match.group("h2"):
                found = _AREA_ANCHOR.search(match.group("h2"))
                area, item = (found.group(1) if found else None), None
            elif match.group("h3"):
                title = html_lib.unescape(_TAGS.sub("", match.group("title"))).strip()
                item = by_title.get((area, " ".join(title.split())))
            else:
                url = html_lib.unescape(match.group("url")).strip()
                if not is_trackable(url, base_url):
                    continue
                if not anchored:
                    target = self.by_url.get(url, Target())
                else:
                    target = item or Target(area=area)
                yield match, url, target


# An area section's heading, an item's title, a link: what the walk through the HTML looks at.
_AREA_ANCHOR = re.compile(r"""\bid\s*=\s*["']omrade-([\w-]+)["']""", re.IGNORECASE)
_SCAN = re.compile(
    r"""(?P<h2><h2\b[^>]*>)"""
    r"""|(?P<h3><h3\b[^>]*\bclass\s*=\s*["'][^"']*\btitle\b[^"']*["'][^>]*>(?P<title>.*?)</h3>)"""
    r"""|(?P<pre><(?:a|area|v:roundrect)\b[^>]*?\shref\s*=\s*)(?P<q>["'])(?P<url>.*?)(?P=q)""",
    re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")


def is_web_link(url: str) -> bool:
    """Whether URL is an absolute http(s) link: the only kind a redirect may lead to."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def is_trackable(url: str, base_url: str) -> bool:
    """Whether URL may go through /l/: a web link that is neither personal nor our own page."""
    if _PLACEHOLDER in url or not is_web_link(url):
        return False
    parts = urlsplit(url)
    base = urlsplit(base_url)
    if parts.netloc.lower() == base.netloc.lower():
        prefix, path = base.path.rstrip("/"), parts.path
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        if path in ("", "/") or path.startswith(_OWN_PAGES):
            return False
    return True


LinkKey = tuple[str, Target]  # a link of a mailing: its URL and what it is about


def rewrite(html: str, text: str, mailing_id: int, link_map: LinkMap,
            numbers: Mapping[LinkKey, int], *, secret: bytes, base_url: str) -> tuple[str, str]:
    """HTML and TEXT with each link that NUMBERS knows pointing to /l/TOKEN.

    Pure: the same input gives the same output. In the HTML, the href of each trackable link is
    replaced by the click URL of its number (LINK_MAP says what the link is about, NUMBERS
    which number that (url, target) has). In the text, rendered from the same content in the
    same order, the k-th whole occurrence of a URL (between spaces or brackets, perhaps followed
    by a punctuation mark) gets the number of the k-th occurrence in the HTML. Everything not
    trackable (placeholders, mailto:, anchors, our own pages) stays exactly as it was.
    """
    base = base_url.rstrip("/")
    order: dict[str, list[int]] = {}
    pieces: list[str] = []
    last = 0
    for match, url, target in link_map._walk(html, base_url):
        number = numbers.get((url, target))
        if number is None:
            continue
        order.setdefault(url, []).append(number)
        start, end = match.span("url")
        new = f"{base}/l/{click_token(secret, mailing_id, number)}"
        pieces += [html[last:start], html_lib.escape(new)]
        last = end
    if not order:
        return html, text
    pieces.append(html[last:])
    seen: dict[str, int] = {}

    def in_text(match: re.Match[str]) -> str:
        url = match.group(1)
        k = seen[url] = seen.get(url, -1) + 1
        numbers_of_url = order[url]
        number = numbers_of_url[min(k, len(numbers_of_url) - 1)]
        return f"{base}/l/{click_token(secret, mailing_id, number)}"

    pattern = re.compile(
        r"(?<![^\s(<\[])("
        + "|".join(re.escape(u) for u in sorted(order, key=len, reverse=True))
        + r")(?=[.,;:!?]?(?:[\s)>\]]|$))")
    return "".join(pieces), pattern.sub(in_text, text)


# --- a mailing ---------------------------------------------------------------------------------

def link_map_for(settings: Settings, kind: str, key: str) -> LinkMap:
    """What the links of a mailing of KIND and source KEY are about: an issue's items; other
    kinds have none."""
    if kind != MailingKind.ISSUE:
        return LinkMap()
    try:
        return LinkMap.from_items(load_issue(settings, key).items)
    except NewsletterError:  # the issue's files are gone: links still count, without items
        return LinkMap()


Page = tuple[str, str]  # a variant's (html, text)


def track(session: Session, settings: Settings, mailing_id: int, kind: str, key: str,
          pages: Sequence[Page], link_map: LinkMap | None = None) -> tuple[int, list[Page]]:
    """Number the links of mailing MAILING_ID's variants PAGES, store them in tracked_links and
    return (how many, PAGES rewritten). outbox.creating calls it once, in the transaction that
    creates the mailing, after its variants are frozen, and stores the rewritten pages.

    A link is a URL with what it is about (item, area): numbered 1, 2, ... in order of first
    appearance over the variants, so every variant gives the same link the same token.
    """
    base_url = settings.organisation.base_url
    link_map = link_map_for(settings, kind, key) if link_map is None else link_map
    numbers: dict[LinkKey, int] = {}
    for html, _text in pages:
        for link in link_map.locate(html, base_url):
            numbers.setdefault(link, len(numbers) + 1)
    for (url, target), number in numbers.items():
        session.add(TrackedLink(mailing_id=mailing_id, number=number, url=url, item=target.item,
                                title=target.title, area=target.area))
    rewritten = [rewrite(html, text, mailing_id, link_map, numbers, secret=settings.secret_key,
                         base_url=base_url) for html, text in pages]
    return len(numbers), rewritten


@dataclass(frozen=True)
class LinkRef:
    """A tracked link as the redirect needs it."""

    id: int
    mailing_id: int
    url: str
    area: str | None
    links_in_mailing: int


def find_link(session: Session, mailing_id: int, number: int) -> LinkRef | None:
    """Link NUMBER of MAILING_ID, or None: one indexed query, built once."""
    row = session.connection().execute(_FIND, {"mailing": mailing_id, "number": number}).first()
    if row is None:
        return None
    return LinkRef(id=row[0], mailing_id=mailing_id, url=row[1], area=row[2],
                   links_in_mailing=row[3])


_table = TrackedLink.__table__
_FIND = select(
    _table.c.id, _table.c.url, _table.c.area,
    select(func.count()).where(_table.c.mailing_id == bindparam("mailing")).scalar_subquery(),
).where(_table.c.mailing_id == bindparam("mailing"), _table.c.number == bindparam("number"))


@dataclass(frozen=True)
class Delta:
    """What one request adds to (or, undoing a scanner's earlier clicks, takes from) a link."""

    clicks: int = 0
    unique_clicks: int = 0
    readers: int = 0
    area_readers: int = 0
    scanner_hits: int = 0

    def __add__(self, other: Delta) -> Delta:
        return Delta(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[int, int, int, int, int]:
        return (self.clicks, self.unique_clicks, self.readers, self.area_readers,
                self.scanner_hits)


def record(sessions: sessionmaker[Session], deltas: Mapping[int, Delta]) -> None:
    """Add DELTAS (link id -> Delta) to the counters: one UPDATE per link, one transaction.

    A reader's click is one small write; only the request that unmasks a scanner touches the
    links it opened before.
    """
    if not deltas:
        return
    with sessions() as session, session.begin():
        connection = session.connection()  # Core, built once: the ORM's update costs ~5x
        for link_id, delta in deltas.items():
            connection.execute(_ADD, {"link": link_id, **dict(zip(_COUNTERS, delta.values(),
                                                                   strict=True))})


_COUNTERS = ("clicks", "unique_clicks", "readers", "area_readers", "scanner_hits")
_ADD = (update(_table).where(_table.c.id == bindparam("link"))
        .values({name: _table.c[name] + bindparam(name) for name in _COUNTERS}))
