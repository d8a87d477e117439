"""Issue files -> a validated Issue.

An issue is `issues/YYYY-MM/issue.md` (front matter subject, preheader, author; the body is the
editorial) and `issues/YYYY-MM/items/*.md` (one news item a file: title, area, kind, url, date,
tags, roles, order; the body is the text). Items appear in their area by `order`, then in
file-name order. Every error names the file and the field.

The writers (`write_item`, `write_issue`, `delete_item`, `reorder`) write the same files a person
writes by hand, front matter through a YAML emitter (a title with a colon, quotes, å/ä/ö or an
emoji survives), each file replaced atomically. Each takes the version (`file_version`, a hash
of the bytes) the caller read, and refuses with `ChangedOnDisk` when the file has changed since:
never a silent overwrite of someone else's edit.
"""

from __future__ import annotations

import hashlib
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

from .errors import InputError, NewsletterError, NotFound
from .files import atomic_write
from .i18n import _, shown
from .markdown import Converted, convert, safe_url
from .media import image_size
from .settings import Settings

KINDS = {
    "nyhet": "Nyhet",
    "utredning": "Utredning",
    "remiss": "Remiss",
    "rapport": "Rapport",
    "evenemang": "Evenemang",
}
ISSUE_FIELDS = ("subject", "preheader", "author")
ITEM_FIELDS = ("title", "area", "kind", "url", "date", "tags", "roles", "order")
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
    order: int | None = None  # place within its area; None: after the ordered ones, by name

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


def has_scaffold(body: Converted) -> bool:
    """Whether BODY still holds the placeholder text `issue new` / `items new` wrote."""
    return EDITORIAL_PLACEHOLDER in body.text or ITEM_PLACEHOLDER in body.text


def scaffold_sources(issue: Issue) -> list[str]:
    """The files of ISSUE (issue.md, items) whose text is still the scaffold's placeholder."""
    found = [f"{issue.source}/issue.md"] if has_scaffold(issue.editorial) else []
    return found + [item.source for item in issue.items if has_scaffold(item.body)]


def check_month(month: str) -> str:
    """MONTH if it is YYYY-MM, else an InputError."""
    if not _MONTH.fullmatch(month or ""):
        raise InputError(_("not a month: “{month}” (write YYYY-MM, e.g. 2026-12)").format(
            month=shown(month)), field="month")
    return month


def month_name(month: str) -> str:
    """'2026-12' -> 'december 2026' (Swedish, with babel)."""
    year, mon = check_month(month).split("-")
    return format_date(date(int(year), int(mon), 1), "LLLL yyyy", locale="sv_SE")


def issue_months(settings: Settings) -> list[str]:
    """The months that have an issues/YYYY-MM/issue.md in the site, newest first."""
    folder = settings.issues_dir
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir()
                   if _MONTH.match(p.name) and (p / "issue.md").is_file()), reverse=True)


def issue_dir(settings: Settings, month: str) -> Path:
    """The site's folder of MONTH, or else the package's sample copy (so `newsletter demo` works
    anywhere); NotFound if neither has it."""
    folder = settings.issues_dir / check_month(month)
    if (folder / "issue.md").is_file() or (folder / "items").is_dir():
        return folder
    packaged = Path(str(resources.files("newsletter.site_issues"))) / month
    if (packaged / "issue.md").is_file():
        return packaged
    raise NotFound(_("no issue {month}: {folder} does not exist (newsletter issue new {month})")
                   .format(month=month, folder=folder))


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay text and are checked by _date_field."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, Markdown body, line number where the body starts) of a file's TEXT."""
    match = _FRONT.match(text)
    if not match:
        raise InputError(_("no front matter: the file must start with a line “---”"), source=source,
                         line=1)
    try:
        data = yaml.load(match.group(1) or "", Loader=_Loader) or {}  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(_("front matter: {problem}").format(problem=problem), source=source,
                         line=mark.line + 2 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError(_("front matter must be “key: value” lines"), source=source, line=2)
    body_line = text[:match.end()].count("\n") + 1
    return data, text[match.end():], body_line


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(_("not UTF-8 text: save the file as UTF-8"), source=str(path)) from None


def _text_field(data: dict, key: str, source: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(_("missing {field}").format(field=key), source=source, field=key)
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError(_("{field} must be text").format(field=key), source=source, field=key)
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
        raise InputError(_("{field} must be a list, e.g. [kommunchef, kso]").format(field=key),
                         source=source, field=key)
    return tuple(str(v).strip() for v in value if str(v).strip())


def _unknown_fields(data: dict, known: tuple[str, ...], source: str) -> None:
    for key in data:
        if key not in known:
            raise InputError(_("unknown field “{field}” (known: {known})").format(
                field=shown(key), known=", ".join(known)),
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
        raise InputError(_("bad date “{value}” (write YYYY-MM-DD)").format(value=shown(value)),
                         source=source,
                         field="date") from None


def load_item(settings: Settings, path: Path) -> Item:
    """One item file, validated against the configured areas, kinds and roles."""
    data, body, _line = split_front_matter(_read(path), str(path))
    return _item(settings, data, body, path)


def _item(settings: Settings, data: dict, body: str, path: Path) -> Item:
    source = str(path)
    _unknown_fields(data, ITEM_FIELDS, source)
    title = _text_field(data, "title", source, required=True)
    area = _text_field(data, "area", source, required=True)
    if area not in settings.area_slugs:
        raise InputError(_("unknown area “{area}” (valid: {valid})").format(
            area=shown(area), valid=", ".join(settings.area_slugs)),
                         source=source, field="area")
    kind = _text_field(data, "kind", source) or "nyhet"
    if kind not in KINDS:
        raise InputError(_("unknown kind “{kind}” (valid: {valid})").format(
            kind=shown(kind), valid=", ".join(KINDS)), source=source,
                         field="kind")
    url = _text_field(data, "url", source) or None
    if url is not None and not safe_url(url):
        raise InputError(_("url must be an https:// or http:// address, not “{url}”").format(
            url=shown(url)),
                         source=source, field="url")
    if url is not None and url.lower().startswith("mailto:"):
        raise InputError(_("url must be a web address (put email addresses in the text)"),
                         source=source, field="url")
    roles = _list_field(data, "roles", source)
    for role in roles:
        if role not in settings.roles:
            raise InputError(_("unknown role “{role}” (valid: {valid})").format(
                role=shown(role), valid=", ".join(settings.roles)),
                             source=source, field="roles")
    order = data.get("order")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        raise InputError(_("order must be a whole number, not “{order}”").format(
            order=shown(order)), source=source, field="order")
    return Item(id=path.stem, source=source, title=title, area=area, kind=kind, url=url,
                date=_date_field(data, source), tags=_list_field(data, "tags", source),
                roles=frozenset(roles), body=_convert(settings, body), order=order)


def scan_issue(settings: Settings, month: str) -> tuple[Issue, list[InputError]]:
    """The issue with every valid item, and the errors of the files that are not valid."""
    folder = issue_dir(settings, month)
    errors: list[InputError] = []
    issue_file = folder / "issue.md"
    if not issue_file.is_file():
        raise NotFound(_("{path} does not exist (newsletter issue new {month})").format(
            path=issue_file, month=month))
    source = str(issue_file)
    data, body, _line = split_front_matter(_read(issue_file), source)
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
    items.sort(key=_item_order)
    issue = Issue(month=month, source=str(folder), subject=fields["subject"],
                  preheader=fields["preheader"], author=fields["author"],
                  editorial=_convert(settings, body), items=tuple(items))
    return issue, errors


def _convert(settings: Settings, text: str) -> Converted:
    """Markdown of an issue file, its images sized from the site's media/ files."""
    return convert(text, image_size=lambda src: image_size(settings, src))


def _item_order(item: Item) -> tuple[bool, int, str]:
    """Ordered items first, by `order`; the rest after them, by file name."""
    return (item.order is None, item.order or 0, item.id)


def load_issue(settings: Settings, month: str) -> Issue:
    """The issue of MONTH, validated: the first invalid file raises InputError."""
    issue, errors = scan_issue(settings, month)
    if errors:
        raise errors[0]
    if not issue.subject:
        raise InputError(_("missing subject"), source=f"{issue.source}/issue.md",
                         field="subject")
    return issue


# --- scaffolding ------------------------------------------------------------------------------

def slugify(text: str, *, max_length: int = 60, fallback: str = "nyhet") -> str:
    """A file name or link slug from a title: 'Ny remiss om strandskyddet' ->
    'ny-remiss-om-strandskyddet' (å ä ö -> a a o); FALLBACK when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or fallback


def _yaml_text(value: str) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True,
                          width=1000).strip().removesuffix("...").strip()


def _write_new(path: Path, text: str) -> None:
    """Write TEXT to a new file at PATH, refusing to overwrite (exclusive create)."""
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise InputError(_("already exists: choose another title or edit the file"),
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
             kind: str = "nyhet", order: int | None = None, day: date | None = None,
             body: str = ITEM_PLACEHOLDER, free_name: bool = False) -> Path:
    """Create a new item file in MONTH's issue (the issue too, if needed) and return its path.

    The fields are validated as `issue build` reads them before anything is written, and the
    front matter is YAML-quoted, so any title (colons, quotes, å/ä/ö) reads back as given. Never
    overwrites: with FREE_NAME the file is SLUG.md or else SLUG-2.md, SLUG-3.md ...; without it
    an existing SLUG.md is an InputError. DAY defaults to today, the day it was written, except
    for an event (kind evenemang), whose date is the event's and must be given; BODY is Markdown.
    """
    if kind == "evenemang" and day is None:
        raise InputError(_("an event needs the date it takes place: --date YYYY-MM-DD"),
                         field="--date")
    folder = settings.issues_dir / check_month(month)
    data = {"title": " ".join(title.split()), "area": area, "kind": kind, "url": url or None,
            "date": day or date.today(), "order": order}
    slug = slugify(title)
    _item(settings, data, "", folder / "items" / f"{slug}.md")  # validate before writing
    if not (folder / "issue.md").exists():
        new_issue(settings, month)
    text = item_text(data, body)
    for n in range(1, 1000 if free_name else 2):
        path = folder / "items" / (f"{slug}.md" if n == 1 else f"{slug}-{n}.md")
        try:
            _write_new(path, text)
            return path
        except InputError:
            if not free_name:
                raise
    raise InputError(_("no free file name for the item"), source=str(folder / "items"))


# --- writing files ----------------------------------------------------------------------------

class ChangedOnDisk(NewsletterError):
    """The file changed on disk since the caller read it; `current` is its text now ("" if it
    was deleted)."""

    http_status = 409

    def __init__(self, path: Path, current: str) -> None:
        super().__init__(f"{path}: changed on disk since it was opened: nothing was saved")
        self.path = path
        self.current = current


_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def file_version(path: Path) -> str:
    """A hash of PATH's bytes ("" if there is no file): what a form carries to detect edits."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


def _front_value(key: str, value: Any) -> str:
    if key == "date" and isinstance(value, date):
        return value.isoformat()
    if key == "date" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
        return str(value)
    if key == "order":
        return str(int(value))
    if isinstance(value, (list, tuple, frozenset, set)):
        return "[" + ", ".join(_yaml_text(str(v)) for v in value) + "]"
    return _yaml_text(str(value))


def _front_matter(fields: dict[str, Any], keys: tuple[str, ...]) -> str:
    lines = [f"{key}: {_front_value(key, fields[key])}" for key in keys
             if fields.get(key) not in (None, "", [], (), frozenset())]
    return "---\n" + "".join(line + "\n" for line in lines) + "---\n"


def item_text(fields: dict[str, Any], body: str) -> str:
    """An item file: FIELDS (ITEM_FIELDS, empty ones left out) as front matter, then BODY."""
    return _front_matter(fields, ITEM_FIELDS) + _body(body)


def issue_text(fields: dict[str, Any], body: str) -> str:
    """issue.md: subject, preheader (always written) and author, then the editorial BODY."""
    lines = [f"{key}: {_yaml_text(str(fields.get(key) or ''))}" for key in ISSUE_FIELDS
             if key != "author" or fields.get("author")]
    return "---\n" + "".join(line + "\n" for line in lines) + "---\n" + _body(body)


def _body(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text + "\n" if text else ""


def item_path(settings: Settings, month: str, item_id: str) -> Path:
    """The file of item ITEM_ID (a file name without .md; never a path) in MONTH."""
    if not _ITEM_ID.match(item_id or "") or ".." in item_id:
        raise NotFound(_("no item “{item}”").format(item=shown(item_id)))
    return settings.issues_dir / check_month(month) / "items" / f"{item_id}.md"


def _replace(path: Path, text: str, expected_version: str) -> None:
    """Write TEXT over PATH if it is still the version the caller read (atomic)."""
    current = file_version(path)
    if current != expected_version:
        raise ChangedOnDisk(path, path.read_text(encoding="utf-8-sig") if current else "")
    with atomic_write(path) as fh:
        fh.write(text)


def read_source(path: Path) -> tuple[dict[str, Any], str, str]:
    """(front matter, Markdown body, version) of an issue or item file, for a form."""
    text = _read(path)
    data, body, _line = split_front_matter(text, str(path))
    return data, body, file_version(path)


def write_item(settings: Settings, month: str, item_id: str | None, fields: dict[str, Any],
               body: str, *, expected_version: str = "") -> Path:
    """Create (ITEM_ID None) or replace an item file with FIELDS and BODY, validated first.

    A new item's file is named from its title, never over an existing file. An existing one is
    replaced only if it is still at EXPECTED_VERSION (else ChangedOnDisk).
    """
    folder = settings.issues_dir / check_month(month)
    if not (folder / "issue.md").is_file():
        raise NotFound(_("no issue {month}: {path} does not exist").format(
            month=month, path=folder / "issue.md"))
    fields = {key: fields.get(key) for key in ITEM_FIELDS}
    if item_id is None:
        base = slugify(fields.get("title") or "")
        path, n = folder / "items" / f"{base}.md", 1
        while path.exists():
            n += 1
            path = folder / "items" / f"{base}-{n}.md"
    else:
        path = item_path(settings, month, item_id)
        if not path.is_file():
            raise NotFound(_("{path} does not exist (deleted meanwhile?)").format(path=path))
    _item(settings, fields, body, path)  # raises InputError naming the field
    if item_id is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, item_text(fields, body))
    else:
        _replace(path, item_text(fields, body), expected_version)
    return path


def write_issue(settings: Settings, month: str, fields: dict[str, Any], body: str, *,
                expected_version: str) -> Path:
    """Replace issues/MONTH/issue.md (subject, preheader, author, editorial)."""
    path = settings.issues_dir / check_month(month) / "issue.md"
    if not path.is_file():
        raise NotFound(_("{path} does not exist (newsletter issue new {month})").format(
            path=path, month=month))
    for key in ISSUE_FIELDS:
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(_("{field} must be text").format(field=key), source=str(path),
                             field=key)
        if key == "subject" and not plain_text(value or ""):
            raise InputError(_("missing subject"), source=str(path), field="subject")
    clean = {key: plain_text(fields.get(key) or "") for key in ISSUE_FIELDS}
    _replace(path, issue_text(clean, body), expected_version)
    return path


def delete_item(settings: Settings, month: str, item_id: str, *, expected_version: str) -> None:
    """Delete an item file, if it is still the version the caller saw."""
    path = item_path(settings, month, item_id)
    current = file_version(path)
    if not current:
        raise NotFound(_("{path} does not exist").format(path=path))
    if current != expected_version:
        raise ChangedOnDisk(path, path.read_text(encoding="utf-8-sig"))
    path.unlink()


def reorder(settings: Settings, month: str, item_ids: list[str]) -> None:
    """Give ITEM_IDS the `order` 1, 2, 3... (one area's items, in their new order). Each file
    is read and rewritten at once, so only its order changes."""
    for position, item_id in enumerate(item_ids, start=1):
        path = item_path(settings, month, item_id)
        data, body, version = read_source(path)
        if data.get("order") == position:
            continue
        data["order"] = position
        _unknown_fields(data, ITEM_FIELDS, str(path))
        _replace(path, item_text(data, body), version)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!])")


def markdown_text(text: str) -> str:
    """TEXT (plain, e.g. a feed's summary) as Markdown that shows exactly that text."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    escaped = re.sub(r"^(\s*)([-+=])", r"\1\\\2", escaped, flags=re.MULTILINE)
    return re.sub(r"^(\s*\d+)([.)])", r"\1\\\2", escaped, flags=re.MULTILINE)
