"""/l/TOKEN: a tracked link of a mailing. Redirects to the URL stored for it, counts a reader.

The token names a mailing and a link number (tracking.py); the only possible destination is the
URL stored for that pair when the mailing was created, so the page cannot be made to redirect
anywhere else. Every bad token (forged, altered, another purpose, a mailing deleted) gets the
same 404 page as the other pages' bad tokens. The request is judged in memory
(click_filter.py) and counted with one small write; with `[tracking] clicks` switched off
since, links already sent still lead on, uncounted.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, redirect, request
from werkzeug.exceptions import NotFound

from .. import tracking
from ..click_filter import ClickFilter, ClickRequest
from .pages import session, web_context

blueprint = Blueprint("clicks", __name__)
EXTENSION = "newsletter.clicks"


def install(app: Flask, **options) -> ClickFilter:
    """Give APP its click filter (OPTIONS: ClickFilter's, e.g. now= in tests)."""
    click_filter = ClickFilter(app.extensions["newsletter"].settings.tracking, **options)
    app.extensions[EXTENSION] = click_filter
    return click_filter


def _request() -> ClickRequest:
    headers = request.headers
    purpose = " ".join(headers.get(h, "") for h in ("Sec-Purpose", "Purpose", "X-Purpose"))
    return ClickRequest(method=request.method, address=request.remote_addr or "",
                        user_agent=headers.get("User-Agent", ""), purpose=purpose.strip())


@blueprint.route("/l/<token>", methods=["GET", "HEAD"])
def follow(token: str) -> Response:
    context = web_context()
    ref = tracking.read_click_token(context.settings.secret_key, token)
    link = tracking.find_link(session(), *ref) if ref else None
    if link is None or not tracking.is_web_link(link.url):
        raise NotFound()
    if context.settings.tracking.clicks:
        verdict = current_app.extensions[EXTENSION].judge(_request(), link)
        tracking.record(context.sessions, verdict.deltas)
    response = redirect(link.url, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
