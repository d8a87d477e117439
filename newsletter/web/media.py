"""/media/NAME: the issues' images, from the site's media/ folder.

Only a plain file name with an image extension is served (no folders, so no path traversal and
no directory listing), with its content type from a fixed table and nosniff (set for every
response in web/__init__.py), so a file can never be served as HTML or script.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_file
from werkzeug.exceptions import NotFound

from ..media import CONTENT_TYPES, media_file
from .pages import web_context

blueprint = Blueprint("media", __name__)


@blueprint.get("/media/<name>")
def image(name: str) -> Response:
    path = media_file(web_context().settings, name)
    if path is None:
        raise NotFound()
    response = send_file(path, mimetype=CONTENT_TYPES[path.suffix[1:].lower()], max_age=86400,
                         conditional=True, etag=True)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
