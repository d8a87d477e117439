"""Issue or message -> MJML (Jinja2, autoescaped) -> HTML (mjml-python) -> CSS inlined (premailer),
plus a plain-text twin rendered from the same data: a `sources.Content`.

Rendering happens once per content variant; the personal parts are plain ASCII placeholders
(sources.PLACEHOLDERS) that the message builder replaces per recipient, a cheap last step that
never re-runs MJML or premailer.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import mjml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from premailer import Premailer

from . import branding as site_branding
from . import dates, i18n, links, media
from .assembly import Assembly, Marks, structural_css
from .content import Issue, Item, month_name
from .errors import ConfigError
from .i18n import _
from .markdown import convert
from .settings import Branding, Settings
from .sources import EMAIL, Content

WEB_KEY = "web"
MESSAGE_KEY = "message"
_MAX_KEY = 190


@dataclass(frozen=True)
class WebinarInfo:
    """An upcoming webinar as the issue shows it."""

    title: str
    starts_at: datetime  # timezone-aware
    url: str
    duration_minutes: int | None = None


class _WebinarLike(Protocol):
    title: str
    starts_at: datetime
    url: str


def _environment(settings: Settings) -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(d) for d in settings.templates_dirs]),
        autoescape=lambda name: not (name or "").endswith(".txt.j2"),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    i18n.install(env)
    return env


# MJML hides the preheader with display:none, zero size and opacity, and also paints it white;
# SpamAssassin scores that colour (HTML_FONT_LOW_CONTRAST, 0.7) and the hiding needs no colour.
_PREVIEW_COLOUR = re.compile(r'(<div style="display:none;font-size:1px;)color:#ffffff;')


def _inline_css(html: str) -> str:
    """premailer configured as PERFORMANCE.md says: keep @media and !important, no network;
    the document written back as parsed, not re-indented (MJML puts no whitespace between its
    inline-block columns, and assembly.py cuts variants from the result)."""
    html = re.sub(r"\A<!doctype html>", "<!DOCTYPE html>", html, flags=re.IGNORECASE)
    html = _PREVIEW_COLOUR.sub(r"\1", html, count=1)
    return Premailer(html, keep_style_tags=True, strip_important=False, allow_network=False,
                     disable_validation=True, cssutils_logging_level=logging.CRITICAL
                     ).transform(pretty_print=False)


def _compile(env: Environment, name: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(MJML source, HTML, text before _tidy_text) of template NAME (.mjml.j2 and its .txt.j2
    twin)."""
    source = env.get_template(f"email/{name}.mjml.j2").render(context)
    try:
        compiled = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:  # MRML reports template mistakes as ValueError
        raise ConfigError(_("templates/email/{name}.mjml.j2: MJML does not compile: {reason}"
                            ).format(name=name, reason=exc)) from None
    text = env.get_template(f"email/{name}.txt.j2").render(context)
    return source, _inline_css(compiled), text


def _tidy_text(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{4,}", "\n\n\n", text).strip("\n") + "\n"


def _frame(settings: Settings, *, subject: str, preheader: str, heading: str,
           web_url: str | None, personal: bool, why: str,
           branding: Branding | None = None) -> dict[str, Any]:
    # The branding as saved now (branding.py), not as it was when this process started.
    branding = branding or site_branding.current(settings)
    return {
        "org": settings.organisation, "subject": subject, "preheader": preheader,
        "heading": heading, "web_url": web_url, "web_label": "Läs i webbläsaren",
        "personal": personal, "why": why, "archive_url": links.archive_url(settings),
        "transactional": False, "cancel_url": "",
        "brand": branding.colour, "logo": media.logo(settings, branding),
    }


def _why(settings: Settings, what: str) -> str:
    return (f"Du får {what} eftersom du finns med som kontaktperson hos "
            f"{settings.organisation.name} eller i en av dess medlemskommuner. "
            f"Det skickades till {EMAIL}.")


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url).removeprefix("www.")


def _roles_label(settings: Settings, roles: frozenset[str]) -> str:
    names = [name for slug, name in settings.roles.items() if slug in roles]
    return "Till: " + ", ".join(names) if names else ""


def _item_view(settings: Settings, item: Item) -> dict[str, Any]:
    return {
        "id": item.id, "title": item.title, "kind_label": item.kind_label,
        "date_label": dates.day(item.date) if item.date else "",
        "roles_label": _roles_label(settings, item.roles), "html": Markup(item.body.html),
        "text": item.body.text, "url": item.url, "host": _host(item.url) if item.url else "",
    }


def _webinar_view(settings: Settings, webinar: _WebinarLike) -> dict[str, Any]:
    tz, start = dates.zone(settings), webinar.starts_at
    minutes = getattr(webinar, "duration_minutes", None)
    when = (dates.span(start, start + timedelta(minutes=minutes), tz) if minutes
            else dates.moment(start, tz))
    return {"title": webinar.title, "url": webinar.url, "when": when[:1].upper() + when[1:]}


class IssueRenderer:
    """Renders one issue's content variants, each once (cached by key).

    The complete issue (every area, every item in every form it can take) is rendered once
    through Jinja, MJML and premailer with its optional pieces marked (assembly.py); each
    variant is then cut from it, a string join. A template without the marks, or CSS that
    depends on an element's neighbours, makes each variant a render of its own instead.
    """

    def __init__(self, settings: Settings, issue: Issue,
                 upcoming_webinars: Sequence[_WebinarLike] = ()) -> None:
        self.settings = settings
        self.issue = issue
        self.webinars = tuple(upcoming_webinars)
        self._env = _environment(settings)
        self._cache: dict[str, Content] = {}
        self._keys: dict[tuple[frozenset[str] | None, frozenset[str]], str] = {}
        self._parsed: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
        self._wholes: dict[bool, _Whole | None] = {}
        self._views: dict[str, dict[str, Any]] = {}

    def _visible(self, item: Item, areas: Iterable[str] | None, roles: frozenset[str]) -> bool:
        return ((areas is None or item.area in areas)
                and (not item.roles or bool(item.roles & roles)))

    def variant_key(self, areas: frozenset[str] | None, roles: frozenset[str]) -> str:
        """The key of the content a person with AREAS (None = all) and ROLES gets.

        Persons who would see the same items share a key: the areas listed are those with
        something to show, the roles those that unlock a role-restricted item shown.
        Remembered per (areas, roles): asking again for the next person costs a lookup.
        """
        asked = (None if areas is None else frozenset(areas), frozenset(roles))
        key = self._keys.get(asked)
        if key is None:
            areas, roles = asked
            visible = [i for i in self.issue.items if self._visible(i, areas, roles)]
            shown = tuple(a.slug for a in self.settings.areas
                          if any(i.area == a.slug for i in visible))
            unlocked = frozenset(r for i in visible for r in (i.roles & roles))
            key = f"areas={'+'.join(shown)};roles={'+'.join(sorted(unlocked))}"
            if len(key) > _MAX_KEY:
                key = "v-" + hashlib.sha256(key.encode()).hexdigest()[:32]
            self._parsed[key] = (shown, unlocked)
            self._keys[asked] = key
        return key

    def _parse_key(self, key: str) -> tuple[tuple[str, ...], frozenset[str]]:
        if key in self._parsed:
            return self._parsed[key]
        match = re.fullmatch(r"areas=([\w+-]*);roles=([\w+-]*)", key)
        if not match:
            raise KeyError(f"unknown variant key {key!r}: get keys from variant_key()")
        return (tuple(a for a in match.group(1).split("+") if a),
                frozenset(r for r in match.group(2).split("+") if r))

    @property
    def all_key(self) -> str:
        """The variant with every area and every role-restricted item (what `issue build` shows)."""
        return self.variant_key(None, frozenset(self.settings.roles))

    def render(self, key: str) -> Content:
        """The rendered variant KEY, with personal placeholders; made once, then cached."""
        if key == WEB_KEY:
            return self.web_version()
        if key not in self._cache:
            areas, roles = self._parse_key(key)
            self._cache[key] = self._variant(key, self._plan(areas, roles), personal=True)
        return self._cache[key]

    def web_version(self) -> Content:
        """The public archive version: all areas, no role-restricted items, nothing personal."""
        if WEB_KEY not in self._cache:
            self._cache[WEB_KEY] = self._variant(WEB_KEY, self._plan(None, frozenset()),
                                                 personal=False)
        return self._cache[WEB_KEY]

    def render_alone(self, key: str) -> Content:
        """Variant KEY (or WEB_KEY) rendered on its own through Jinja, MJML and premailer, not
        cut from the complete issue: what `render` must equal, byte for byte (the tests
        compare them), and what it does when the templates carry no marks."""
        plan, personal = self._key_plan(key)
        return self._render_alone(key, plan, personal)

    def mjml(self, key: str) -> str:
        """The MJML source of variant KEY on its own (for `issue build`): Jinja only."""
        plan, personal = self._key_plan(key)
        context = self._context(self._sections(plan, Marks(False)), personal, Marks(False))
        return self._env.get_template("email/issue.mjml.j2").render(context)

    def _key_plan(self, key: str) -> tuple[_Plan, bool]:
        if key == WEB_KEY:
            return self._plan(None, frozenset()), False
        return self._plan(*self._parse_key(key)), True

    def _plan(self, areas: Iterable[str] | None, roles: frozenset[str]) -> _Plan:
        """The areas a variant shows, in order, each with the items it shows there."""
        plan = []
        for area in self.settings.areas:
            items = [i for i in self.issue.items_in(area.slug) if self._visible(i, areas, roles)]
            if items:
                plan.append((area, [(item, n == 0) for n, item in enumerate(items)]))
        return plan

    def _complete(self) -> _Plan:
        """Every area with items, each item in every form a variant can show it in: as the
        area's first item (when only role-restricted items come before it) and as a later one."""
        plan = []
        for area in self.settings.areas:
            items = self.issue.items_in(area.slug)
            forms = []
            for n, item in enumerate(items):
                if all(earlier.roles for earlier in items[:n]):
                    forms.append((item, True))
                if n:
                    forms.append((item, False))
            if forms:
                plan.append((area, forms))
        return plan

    def _variant(self, key: str, plan: _Plan, *, personal: bool) -> Content:
        whole = self._whole(personal)
        if whole is None:
            return self._render_alone(key, plan, personal)
        keep = {("toc",) if plan else ("empty",)}
        counts = {}
        for area, entries in plan:
            keep.update({("area", area.slug), ("toc", area.slug)})
            keep.update(("item", item.id, first) for item, first in entries)
            counts[area.slug] = len(entries)
        html = whole.html.build(keep.__contains__, counts)
        text = _tidy_text(whole.text.build(keep.__contains__, counts))
        return self._content(key, plan, html, text)

    def _whole(self, personal: bool) -> _Whole | None:
        """The complete issue rendered once with its pieces marked, split for assembly; None
        if the templates do not mark them all or the CSS depends on neighbours."""
        if personal not in self._wholes:
            marks = Marks()
            context = self._context(self._sections(self._complete(), marks), personal, marks)
            _source, html, text = _compile(self._env, "issue", context)
            whole = None
            if not structural_css(html):
                assembled_html = Assembly.parse(html, marks)
                assembled_text = Assembly.parse(text, marks, skip=lambda name: name[0] == "toc")
                if assembled_html and assembled_text:
                    whole = _Whole(assembled_html, assembled_text)
            self._wholes[personal] = whole
        return self._wholes[personal]

    def _render_alone(self, key: str, plan: _Plan, personal: bool) -> Content:
        marks = Marks(False)
        context = self._context(self._sections(plan, marks), personal, marks)
        _source, html, text = _compile(self._env, "issue", context)
        return self._content(key, plan, html, _tidy_text(text))

    def _view(self, item: Item) -> dict[str, Any]:
        if item.id not in self._views:
            self._views[item.id] = _item_view(self.settings, item)
        return self._views[item.id]

    def _sections(self, plan: _Plan, marks: Marks) -> list[dict[str, Any]]:
        sections = []
        for area, entries in plan:
            piece, toc = marks.piece(("area", area.slug)), marks.piece(("toc", area.slug))
            views = []
            for item, first in entries:
                mark = marks.piece(("item", item.id, first))
                views.append({**self._view(item), "first": first,
                              "begin": mark.begin, "end": mark.end})
            sections.append({
                "slug": area.slug, "name": area.name, "anchor": f"omrade-{area.slug}",
                "entries": views, "count": marks.count(area.slug, len(entries)),
                "begin": piece.begin, "end": piece.end,
                "toc_begin": toc.begin, "toc_end": toc.end})
        return sections

    def _context(self, sections: list[dict[str, Any]], personal: bool,
                 marks: Marks) -> dict[str, Any]:
        settings, issue = self.settings, self.issue
        context = _frame(settings, subject=issue.subject, preheader=issue.preheader,
                         heading=self._heading, web_url=links.archive_url(settings, issue.month),
                         personal=personal,
                         why=_why(settings, "nyhetsbrevet") if personal else
                         f"Det här är webbversionen av {settings.organisation.name}s "
                         f"nyhetsbrev för {month_name(issue.month)}.")
        if not personal:
            context["web_url"] = None
        context.update(
            editorial_html=Markup(issue.editorial.html), editorial_text=issue.editorial.text,
            author=issue.author, sections=sections,
            show_toc=bool(sections), show_empty=marks.on or not sections,
            toc=marks.piece(("toc",)), empty=marks.piece(("empty",)),
            webinars=[_webinar_view(settings, w) for w in self.webinars])
        return context

    @property
    def _heading(self) -> str:
        return f"Nyhetsbrev {month_name(self.issue.month)}"

    def _content(self, key: str, plan: _Plan, html: str, text: str) -> Content:
        settings, issue = self.settings, self.issue
        shown = {item.id for _area, entries in plan for item, _first in entries}
        manifest = {
            "month": issue.month, "subject": issue.subject, "preheader": issue.preheader,
            "variant": key, "heading": self._heading,
            "areas": [{"slug": area.slug, "name": area.name,
                       "items": [item.id for item, _first in entries]}
                      for area, entries in plan],
            "items": [_item_manifest(settings, i) for i in issue.items if i.id in shown],
            "webinars": [{"title": w.title, "starts_at": w.starts_at.isoformat(), "url": w.url}
                         for w in self.webinars],
            "html_bytes": len(html.encode("utf-8")),
        }
        return Content(subject=issue.subject, preheader=issue.preheader, html=html, text=text,
                       key=key, manifest=manifest)


@dataclass(frozen=True)
class _Whole:
    """The complete issue split for assembly: its HTML and its text (before _tidy_text)."""

    html: Assembly
    text: Assembly


# A variant's plan: the areas it shows, in order, each with (item, shown first in its area).
_Plan = list[tuple[Any, list[tuple[Item, bool]]]]


def _item_manifest(settings: Settings, item: Item) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "area": item.area,
            "area_name": settings.area_name(item.area), "kind": item.kind, "url": item.url,
            "date": item.date.isoformat() if item.date else None, "roles": sorted(item.roles)}


def render_message(settings: Settings, *, subject: str, body_markdown: str,
                   preheader: str = "", action: tuple[str, str] | None = None,
                   transactional: bool = False, cancel_url: str | None = None,
                   why: str | None = None, branding: Branding | None = None) -> Content:
    """A targeted mailing or webinar message: BODY_MARKDOWN in the same frame as the issue.

    ACTION (label, URL) is a button after the body. A TRANSACTIONAL message answers something
    the person asked for (a webinar registration): its footer keeps the newsletter's unsubscribe
    link, small, and offers CANCEL_URL (e.g. cancel my registration) when there is one. WHY
    replaces the footer's line on why the person gets it (a sign-up's confirmation goes to
    someone who may not be a contact yet). BRANDING: another than the site's (the console's
    sample of a colour not saved yet).
    """
    body = convert(body_markdown)
    org = settings.organisation.name
    why = why or (_("You get this email because you registered for a webinar of {org}. It was sent "
             "to {email}.") if transactional else
           _("You get this email because you are listed as a contact of {org} or of one of its "
             "member municipalities. It was sent to {email}.")).format(org=org, email=EMAIL)
    context = _frame(settings, subject=subject, preheader=preheader, heading=subject,
                     web_url=None, personal=True, why=why, branding=branding)
    context.update(body_html=Markup(body.html), body_text=body.text,
                   action_label=action[0] if action else "",
                   action_url=action[1] if action else "",
                   transactional=transactional, cancel_url=cancel_url or "")
    _source, html, text = _compile(_environment(settings), "message", context)
    return Content(subject=subject, preheader=preheader, html=html, text=_tidy_text(text),
                   key=MESSAGE_KEY,
                   manifest={"subject": subject})
