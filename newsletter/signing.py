"""Keyed hashes and signed tokens: personal links never carry an address or a sequential id."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable


def address_hash(secret: bytes, email: str) -> str:
    """The suppression key of a normalised address: HMAC-SHA256 hex, irreversible without SECRET."""
    return address_hasher(secret)(email)


def address_hasher(secret: bytes) -> Callable[[str], str]:
    """`address_hash` with SECRET fixed, keyed once: for hashing a whole segment's addresses."""
    keyed = hmac.new(secret, b"suppress:", hashlib.sha256)

    def digest(email: str) -> str:
        h = keyed.copy()
        h.update(email.encode("utf-8"))
        return h.hexdigest()
    return digest


def keyed_hash(secret: bytes, purpose: str, value: str) -> str:
    """A keyed hash (HMAC-SHA256, 32 hex digits) of VALUE for PURPOSE: e.g. a rate-limit key
    for an address or a client, kept without keeping the address."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _sig(secret: bytes, purpose: str, value: str) -> str:
    mac = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode("ascii")


def make_token(secret: bytes, purpose: str, value: str) -> str:
    """An opaque token for VALUE (a person's random public id) good only for PURPOSE."""
    if not secret:
        raise ValueError("no secret key configured")
    return f"{value}.{_sig(secret, purpose, value)}"


def read_token(secret: bytes, purpose: str, token: str) -> str | None:
    """The value inside TOKEN if it was made with SECRET for PURPOSE, else None (never raises)."""
    value, sep, sig = token.rpartition(".")
    # Tokens we make are ASCII; compare_digest refuses other text with a TypeError.
    if not sep or not value or not secret or not token.isascii():
        return None
    return value if hmac.compare_digest(sig, _sig(secret, purpose, value)) else None
