"""What `newsletter issue build|check|preview` do: write the build, lint an issue, preview it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from . import db, links
from .contacts import find_person
from .content import has_scaffold, issue_dir, scan_issue
from .errors import InputError, NotFound
from .files import PRIVATE, atomic_write
from .i18n import _, ngettext, shown
from .kinds.issue import IssueSource
from .markdown import Converted
from .media import HEAVY_BYTES, local_name, media_file
from .render import IssueRenderer, WebinarInfo
from .settings import Settings
from .sources import Content, Recipient, personalise, profile_of, recipient_for
from .webinars import upcoming

SIZE_WARNING = 90 * 1024  # Gmail clips messages at about 102 KB of HTML


def upcoming_webinars(settings: Settings, now: datetime | None = None) -> list[WebinarInfo]:
    """Scheduled webinars starting after NOW, if the database exists and is initialised."""
    url = settings.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    engine = db.make_engine(url)
    try:
        if db.current_revision(engine) != db.head_revision():
            return []
        with db.session_factory(engine)() as session:
            return upcoming(session, settings, now)
    finally:
        engine.dispose()


def build_folder(settings: Settings, month: str) -> Path:
    """Where the build of MONTH goes: the site's issue folder (never the package's copy)."""
    folder = issue_dir(settings, month)
    site_folder = settings.issues_dir / month
    return (folder if folder == site_folder else site_folder) / "build"


def _write_atomically(path: Path, text: str) -> None:
    # Private: a preview names the contact it is for, a build its author and any sample person.
    with atomic_write(path, mode=PRIVATE) as fh:
        fh.write(text)


@dataclass(frozen=True)
class Build:
    folder: Path
    content: Content
    paths: tuple[Path, ...]


def build_issue(settings: Settings, month: str,
                webinars: Sequence[WebinarInfo] = ()) -> Build:
    """Render MONTH's complete variant (every area and role) into issues/MONTH/build/."""
    source = IssueSource(settings, month, webinars)
    if not source.issue.items:
        raise InputError(_("the issue has no items (newsletter items new ...)"),
                         source=f"{source.issue.source}/items")
    renderer = source.renderer
    content = renderer.render(renderer.all_key)
    folder = build_folder(settings, month)
    manifest = {**content.manifest, "built_at": datetime.now(UTC).isoformat(
        timespec="seconds"), "area_names": {a.slug: a.name for a in settings.areas}}
    files = {
        "issue.html": content.html, "issue.txt": content.text,
        "issue.mjml": renderer.mjml(renderer.all_key),
        "manifest.json": json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
    }
    for name, text in files.items():
        _write_atomically(folder / name, text)
    return Build(folder=folder, content=content, paths=tuple(folder / n for n in files))


# --- check ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One error or warning of `issue check`, with the file (and field) it is about."""

    message: str
    source: str | None = None  # a file (or folder) of the issue
    field: str | None = None
    line: int | None = None

    @property
    def item_id(self) -> str | None:
        """The item the finding is about (its file name without .md), if it is about one."""
        if not self.source:
            return None
        path = Path(self.source)
        return path.stem if path.parent.name == "items" and path.suffix == ".md" else None

    def __str__(self) -> str:
        where = self.source or ""
        if where and self.line is not None:
            where += f":{self.line}"
        if self.field:
            where = f"{where} [{self.field}]" if where else self.field
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Report:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    html_bytes: int = 0
    items: int = 0


def _check_text(settings: Settings, report: Report, source: str, body: Converted) -> None:
    if has_scaffold(body):
        report.warnings.append(Finding(_("still has the scaffold's placeholder text"), source))
    if body.images_without_alt:
        report.warnings.append(Finding(
            ngettext("{n} image without alt text (write ![what it shows](https://...))",
                     "{n} images without alt text (write ![what it shows](https://...))",
                     body.images_without_alt).format(n=body.images_without_alt), source))
    for src, _alt in body.images:
        name = local_name(settings, src)
        if name is None:
            continue
        path = media_file(settings, name)
        if path is None:
            report.errors.append(Finding(
                _("image {name} is missing from media/").format(name=name), source))
        elif path.stat().st_size > HEAVY_BYTES:
            report.warnings.append(Finding(
                _("image {name} is {kb} KB: keep images under {limit} KB").format(
                    name=name, kb=path.stat().st_size // 1024, limit=HEAVY_BYTES // 1024),
                source))
    for link in body.links:
        if link.lower().startswith("http:"):
            report.warnings.append(Finding(_("link is not https: {link}").format(link=link),
                                           source))
    if body.raw_html_dropped:
        report.warnings.append(Finding(
            ngettext("raw HTML left out ({n} place): write Markdown instead",
                     "raw HTML left out ({n} places): write Markdown instead",
                     body.raw_html_dropped).format(n=body.raw_html_dropped), source))
    if body.unsafe_links_dropped:
        report.warnings.append(Finding(
            ngettext("{n} link or image left out: only https, http and mailto addresses are "
                     "allowed", "{n} links or images left out: only https, http and mailto "
                     "addresses are allowed", body.unsafe_links_dropped
                     ).format(n=body.unsafe_links_dropped), source))


def check_issue(settings: Settings, month: str, *,
                renderer: Callable[[], IssueRenderer] | None = None) -> Report:
    """Lint MONTH: errors (invalid files, no items, no subject, missing images) and warnings
    (see README). RENDERER, when the files are valid, gives the renderer to measure the HTML
    with (a send's own: the issue is then rendered once for the check and the mailing)."""
    issue, errors = scan_issue(settings, month)
    report = Report(errors=[Finding(e.reason, e.source, e.field, e.line) for e in errors],
                    items=len(issue.items))
    issue_file = f"{issue.source}/issue.md"
    if not issue.subject:
        report.errors.append(Finding(_("missing subject"), issue_file, "subject"))
    if not issue.items:
        report.errors.append(Finding(_("the issue has no items"), f"{issue.source}/items"))
    if not issue.preheader:
        report.warnings.append(Finding(
            _("no preheader (the line shown after the subject in the inbox)"), issue_file,
            "preheader"))
    _check_text(settings, report, issue_file, issue.editorial)
    for item in issue.items:
        if item.url and item.url.lower().startswith("http:"):
            report.warnings.append(Finding(_("link is not https: {link}").format(link=item.url),
                                           item.source, "url"))
        _check_text(settings, report, item.source, item.body)
    for area in settings.areas:
        if not issue.items_in(area.slug):
            report.warnings.append(Finding(_("area {slug} ({name}) has no items").format(
                slug=area.slug, name=area.name)))
    if issue.items:
        measured = (renderer() if renderer is not None and not report.errors
                    else IssueRenderer(settings, issue))
        report.html_bytes = len(measured.render(measured.all_key).html.encode("utf-8"))
        if report.html_bytes > SIZE_WARNING:
            report.warnings.append(Finding(
                _("the HTML is {kb} KB: Gmail clips messages over about 102 KB; keep it under "
                  "{limit} KB (shorten or move items)").format(
                    kb=f"{report.html_bytes / 1024:.0f}", limit=SIZE_WARNING // 1024)))
    return report


# --- preview ----------------------------------------------------------------------------------

def preview_issue(settings: Settings, month: str, *, session: Session | None = None,
                  email: str | None = None, webinars: Sequence[WebinarInfo] = ()) -> Path:
    """Write issues/MONTH/build/preview.html: as the contact EMAIL would get it (their areas and
    roles, their personal links), or without one the complete variant with sample values."""
    source = IssueSource(settings, month, webinars)
    if email:
        person = find_person(session, email) if session is not None else None
        if person is None:
            raise NotFound(_("no contact “{email}” (newsletter contacts list)").format(
                email=shown(email)))
        content = source.render(source.variant_of(profile_of(person)))
        recipient = recipient_for(settings, person)
    else:
        content = source.render(source.renderer.all_key)
        sample = links.archive_url(settings)
        recipient = Recipient(email="mottagare@example.se", name="Förnamn Efternamn",
                              message_id="", unsubscribe_url=sample, preferences_url=sample)
    path = build_folder(settings, month) / "preview.html"
    _write_atomically(path, personalise(content, recipient).html)
    return path


def forget_previews(settings: Settings, *names: str) -> list[Path]:
    """Erasure (`contacts forget`): delete every issues/*/build/preview.html that holds one of
    NAMES (the erased address, their public id), in any case; returns the files deleted.

    A preview made `--as` a contact holds their address, name and personal links, and stays
    until the next preview replaces it: left alone, an erased person would remain in it.
    """
    wanted = [n.casefold() for n in names if n]
    removed = []
    for path in sorted(settings.issues_dir.glob("*/build/preview.html")):
        text = path.read_text(encoding="utf-8", errors="replace").casefold()
        if any(n in text for n in wanted):
            path.unlink()
            removed.append(path)
    return removed
