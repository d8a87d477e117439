"""Signing in to the staff console: one-time links, sessions, rate limits, OIDC flows.

Secrets never rest in the database in clear: a sign-in link's token and a session's id are
random 256-bit values, and the tables hold only their SHA-256. A database copy therefore signs
nobody in. Every function takes `now` so that expiry is tested without sleeping.

Failure modes, on purpose:
- A link is good once, for `console.link_minutes`; using it (`consume_link`) marks it used in
  the same transaction that creates the session, so two clicks at once give one session.
- A link asked for an address that is no staff member's still makes a token row (with no staff
  member): both answers do the same work, so neither the page nor its timing tells whether an
  address belongs to the staff.
- The mail with the link is handed to a sender thread of the console process (console/mailer.py)
  and is not stored: the link is a secret, and an outbox row would keep it in clear. If the
  process dies before the mail is sent, it is lost and the person asks again.
- Sessions end after `console.session_idle_minutes` without a request; `touch_session` moves
  the clock on at most once a minute, so a busy page does not write on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import ConsoleSession, OidcFlow, RateCounter, SignInToken, Staff
from .settings import Settings

LINK_PATH = "/logga-in/lank/"
OIDC_FLOW_MINUTES = 10
_TOUCH_EVERY = timedelta(minutes=1)


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a token or session id is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A random, URL-safe 256-bit value."""
    return secrets.token_urlsafe(32)


# --- one-time sign-in links -------------------------------------------------------------------

def issue_link_token(session: Session, settings: Settings, staff: Staff | None, *,
                     now: datetime | None = None) -> str:
    """A new one-time token for STAFF (None: a token that signs nobody in, see above)."""
    now = _now(now)
    token = new_secret()
    session.add(SignInToken(token_hash=digest(token), staff_id=staff.id if staff else None,
                            created_at=now,
                            expires_at=now + timedelta(minutes=settings.console.link_minutes)))
    session.flush()
    return token


def link_url(settings: Settings, token: str) -> str:
    """The sign-in URL of TOKEN on the console."""
    return f"{settings.console.base_url}{LINK_PATH}{token}"


def link_is_usable(session: Session, token: str, *, now: datetime | None = None) -> bool:
    """True if TOKEN would sign someone in now (for the page that asks to confirm)."""
    row = session.scalar(select(SignInToken).where(SignInToken.token_hash == digest(token)))
    return bool(row and row.staff_id and row.used_at is None and row.expires_at > _now(now))


def consume_link(session: Session, token: str, *, now: datetime | None = None) -> Staff | None:
    """The staff member TOKEN signs in, marking it used; None if it is unknown, used, expired
    or names nobody. Call it in a writer transaction (db.writer)."""
    now = _now(now)
    row = session.scalar(select(SignInToken).where(SignInToken.token_hash == digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= now or row.staff_id is None:
        return None
    row.used_at = now
    return session.get(Staff, row.staff_id)


# --- sessions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignedIn:
    """Who a request comes from."""

    staff: Staff
    session_id: str  # the secret from the cookie (for the CSRF token)
    method: str


def start_session(session: Session, staff: Staff, method: str, *,
                  now: datetime | None = None, replaces: str | None = None) -> str:
    """A new session for STAFF; returns its id for the cookie. The id is always new (no
    session fixation); REPLACES, the id the browser had before, is ended."""
    now = _now(now)
    if replaces:
        end_session(session, replaces)
    session_id = new_secret()
    session.add(ConsoleSession(session_hash=digest(session_id), staff_id=staff.id,
                               created_at=now, last_seen_at=now, method=method))
    staff.last_sign_in_at = now
    session.flush()
    return session_id


def find_session(session: Session, settings: Settings, session_id: str, *,
                 now: datetime | None = None) -> SignedIn | None:
    """The signed-in staff member of SESSION_ID, or None if it is unknown or has been idle for
    too long (then it is deleted)."""
    if not session_id or len(session_id) > 100:
        return None
    now = _now(now)
    row = session.scalar(select(ConsoleSession).where(
        ConsoleSession.session_hash == digest(session_id)))
    if row is None:
        return None
    if now - row.last_seen_at > timedelta(minutes=settings.console.session_idle_minutes):
        session.delete(row)
        return None
    staff = session.get(Staff, row.staff_id)
    if staff is None:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return SignedIn(staff=staff, session_id=session_id, method=row.method)


def end_session(session: Session, session_id: str) -> None:
    session.execute(delete(ConsoleSession).where(
        ConsoleSession.session_hash == digest(session_id)))


# --- rate limits ------------------------------------------------------------------------------

def over_limit(session: Session, key: str, limit: int, window: timedelta, *,
               now: datetime | None = None) -> bool:
    """Count one request for KEY; True if it is more than LIMIT in the current WINDOW.
    Call it in a writer transaction, so that concurrent requests count one at a time."""
    now = _now(now)
    row = session.get(RateCounter, key)
    if row is None:
        session.add(RateCounter(key=key, window_start=now, count=1))
        session.flush()
        return limit < 1
    if now - row.window_start >= window:
        row.window_start, row.count = now, 0
    row.count += 1
    return row.count > limit


# --- OIDC flows -------------------------------------------------------------------------------

def save_oidc_flow(session: Session, *, state: str, browser: str, nonce: str,
                   code_verifier: str, next_path: str, now: datetime | None = None) -> None:
    """Remember a sign-in with the identity provider that BROWSER (its pre-sign-in cookie)
    started."""
    session.add(OidcFlow(state_hash=digest(state), browser_hash=digest(browser), nonce=nonce,
                         code_verifier=code_verifier, next_path=next_path, created_at=_now(now)))


def take_oidc_flow(session: Session, *, state: str, browser: str,
                   now: datetime | None = None) -> OidcFlow | None:
    """The flow STATE names, if BROWSER started it and it is recent; it is deleted (used once)."""
    row = session.scalar(select(OidcFlow).where(OidcFlow.state_hash == digest(state)))
    if row is None:
        return None
    session.delete(row)
    fresh = _now(now) - row.created_at < timedelta(minutes=OIDC_FLOW_MINUTES)
    if not fresh or not secrets.compare_digest(row.browser_hash, digest(browser)):
        return None
    return row


# --- housekeeping -----------------------------------------------------------------------------

def purge_expired(session: Session, settings: Settings, *, now: datetime | None = None) -> None:
    """Delete expired links, idle sessions, stale OIDC flows and old rate counters."""
    now = _now(now)
    idle = timedelta(minutes=settings.console.session_idle_minutes)
    session.execute(delete(SignInToken).where(SignInToken.expires_at < now - timedelta(days=1)))
    session.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at < now - idle))
    session.execute(delete(OidcFlow).where(
        OidcFlow.created_at < now - timedelta(minutes=OIDC_FLOW_MINUTES)))
    window = timedelta(minutes=settings.console.rate_window_minutes)
    # The public sign-up's counters (signups.py, "signup:...") keep their own, longer window.
    session.execute(delete(RateCounter).where(RateCounter.window_start < now - window,
                                              RateCounter.key.not_like("signup:%")))
