"""/personal: the staff accounts (admins only): add, change role, remove."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request

from .. import staff
from ..errors import InputError, NewsletterError
from ..events import EventKind
from ..i18n import _
from ..models import STAFF_ROLES
from . import access
from . import context as ctx

blueprint = Blueprint("staff", __name__)


def _notice(key: str) -> str | None:
    """The confirmation ?meddelande=KEY asks for, looked up per request (see compose._notice)."""
    return {"sparad": _("Saved."), "borttagen": _("Removed.")}.get(key)


def _page(status: int = 200, form: dict | None = None, error: str | None = None) -> Response:
    return ctx.page("staff.html", status=status, members=staff.list_staff(ctx.db()),
                    roles=[(r, staff.role_label(r)) for r in STAFF_ROLES],
                    form=form or {"email": "", "name": "", "role": staff.REDAKTOR},
                    error=error, notice=_notice(request.args.get("meddelande", "")))


@blueprint.get("/personal")
@access.requires(staff.ADMIN)
def index() -> Response:
    return _page()


@blueprint.post("/personal")
@access.requires(staff.ADMIN)
def save() -> Response:
    form = {key: request.form.get(key, "") for key in ("email", "name", "role")}
    try:
        member = staff.add_staff(ctx.db(), form["email"], name=form["name"], role=form["role"],
                                 by=ctx.signed_in().staff.email)
    except InputError as exc:
        return _page(400, form, exc.reason)
    ctx.audit(EventKind.CONSOLE_STAFF_SAVED, member=member.email, role=member.role)
    return redirect("/personal?meddelande=sparad", code=303)


@blueprint.post("/personal/ta-bort")
@access.requires(staff.ADMIN)
def remove() -> Response:
    email = request.form.get("email", "")
    try:
        staff.remove_staff(ctx.db(), email, by=ctx.signed_in().staff.email)
    except NewsletterError as exc:
        return _page(400, error=str(exc))
    ctx.audit(EventKind.CONSOLE_STAFF_REMOVED, member=email)
    return redirect("/personal?meddelande=borttagen", code=303)
