"""/media/NAME in the console: the site's images, for the previews on the console's pages.

The email and its Markdown name images by their public address (organisation.base_url +
/media/NAME), which the console may not reach or be allowed to load (its CSP takes images from
itself only): `local_media` points them at this route, and `inline_media` makes them data: URLs
for the sandboxed preview frames, whose requests carry no session cookie.
"""

from __future__ import annotations

import base64
import re

from flask import Blueprint, Response, send_file
from werkzeug.exceptions import NotFound

from .. import media
from ..staff import REDAKTOR
from . import access
from . import context as ctx

blueprint = Blueprint("media", __name__)


def _public_images() -> re.Pattern:
    prefix = ctx.settings().organisation.base_url + media.URL_PREFIX
    return re.compile(re.escape(prefix) + r"([A-Za-z0-9][A-Za-z0-9_-]*\.[a-z]{3,4})")


def local_media(html: str) -> str:
    """HTML with the site's own images loaded from the console."""
    return _public_images().sub(lambda m: media.URL_PREFIX + m.group(1), html)


def inline_media(html: str) -> str:
    """HTML with the site's own images as data: URLs."""
    settings = ctx.settings()

    def data_url(match: re.Match) -> str:
        path = media.media_file(settings, match.group(1))
        if path is None:
            return match.group(0)
        kind = media.CONTENT_TYPES[path.suffix[1:].lower()]
        return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    return _public_images().sub(data_url, html)


@blueprint.get("/media/<name>")
@access.requires(REDAKTOR)
def image(name: str) -> Response:
    path = media.media_file(ctx.settings(), name)
    if path is None:
        raise NotFound()
    response = send_file(path, mimetype=media.CONTENT_TYPES[path.suffix[1:].lower()])
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
