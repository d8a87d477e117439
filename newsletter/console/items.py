"""/nummer/YYYY-MM/nyhet/...: add, edit and delete one news item (one Markdown file)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request

from .. import content
from ..errors import InputError
from ..events import EventKind
from ..i18n import _
from ..markdown import convert
from ..staff import REDAKTOR
from . import access
from . import context as ctx
from .compose import _discard, checked_month, image_markdown, with_image
from .media_view import local_media

blueprint = Blueprint("items", __name__)


def _posted() -> dict[str, Any]:
    """The form as posted (to show it again)."""
    form = request.form
    posted: dict[str, Any] = {key: form.get(key, "") for key in
                              ("title", "area", "kind", "url", "date", "tags", "body", "order")}
    posted["roles"] = form.getlist("roles")
    return posted


def _fields(posted: dict[str, Any]) -> dict[str, Any]:
    """The item's front matter from the posted form; the link must be https."""
    url = posted["url"].strip()
    if url and not url.lower().startswith("https://"):
        raise InputError(_("the link must start with https://"), field="url")
    order = posted["order"].strip()
    return {
        "title": posted["title"], "area": posted["area"], "kind": posted["kind"] or "nyhet",
        "url": url or None, "date": posted["date"].strip() or None,
        "tags": [t.strip() for t in posted["tags"].split(",") if t.strip()],
        "roles": posted["roles"], "order": int(order) if order.isdigit() else None,
    }


def _form_of(data: dict[str, Any], body: str) -> dict[str, Any]:
    tags = data.get("tags") or []
    roles = data.get("roles") or []
    return {
        "title": str(data.get("title") or ""), "area": str(data.get("area") or ""),
        "kind": str(data.get("kind") or "nyhet"), "url": str(data.get("url") or ""),
        "date": str(data.get("date") or ""),
        "tags": ", ".join(map(str, tags)) if isinstance(tags, list) else str(tags),
        "roles": [str(r) for r in roles] if isinstance(roles, list) else
        [r.strip() for r in str(roles).split(",")],
        "order": str(data.get("order") or ""), "body": body,
    }


def item_page(month: str, item_id: str | None, form: dict[str, Any], *, version: str = "",
              status: int = 200, errors: dict | None = None,
              conflict: str | None = None) -> Response:
    return ctx.page("item.html", status=status, month=month, item_id=item_id, form=form,
                    version=version, errors=errors or {}, conflict=conflict,
                    areas=ctx.settings().areas, roles=ctx.settings().roles,
                    kinds=content.KINDS,
                    body_html=local_media(convert(form.get("body", "")).html))


@blueprint.get("/nummer/<month>/nyhet/ny")
@access.requires(REDAKTOR)
def new(month: str) -> Response:
    month = checked_month(month)
    area = request.args.get("omrade", "")
    form = _form_of({"area": area if area in ctx.settings().area_slugs else "",
                     "date": ctx.now().date().isoformat()}, "")
    return item_page(month, None, form)


@blueprint.get("/nummer/<month>/nyhet/<item_id>")
@access.requires(REDAKTOR)
def edit(month: str, item_id: str) -> Response:
    month = checked_month(month)
    path = content.item_path(ctx.settings(), month, item_id)
    if not path.is_file():
        return ctx.page("error.html", status=404, title=_("Not found"),
                        text=_("There is no such item (deleted meanwhile?)."))
    try:
        data, body, version = content.read_source(path)
    except InputError as exc:  # a file broken by hand: show it raw, to fix it
        return ctx.page("error.html", status=422, title=_("The file does not validate"),
                        text=str(exc), raw=path.read_text(encoding="utf-8", errors="replace"))
    return item_page(month, item_id, _form_of(data, body), version=version)


@blueprint.post("/nummer/<month>/nyhet/ny")
@access.requires(REDAKTOR)
def create(month: str) -> Response:
    return _save(checked_month(month), None)


@blueprint.post("/nummer/<month>/nyhet/<item_id>")
@access.requires(REDAKTOR)
def update(month: str, item_id: str) -> Response:
    return _save(checked_month(month), item_id)


def _save(month: str, item_id: str | None) -> Response:
    posted = _posted()
    version = request.form.get("version", "")
    if request.form.get("action") == "preview":
        return item_page(month, item_id, posted, version=version)
    stored = None
    try:
        fields = _fields(posted)
        markdown, stored = image_markdown(request.files.get("image"),
                                          request.form.get("image_alt", ""))
        body = with_image(posted["body"], markdown)
        posted["body"] = body
        path = content.write_item(ctx.settings(), month, item_id, fields, body,
                                  expected_version=version)
    except content.ChangedOnDisk as exc:
        _discard(stored)
        return item_page(month, item_id, posted, version=content.file_version(exc.path),
                         status=409, conflict=exc.current)
    except InputError as exc:
        _discard(stored)
        return item_page(month, item_id, posted, version=version, status=400,
                         errors={exc.field or "body": exc.reason})
    ctx.audit(EventKind.CONSOLE_ITEM_SAVED, month=month, item=path.stem, new=item_id is None,
              image=stored.name if stored else None)
    return redirect(f"/nummer/{month}?meddelande=sparat#nyhet-{path.stem}", code=303)


@blueprint.post("/nummer/<month>/nyhet/<item_id>/radera")
@access.requires(REDAKTOR)
def delete(month: str, item_id: str) -> Response:
    month = checked_month(month)
    try:
        content.delete_item(ctx.settings(), month, item_id,
                            expected_version=request.form.get("version", ""))
    except content.ChangedOnDisk as exc:
        path = exc.path
        data, body, version = content.read_source(path)
        return item_page(month, item_id, _form_of(data, body), version=version, status=409,
                         conflict=exc.current)
    ctx.audit(EventKind.CONSOLE_ITEM_DELETED, month=month, item=item_id)
    return redirect(f"/nummer/{month}?meddelande=raderad", code=303)
