"""Contacts: addresses, suppression, unsubscribe and the event log.

Import, add, export and erasure build on these.
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InvalidAddress
from .models import Event, Person, Suppression
from .signing import address_hash


def normalise_email(raw: str, *, field: str = "email") -> str:
    """The address in canonical form (domain lower-cased, IDNA), validated without DNS."""
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("empty email address", field=field)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid email address {text!r}: {exc}", field=field) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def log_event(session: Session, kind: str, person: Person | None = None, **detail: Any) -> None:
    """Append to the event log. DETAIL must not hold personal data (it outlives an erasure)."""
    session.add(Event(kind=kind, person_id=person.id if person else None, detail=detail))


def is_suppressed(session: Session, secret: bytes, email: str) -> bool:
    return session.scalar(
        select(Suppression.id).where(Suppression.email_hash == address_hash(secret, email))
    ) is not None


def suppress(session: Session, secret: bytes, email: str, reason: str) -> None:
    """Put EMAIL on the suppression list (idempotent; the first reason is kept)."""
    if not is_suppressed(session, secret, email):
        session.add(Suppression(email_hash=address_hash(secret, email), reason=reason))


def unsubscribe(session: Session, secret: bytes, person: Person, *, source: str) -> bool:
    """Unsubscribe PERSON from everything; returns False if they already were."""
    suppress(session, secret, person.email, "unsubscribed")
    if person.status == "unsubscribed":
        return False
    person.status = "unsubscribed"
    log_event(session, "unsubscribed", person, source=source)
    return True


def find_person(session: Session, email: str) -> Person | None:
    return session.scalar(select(Person).where(Person.email == normalise_email(email)))
