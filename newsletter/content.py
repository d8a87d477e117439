"""Issue files -> a validated Issue.

An issue is `issues/YYYY-MM/issue.md` (front matter subject, preheader, author; the body is the
editorial) and `issues/YYYY-MM/items/*.md` (one news item a file: title, area, kind, url, date,
tags, roles; the body is the text). Items appear in their area in file-name order. Every error
names the file and the field.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import nh3
import yaml
from babel.dates import format_date

from .errors import InputError, NotFound
from .markdown import Converted, convert, safe_url
from .settings import Settings

KINDS = {
    "nyhet": "Nyhet",
    "utredning": "Utredning",
    "remiss": "Remiss",
    "rapport": "Rapport",
    "evenemang": "Evenemang",
}
ISSUE_FIELDS = ("subject", "preheader", "author")
ITEM_FIELDS = ("title", "area", "kind", "url", "date", "tags", "roles")
EDITORIAL_PLACEHOLDER = "Skriv månadens ledare här."
ITEM_PLACEHOLDER = "Skriv nyheten här."
# ASCII digits only, and fullmatch: "$" would let "2026-10\n" through, \d would take "２０２６".
_MONTH = re.compile(r"([1-9][0-9]{3})-(0[1-9]|1[0-2])")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Item:
    """One news item, validated; `body` is its Markdown converted (sanitised HTML and text)."""

    id: str  # the file name without .md
    source: str  # the file, for messages
    title: str
    area: str
    kind: str
    url: str | None
    date: date | None
    tags: tuple[str, ...]
    roles: frozenset[str]
    body: Converted

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class Issue:
    month: str  # YYYY-MM
    source: str  # the folder, for messages
    subject: str
    preheader: str
    author: str
    editorial: Converted
    items: tuple[Item, ...]

    @property
    def first_day(self) -> date:
        year, month = self.month.split("-")
        return date(int(year), int(month), 1)

    def items_in(self, area: str) -> list[Item]:
        return [i for i in self.items if i.area == area]


def check_month(month: str) -> str:
    """MONTH if it is YYYY-MM, else an InputError."""
    if not _MONTH.fullmatch(month or ""):
        raise InputError(f"not a month: {month!r} (write YYYY-MM, e.g. 2026-12)", field="month")
    return month


def month_name(month: str) -> str:
    """'2026-12' -> 'december 2026' (Swedish, with babel)."""
    year, mon = check_month(month).split("-")
    return format_date(date(int(year), int(mon), 1), "LLLL yyyy", locale="sv_SE")


def issue_dir(settings: Settings, month: str) -> Path:
    """The site's folder of MONTH, or else the package's sample copy (so `newsletter demo` works
    anywhere); NotFound if neither has it."""
    folder = settings.issues_dir / check_month(month)
    if (folder / "issue.md").is_file() or (folder / "items").is_dir():
        return folder
    packaged = Path(str(resources.files("newsletter.site_issues"))) / month
    if (packaged / "issue.md").is_file():
        return packaged
    raise NotFound(f"no issue {month}: {folder} does not exist (newsletter issue new {month})")


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay text and are checked by _date_field."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, Markdown body, line number where the body starts) of a file's TEXT."""
    match = _FRONT.match(text)
    if not match:
        raise InputError("no front matter: the file must start with a line '---'", source=source,
                         line=1)
    try:
        data = yaml.load(match.group(1) or "", Loader=_Loader) or {}  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"front matter: {problem}", source=source,
                         line=mark.line + 2 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("front matter must be 'key: value' lines", source=source, line=2)
    body_line = text[:match.end()].count("\n") + 1
    return data, text[match.end():], body_line


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text: save the file as UTF-8", source=str(path)) from None


def _text_field(data: dict, key: str, source: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"missing {key}", source=source, field=key)
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError(f"{key} must be text", source=source, field=key)
    return plain_text(str(value))


def plain_text(value: str) -> str:
    """VALUE as one line of plain text: pasted HTML tags (and script/style content) removed."""
    cleaned = html.unescape(nh3.clean(value, tags=set(), strip_comments=True))
    return " ".join(cleaned.split())


def _list_field(data: dict, key: str, source: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;]", value)]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise InputError(f"{key} must be a list, e.g. [kommunchef, kso]", source=source, field=key)
    return tuple(str(v).strip() for v in value if str(v).strip())


def _unknown_fields(data: dict, known: tuple[str, ...], source: str) -> None:
    for key in data:
        if key not in known:
            raise InputError(f"unknown field {key!r} (known: {', '.join(known)})",
                             source=source, field=str(key))


def _date_field(data: dict, source: str) -> date | None:
    value = data.get("date")
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"bad date {value!r} (write YYYY-MM-DD)", source=source,
                         field="date") from None


def load_item(settings: Settings, path: Path) -> Item:
    """One item file, validated against the configured areas, kinds and roles."""
    data, body, _ = split_front_matter(_read(path), str(path))
    return _item(settings, data, body, path)


def _item(settings: Settings, data: dict, body: str, path: Path) -> Item:
    source = str(path)
    _unknown_fields(data, ITEM_FIELDS, source)
    title = _text_field(data, "title", source, required=True)
    area = _text_field(data, "area", source, required=True)
    if area not in settings.area_slugs:
        raise InputError(f"unknown area {area!r} (valid: {', '.join(settings.area_slugs)})",
                         source=source, field="area")
    kind = _text_field(data, "kind", source) or "nyhet"
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r} (valid: {', '.join(KINDS)})", source=source,
                         field="kind")
    url = _text_field(data, "url", source) or None
    if url is not None and not safe_url(url):
        raise InputError(f"url must be an https:// or http:// address, not {url!r}",
                         source=source, field="url")
    if url is not None and url.lower().startswith("mailto:"):
        raise InputError("url must be a web address (put email addresses in the text)",
                         source=source, field="url")
    roles = _list_field(data, "roles", source)
    for role in roles:
        if role not in settings.roles:
            raise InputError(f"unknown role {role!r} (valid: {', '.join(settings.roles)})",
                             source=source, field="roles")
    return Item(id=path.stem, source=source, title=title, area=area, kind=kind, url=url,
                date=_date_field(data, source), tags=_list_field(data, "tags", source),
                roles=frozenset(roles), body=convert(body))


def scan_issue(settings: Settings, month: str) -> tuple[Issue, list[InputError]]:
    """The issue with every valid item, and the errors of the files that are not valid."""
    folder = issue_dir(settings, month)
    errors: list[InputError] = []
    issue_file = folder / "issue.md"
    if not issue_file.is_file():
        raise NotFound(f"{issue_file} does not exist (newsletter issue new {month})")
    source = str(issue_file)
    data, body, _ = split_front_matter(_read(issue_file), source)
    try:
        _unknown_fields(data, ISSUE_FIELDS, source)
    except InputError as exc:
        errors.append(exc)
    fields = {}
    for key in ISSUE_FIELDS:
        try:
            fields[key] = _text_field(data, key, source)
        except InputError as exc:
            errors.append(exc)
            fields[key] = ""
    items = []
    for path in sorted((folder / "items").glob("*.md")):
        try:
            items.append(load_item(settings, path))
        except InputError as exc:
            errors.append(exc)
    issue = Issue(month=month, source=str(folder), subject=fields["subject"],
                  preheader=fields["preheader"], author=fields["author"],
                  editorial=convert(body), items=tuple(items))
    return issue, errors


def load_issue(settings: Settings, month: str) -> Issue:
    """The issue of MONTH, validated: the first invalid file raises InputError."""
    issue, errors = scan_issue(settings, month)
    if errors:
        raise errors[0]
    if not issue.subject:
        raise InputError("missing subject", source=f"{issue.source}/issue.md", field="subject")
    return issue


# --- scaffolding ------------------------------------------------------------------------------

def slugify(text: str, *, max_length: int = 60) -> str:
    """A file name from a title: 'Ny remiss om strandskyddet' -> 'ny-remiss-om-strandskyddet'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "nyhet"


def _yaml_text(value: str) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True,
                          width=1000).strip().removesuffix("...").strip()


def _write_new(path: Path, text: str) -> None:
    """Write TEXT to a new file at PATH, refusing to overwrite (exclusive create)."""
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise InputError("already exists: choose another title or edit the file",
                         source=str(path)) from None


def new_issue(settings: Settings, month: str) -> Path:
    """Create issues/MONTH/issue.md and items/, listing today's areas in a comment."""
    folder = settings.issues_dir / check_month(month)
    (folder / "items").mkdir(parents=True, exist_ok=True)
    areas = "\n".join(f"#   {a.slug:<16} {a.name}" for a in settings.areas)
    kinds = ", ".join(KINDS)
    roles = ", ".join(settings.roles)
    _write_new(folder / "issue.md", f"""---
subject: {_yaml_text("Nyhetsbrev " + month_name(month))}
preheader: ""
author: ""
# Nyheterna läggs i items/, en fil per nyhet (newsletter items new --area SLUG --title TEXT).
# Prioriterade områden (area):
{areas}
# kind: {kinds}
# roles (visa bara för dessa roller): {roles}
---
{EDITORIAL_PLACEHOLDER}
""")
    return folder / "issue.md"


def new_item(settings: Settings, month: str, *, area: str, title: str, url: str | None = None,
             kind: str = "nyhet") -> Path:
    """Create items/SLUG.md in MONTH's issue (creating the issue if needed), validated."""
    folder = settings.issues_dir / check_month(month)
    if not (folder / "issue.md").exists():
        new_issue(settings, month)
    path = folder / "items" / f"{slugify(title)}.md"
    data = {"title": " ".join(title.split()), "area": area, "kind": kind, "url": url or None,
            "date": date.today()}
    _item(settings, data, "", path)  # validate before writing anything
    lines = [f"{key}: {value.isoformat() if key == 'date' else _yaml_text(str(value))}"
             for key, value in data.items() if value]
    _write_new(path, "---\n" + "\n".join(lines) + f"\n---\n{ITEM_PLACEHOLDER}\n")
    return path
