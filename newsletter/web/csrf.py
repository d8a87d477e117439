"""Cross-site request protection without cookies.

Every form carries a token: a timestamp and an HMAC (with the site's secret key) over the
timestamp and what the form is about (e.g. "p:" + the person's public id), so a token works only
on the page it was made for. On top, a POST is refused when the browser says it comes from
another site (Sec-Fetch-Site), or its Origin or Referer names another origin.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from flask import request
from werkzeug.exceptions import BadRequest, Forbidden

FIELD = "csrf"
MAX_AGE_SECONDS = 7 * 24 * 3600
_CLOCK_SKEW_SECONDS = 300


def _mac(secret: bytes, subject: str, stamp: str) -> str:
    return hmac.new(secret, f"csrf:{subject}:{stamp}".encode(), hashlib.sha256).hexdigest()


def make_form_token(secret: bytes, subject: str, *, now: float | None = None) -> str:
    """A token for a form about SUBJECT, good for MAX_AGE_SECONDS."""
    stamp = str(int(time.time() if now is None else now))
    return f"{stamp}.{_mac(secret, subject, stamp)}"


def form_token_valid(secret: bytes, subject: str, token: str, *, now: float | None = None) -> bool:
    stamp, sep, mac = (token or "").partition(".")
    # ASCII only: "²".isdigit() is true but int("²") fails, and compare_digest refuses non-ASCII.
    if not sep or not token.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    age = (time.time() if now is None else now) - int(stamp)
    if not -_CLOCK_SKEW_SECONDS <= age <= MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(secret, subject, stamp))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_origins(base_url: str) -> set[str]:
    return {_origin(request.host_url), _origin(base_url)}


def check_same_origin(base_url: str) -> None:
    """Refuse (403) a form POST that the browser says comes from another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden()
    origin = request.headers.get("Origin")
    # "null" is what browsers send from our own pages under Referrer-Policy: no-referrer.
    if origin and origin != "null":
        if origin.lower() not in _allowed_origins(base_url):
            raise Forbidden()
        return
    referer = request.headers.get("Referer")
    if referer and _origin(referer) not in _allowed_origins(base_url):
        raise Forbidden()


def require_form_token(secret: bytes, subject: str, base_url: str) -> None:
    """The checks every state-changing form POST passes: same origin and a valid token."""
    check_same_origin(base_url)
    if not form_token_valid(secret, subject, request.form.get(FIELD, "")):
        raise BadRequest()
