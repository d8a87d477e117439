"""/nummer/YYYY-MM: an issue's page: subject, preheader, author and editorial (with a preview
beside it), the items by priority area with their order, and `issue check`'s findings.

The files under issues/ are the only copy of the content: every page reads them afresh (so an
edit made on disk shows at once) and every save writes them through content.py's writers, which
refuse to overwrite a file that changed since the form was opened.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, redirect, request
from werkzeug.datastructures import FileStorage

from .. import content, issue_build, media, review
from ..errors import InputError, NewsletterError, NotFound
from ..events import EventKind
from ..i18n import _
from ..markdown import convert
from ..models import MailingKind
from ..staff import REDAKTOR
from . import access, workflow
from . import context as ctx
from .media_view import local_media

blueprint = Blueprint("compose", __name__)


def _notice(key: str) -> str | None:
    """The confirmation a redirect's ?meddelande=KEY asks for, in the site's language (looked up
    here, per request: a dict built at import would speak the language active at import)."""
    return {"sparat": _("Saved."), "ny": _("The issue was created."),
            "raderad": _("The item was deleted."), "ordning": _("The order was saved.")}.get(key)


def checked_month(month: str) -> str:
    try:
        return content.check_month(month)
    except InputError:
        abort(404)


def image_markdown(upload: FileStorage | None, alt: str) -> tuple[str, Path | None]:
    """("![alt](url)", stored file) for an uploaded image, or ("", None) when none was sent.
    Alt text is required: an image without one is refused before anything is stored."""
    if upload is None or not upload.filename:
        return "", None
    alt = " ".join((alt or "").split())
    if not alt:
        raise InputError(_("describe the image for those who cannot see it"), field="image_alt")
    stored = media.store_upload(ctx.settings(), upload.read(ctx.settings().console
                                                            .max_upload_bytes + 1))
    escaped = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{escaped}]({stored.url})", ctx.settings().media_dir / stored.name


def with_image(body: str, markdown: str) -> str:
    return f"{body.rstrip()}\n\n{markdown}\n" if markdown else body


def findings_by_item(report: issue_build.Report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in [*report.errors, *report.warnings]:
        if finding.item_id:
            counts[finding.item_id] = counts.get(finding.item_id, 0) + 1
    return counts


def _broken_items(month: str, errors: list[InputError]) -> list[tuple[str, str]]:
    """(item id, error) of the item files that do not validate: listed so they can be fixed."""
    out = []
    for error in errors:
        path = Path(error.source or "")
        if path.parent.name == "items":
            out.append((path.stem, str(error.reason)))
    return out


def issue_page(month: str, *, status: int = 200, form: dict | None = None,
               errors: dict | None = None, conflict: str | None = None,
               version: str | None = None, workflow_error: str | None = None,
               workflow_form: dict | None = None) -> Response:
    """The issue page; WORKFLOW_ERROR: why the last review or send step was refused."""
    settings = ctx.settings()
    path = settings.issues_dir / month / "issue.md"
    if not path.is_file():
        return ctx.page("issue_missing.html", status=404, month=month)
    data, body, disk_version = content.read_source(path)
    if form is None:
        form = {"subject": str(data.get("subject") or ""),
                "preheader": str(data.get("preheader") or ""),
                "author": str(data.get("author") or ""), "body": body}
    issue, load_errors = content.scan_issue(settings, month)
    report = issue_build.check_issue(settings, month)
    areas = [(area, issue.items_in(area.slug)) for area in settings.areas]
    return ctx.page(
        "issue.html", status=status, month=month, form=form, errors=errors or {},
        version=version or disk_version, conflict=conflict, areas=areas,
        broken=_broken_items(month, load_errors), report=report,
        item_findings=findings_by_item(report),
        workflow=workflow.panel(ctx.db(), review.Ref(MailingKind.ISSUE, month),
                                f"/nummer/{month}", error=workflow_error, form=workflow_form),
        editorial_html=local_media(convert(form["body"]).html), kinds=content.KINDS,
        notice=_notice(request.args.get("meddelande", "")))


@blueprint.post("/nummer/")
@access.requires(REDAKTOR)
def new_month() -> Response:
    month = (request.form.get("month") or "").strip()
    try:
        content.check_month(month)
        path = content.new_issue(ctx.settings(), month)
    except InputError as exc:
        if (ctx.settings().issues_dir / month / "issue.md").is_file():
            return redirect(f"/nummer/{month}", code=303)
        raise InputError(str(exc.reason), field="month") from None
    ctx.audit(EventKind.CONSOLE_ISSUE_CREATED, month=month, file=path.name)
    return redirect(f"/nummer/{month}?meddelande=ny", code=303)


@blueprint.get("/nummer/<month>")
@access.requires(REDAKTOR)
def show(month: str) -> Response:
    return issue_page(checked_month(month))


@blueprint.post("/nummer/<month>")
@access.requires(REDAKTOR)
def save(month: str) -> Response:
    """Save issue.md; `action=preview` only shows the editorial's preview, saving nothing."""
    month = checked_month(month)
    form = {key: request.form.get(key, "") for key in ("subject", "preheader", "author", "body")}
    version = request.form.get("version", "")
    if request.form.get("action") == "preview":
        return issue_page(month, form=form, version=version)
    stored = None
    try:
        markdown, stored = image_markdown(request.files.get("image"),
                                          request.form.get("image_alt", ""))
        form["body"] = with_image(form["body"], markdown)
        content.write_issue(ctx.settings(), month, form, form["body"],
                            expected_version=version)
    except content.ChangedOnDisk as exc:
        _discard(stored)
        return issue_page(month, status=409, form=form, conflict=exc.current,
                          version=content.file_version(exc.path))
    except InputError as exc:
        _discard(stored)
        return issue_page(month, status=400, form=form, version=version,
                          errors={exc.field or "body": exc.reason})
    ctx.audit(EventKind.CONSOLE_ISSUE_SAVED, month=month, image=stored.name if stored else None)
    return redirect(f"/nummer/{month}?meddelande=sparat", code=303)


def _discard(stored: Path | None) -> None:
    if stored is not None:
        stored.unlink(missing_ok=True)


@blueprint.post("/nummer/<month>/ordning")
@access.requires(REDAKTOR)
def move(month: str) -> Response:
    """Move an item up or down within its area (`item`, `direction`), or set a whole area's
    order (`ids`: the area's item ids in their new order, as the script sends it)."""
    month = checked_month(month)
    settings = ctx.settings()
    issue, _errors = content.scan_issue(settings, month)
    by_id = {item.id: item for item in issue.items}
    ids = request.form.getlist("ids")
    if ids:
        if not ids or any(i not in by_id for i in ids) or len(set(ids)) != len(ids):
            raise InputError(_("unknown items"), field="ids")
        area = by_id[ids[0]].area
        siblings = [i.id for i in issue.items_in(area)]
        if sorted(siblings) != sorted(ids):
            raise InputError(_("the list is not one area's items"), field="ids")
        order = ids
    else:
        item = by_id.get(request.form.get("item", ""))
        if item is None:
            raise NotFound(_("no such item"))
        order = [i.id for i in issue.items_in(item.area)]
        at = order.index(item.id)
        to = at - 1 if request.form.get("direction") == "up" else at + 1
        if 0 <= to < len(order):
            order[at], order[to] = order[to], order[at]
    try:
        content.reorder(settings, month, order)
    except content.ChangedOnDisk as exc:
        raise NewsletterError(str(exc)) from None
    ctx.audit(EventKind.CONSOLE_ITEMS_REORDERED, month=month, items=order)
    if request.headers.get("X-Requested-With") == "fetch":
        return Response(status=204)
    anchor = f"#omrade-{by_id[order[0]].area}" if order else ""
    return redirect(f"/nummer/{month}?meddelande=ordning{anchor}", code=303)


@blueprint.post("/nummer/<month>/markdown")
@access.requires(REDAKTOR)
def markdown_preview(month: str) -> Response:
    """The sanitised HTML of posted Markdown, for the live preview beside a text box."""
    checked_month(month)
    return Response(local_media(convert(request.form.get("body", "")).html),
                    mimetype="text/html")
