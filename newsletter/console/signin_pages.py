"""/logga-in: sign in with the identity provider or a one-time link by email; /logga-ut."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, g, redirect, request

from .. import signin
from ..contacts import normalise_email
from ..errors import InputError
from ..events import EventKind, log_event
from ..signing import address_hash
from ..staff import REDAKTOR, find_staff
from . import access
from . import context as ctx
from .oidc import OidcError

blueprint = Blueprint("signin", __name__)


def _signed_in_response(staff, method: str, next_path: str) -> Response:
    """Start a new session for STAFF (ending any the browser had) and go to NEXT_PATH."""
    old = request.cookies.get(access.session_cookie_name())
    session_id = signin.start_session(ctx.db(), staff, method, now=ctx.now(), replaces=old)
    log_event(ctx.db(), EventKind.CONSOLE_SIGNED_IN, staff=staff.email, method=method)
    response = redirect(access.safe_next(next_path), code=303)
    access.set_session_cookie(response, session_id)
    g.cookie_set = True
    return response


@blueprint.get("/logga-in")
@access.public
def sign_in() -> Response:
    return ctx.page("signin.html", next=access.safe_next(request.args.get("next")),
                    oidc=ctx.context().oidc is not None, error=None, email="")


@blueprint.post("/logga-in")
@access.public
def ask_for_link() -> Response:
    """Mail a sign-in link if the address is a staff member's; the same answer either way."""
    settings = ctx.settings()
    console = settings.console
    raw = request.form.get("email", "")
    next_path = access.safe_next(request.form.get("next"))
    try:
        address = normalise_email(raw)
    except InputError:
        return ctx.page("signin.html", status=400, next=next_path, email=raw[:320],
                        oidc=ctx.context().oidc is not None,
                        error="email")
    session, now = ctx.db(), ctx.now()
    window = timedelta(minutes=console.rate_window_minutes)
    signin.purge_expired(session, settings, now=now)
    by_address = signin.over_limit(
        session, "a:" + address_hash(settings.secret_key, address)[:60],
        console.link_requests_per_address, window, now=now)
    by_client = signin.over_limit(session, "c:" + (request.remote_addr or "?")[:60],
                                  console.link_requests_per_client, window, now=now)
    if by_address or by_client:
        session.commit()  # the counts stand, though the answer is an error
        return ctx.page("signin_sent.html", status=429, limited=True)
    member = find_staff(session, address)
    token = signin.issue_link_token(session, settings, member, now=now)
    session.commit()  # before the mail can arrive
    if member is not None:
        ctx.context().mailer.submit(member.email, signin.link_url(settings, token))
    return ctx.page("signin_sent.html", limited=False)


@blueprint.get("/logga-in/lank/<token>")
@access.public
def link(token: str) -> Response:
    """The page a link opens: a button, since mail scanners open links to look at them."""
    usable = signin.link_is_usable(ctx.db(), token, now=ctx.now())
    return ctx.page("signin_link.html", status=200 if usable else 404, usable=usable,
                    token=token)


@blueprint.post("/logga-in/lank/<token>")
@access.public
def use_link(token: str) -> Response:
    staff = signin.consume_link(ctx.db(), token, now=ctx.now())
    if staff is None:
        return ctx.page("signin_link.html", status=404, usable=False, token=token)
    return _signed_in_response(staff, "link", request.form.get("next", "/"))


@blueprint.get("/logga-in/oidc")
@access.public
def oidc_begin() -> Response:
    client = ctx.context().oidc
    if client is None:
        abort(404)
    started = client.begin(_redirect_uri())
    # A GET that writes: the flow row is worthless without this browser's cookie.
    with ctx.context().writers() as session, session.begin():
        signin.save_oidc_flow(session, state=started.state, browser=access.pre_cookie(),
                              nonce=started.nonce, code_verifier=started.code_verifier,
                              next_path=access.safe_next(request.args.get("next")),
                              now=ctx.now())
    return redirect(started.url, code=303)


@blueprint.get("/logga-in/oidc/svar")
@access.public
def oidc_return() -> Response:
    client = ctx.context().oidc
    if client is None:
        abort(404)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    browser = request.cookies.get(access.pre_cookie_name(), "")
    session = ctx.context().writers()
    try:
        with session.begin():
            flow = signin.take_oidc_flow(session, state=state, browser=browser, now=ctx.now())
        if flow is None or not code:
            return ctx.page("signin_failed.html", status=403)
        try:
            email = client.complete(_redirect_uri(), code=code, nonce=flow.nonce,
                                    code_verifier=flow.code_verifier)
        except OidcError as exc:
            return ctx.page("signin_failed.html", status=403, reason=str(exc))
    finally:
        session.close()
    ctx.writes()
    staff = find_staff(ctx.db(), email)
    if staff is None:
        log_event(ctx.db(), EventKind.CONSOLE_REFUSED, method="oidc")
        ctx.db().commit()
        return ctx.page("signin_failed.html", status=403, not_staff=True)
    return _signed_in_response(staff, "oidc", flow.next_path)


def _redirect_uri() -> str:
    return f"{ctx.settings().console.base_url}/logga-in/oidc/svar"


@blueprint.post("/logga-ut")
@access.requires(REDAKTOR)
def sign_out() -> Response:
    who = ctx.signed_in()
    signin.end_session(ctx.db(), who.session_id)
    ctx.audit(EventKind.CONSOLE_SIGNED_OUT)
    response = redirect("/logga-in", code=303)
    access.clear_session_cookie(response)
    g.cookie_set = True
    return response
