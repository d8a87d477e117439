"""Who may do what in the console: one mechanism for every route.

Every view is declared with `@requires(ROLE)` (a staff role: redaktor, granskare, admin) or
`@public` (the sign-in pages); `check_declared(app)` refuses to build an app with a view that
has neither. `before_request` then, for every request:

- finds the session from the cookie (server-side; the cookie holds only a random id);
- sends a request without a session to the sign-in page (GET), or answers 401 (POST), also for
  a URL that does not exist, so the URL map is not revealed to strangers;
- refuses (403) a POST that the browser marks as cross-site or whose CSRF token is not the one
  tied to its session (for the sign-in forms: to the browser's pre-sign-in cookie);
- refuses (403) a staff member whose role is below the view's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request
from werkzeug.exceptions import HTTPException, Unauthorized
from werkzeug.routing import RequestRedirect

from .. import signin
from ..models import STAFF_ROLES
from ..staff import allows
from ..web.csrf import check_same_origin
from . import context as ctx

PUBLIC = "public"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_ATTRIBUTE = "console_access"
View = TypeVar("View", bound=Callable)


def requires(role: str) -> Callable[[View], View]:
    """Declare that a view needs a staff member with ROLE or above (or PUBLIC)."""
    if role not in STAFF_ROLES and role != PUBLIC:
        raise ValueError(f"unknown role {role!r}")

    def declare(view: View) -> View:
        setattr(view, _ATTRIBUTE, role)
        return view
    return declare


public = requires(PUBLIC)


def access_of(app: Flask, endpoint: str) -> str | None:
    """The role ENDPOINT needs (PUBLIC for none), or None if it was never declared."""
    view = app.view_functions.get(endpoint)
    return getattr(view, _ATTRIBUTE, None) if view else None


def check_declared(app: Flask) -> None:
    """Refuse to start with a view that says nothing about who may use it."""
    missing = sorted(e for e in app.view_functions if access_of(app, e) is None)
    if missing:
        raise RuntimeError(f"console views without @requires or @public: {', '.join(missing)}")


# --- cookies ----------------------------------------------------------------------------------

def _secure() -> bool:
    return ctx.settings().console.base_url.startswith("https://")


def session_cookie_name() -> str:
    # __Host-: the browser accepts it only Secure, for this host and path / (no Domain).
    return "__Host-nl_console" if _secure() else "nl_console"


def pre_cookie_name() -> str:
    return "__Host-nl_console_pre" if _secure() else "nl_console_pre"


def set_session_cookie(response: Response, session_id: str) -> None:
    response.set_cookie(session_cookie_name(), session_id, httponly=True, samesite="Lax",
                        secure=_secure(), path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(session_cookie_name(), httponly=True, samesite="Lax",
                           secure=_secure(), path="/")


def pre_cookie() -> str:
    """This browser's pre-sign-in value (made on first use, set by after_request): it binds the
    sign-in forms' CSRF tokens and an OIDC flow to the browser."""
    if "pre" not in g:
        value = request.cookies.get(pre_cookie_name(), "")
        if not (20 <= len(value) <= 100):
            value = secrets.token_urlsafe(32)
            g.new_pre = value
        g.pre = value
    return g.pre


# --- CSRF -------------------------------------------------------------------------------------

def _mac(purpose: str, value: str) -> str:
    secret = ctx.settings().secret_key
    return hmac.new(secret, f"console-{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The token every form of this page carries: tied to the session, or before sign-in to
    the browser's pre-sign-in cookie."""
    who = ctx.signed_in()
    if who is None or access_of(current_app, request.endpoint or "") == PUBLIC:
        return _mac("pre", pre_cookie())
    return _mac("csrf", who.session_id)


def _csrf_valid(public_view: bool) -> bool:
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    who = ctx.signed_in()
    if public_view or who is None:
        value = request.cookies.get(pre_cookie_name(), "")
        expected = _mac("pre", value) if value else ""
    else:
        expected = _mac("csrf", who.session_id)
    return bool(expected) and hmac.compare_digest(sent, expected)


# --- next= ------------------------------------------------------------------------------------

def safe_next(value: str | None) -> str:
    """VALUE if it is a path of a page of the console itself, else "/" (no open redirect)."""
    if not value or len(value) > 500 or any(ord(c) < 33 or c == "\\" for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.startswith("//"):
        return "/"
    adapter = current_app.url_map.bind(urlsplit(ctx.settings().console.base_url).netloc or "x")
    try:
        endpoint, _args = adapter.match(parts.path, method="GET")
    except RequestRedirect:
        return "/"
    except HTTPException:
        return "/"
    if access_of(current_app, endpoint) in (None, PUBLIC):
        return "/"
    return value


def sign_in_redirect() -> Response:
    path = request.full_path.rstrip("?") if request.query_string else request.path
    query = urlencode({"next": path}) if path != "/" else ""
    return redirect("/logga-in" + (f"?{query}" if query else ""), code=303)


# --- the per-request check ----------------------------------------------------------------------

def load_session() -> None:
    """Find the request's session (g.signed_in); idle ones end here."""
    g.signed_in = None
    session_id = request.cookies.get(session_cookie_name(), "")
    if not session_id:
        return
    context = ctx.context()
    with context.writers() as session, session.begin():
        g.signed_in = signin.find_session(session, context.settings, session_id,
                                          now=ctx.now())
        if g.signed_in is not None:
            session.expunge(g.signed_in.staff)
    if g.signed_in is None:
        g.clear_cookie = True


def enforce() -> Response | None:
    """before_request: the rules in this module's docstring."""
    load_session()
    endpoint = request.endpoint
    access = access_of(current_app, endpoint) if endpoint else None
    who = ctx.signed_in()
    if endpoint and access is None:
        abort(500)  # check_declared makes this unreachable
    if access != PUBLIC and who is None:
        if request.method in ("GET", "HEAD"):
            return sign_in_redirect()
        raise Unauthorized()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_same_origin(ctx.settings().console.base_url)
        if not _csrf_valid(access == PUBLIC):
            abort(403)
    if access not in (None, PUBLIC) and not allows(who.staff.role, access):
        abort(403)
    return None


def finish(response: Response) -> Response:
    """after_request: set a new pre-sign-in cookie, or clear a dead session's cookie."""
    new_pre = g.get("new_pre")
    if new_pre:
        response.set_cookie(pre_cookie_name(), new_pre, httponly=True, samesite="Lax",
                            secure=_secure(), path="/")
    if g.get("clear_cookie") and not g.get("cookie_set"):
        clear_session_cookie(response)
    return response
