"""/installningar/profil: the site's branding (admins only): the logo, its alt text and the
primary colour, with a sample of the email's header, saved into branding.toml (branding.py).

The sample is a real message rendered by render.render_message in a sandboxed frame
(/installningar/profil/prov); `?farg=#rrggbb` renders it in a colour not saved yet, which the
page's script asks for as the colour field changes (without script, the sample shows what is
saved). A logo upload is checked by its content (media.store_upload: a PHP file named logo.png,
an SVG or a decompression bomb is refused) and stored sized for email.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, redirect, request

from .. import branding, media, render
from ..errors import InputError
from ..events import EventKind
from ..i18n import _
from ..settings import MIN_CONTRAST, contrast_with_white
from ..sources import ANY_PLACEHOLDER, EMAIL
from ..staff import ADMIN
from . import access
from . import context as ctx
from .preview import frame_response

blueprint = Blueprint("branding", __name__)
PATH = "/installningar/profil"


def _form(values: dict | None = None) -> dict:
    saved = branding.current(ctx.settings())
    return values or {"colour": saved.colour, "logo_alt": saved.logo_alt,
                      "stamp": branding.stamp(ctx.settings())}


def _page(status: int = 200, form: dict | None = None,
          errors: dict[str, str] | None = None) -> Response:
    settings = ctx.settings()
    saved = branding.current(settings)
    logo = media.logo(settings, saved)
    notice = _("Saved.") if request.args.get("meddelande") == "sparad" else None
    return ctx.page("branding.html", status=status, saved=saved, logo=logo,
                    logo_path=media.URL_PREFIX + saved.logo if logo else None,
                    contrast=contrast_with_white(saved.colour), minimum=MIN_CONTRAST,
                    form=_form(form), errors=errors or {}, notice=notice,
                    box=media.LOGO_BOX, file=branding.path(settings).name)


@blueprint.get(PATH)
@access.requires(ADMIN)
def show() -> Response:
    return _page()


@blueprint.get(PATH + "/prov")
@access.requires(ADMIN)
def sample() -> Response:
    """The sample message in the saved branding, or in the colour ?farg= asks for (shown even
    when its contrast is too low: the page says why it cannot be saved)."""
    settings = ctx.settings()
    shown = branding.current(settings)
    colour = branding.normalise_colour(request.args.get("farg", ""))
    if branding.is_colour(colour):
        shown = replace(shown, colour=colour)
    content = render.render_message(
        settings, subject=_("Sample of the header"),
        body_markdown=_("This is how the emails' header looks with this logo and colour. "
                        "[A link](https://www.example.se/) and a button have the colour too."),
        action=(_("A button"), "https://www.example.se/"), branding=shown)
    html = content.html.replace(EMAIL, "namn@example.se")
    return frame_response(ANY_PLACEHOLDER.sub("#", html))


@blueprint.post(PATH)
@access.requires(ADMIN)
def save() -> Response:
    form = {key: request.form.get(key, "") for key in ("colour", "logo_alt", "stamp")}
    upload = request.files.get("logo")
    data = upload.read(ctx.settings().console.max_upload_bytes + 1) if (
        upload and upload.filename) else None
    ctx.db()  # the writer's transaction first: two saves at once take turns (SQLite)
    try:
        saved = branding.save(ctx.settings(), colour=form["colour"], logo_alt=form["logo_alt"],
                              logo_data=data, remove_logo=request.form.get("remove_logo") == "1",
                              expected_stamp=form["stamp"], by=ctx.signed_in().staff.email)
    except branding.BrandingRefused as exc:
        return _page(400, form, exc.problems)
    except InputError as exc:
        return _page(400, form, {exc.field or "logo": exc.reason})
    except branding.ChangedMeanwhile as exc:
        return _page(409, None, {"stamp": str(exc)})
    ctx.audit(EventKind.CONSOLE_BRANDING_SAVED, colour=saved.branding.colour,
              logo=saved.branding.logo, logo_alt=saved.branding.logo_alt,
              uploaded=saved.stored_logo)
    return redirect(PATH + "?meddelande=sparad", code=303)
