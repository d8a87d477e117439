"""What happened to an address, and what it means for mailing it: the event log and the
suppression list, in one vocabulary.

The event log (`events`) is append-only and names its kinds from `EventKind`; its detail never
holds personal data, because it outlives an erasure. The suppression list (`suppressions`) holds
the addresses never to be mailed, keyed by a keyed hash of the normalised address, with a
`SuppressionReason`; it outlives erasure too, so an erased address is never mailed or added again.

The hard-bounce policy lives here and only here (`hard_bounce`): the send engine calls it for a
5.1.x refusal during SMTP, the bounce processor for a delivery report or a contact that went over
the soft-bounce limit. A hard bounce suppresses every form of the address it is given at once,
marks an active person bounced and logs one `bounced` event with the evidence (status or code,
where it came from) and no address.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Event, Person, Suppression
from .signing import address_hash


class EventKind(StrEnum):
    """The kinds of entries in the event log."""

    IMPORTED = "imported"
    ADDED = "added"
    UPDATED = "updated"
    PREFERENCES = "preferences"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    ERASED = "erased"
    BOUNCED = "bounced"
    DEFERRED = "deferred"  # a soft bounce reported by a delivery report
    WEBINAR_REGISTERED = "webinar-registered"
    WEBINAR_WAITLISTED = "webinar-waitlisted"
    WEBINAR_UNREGISTERED = "webinar-unregistered"
    WEBINAR_PROMOTED = "webinar-promoted"
    COMPLAINED = "complained"  # a spam complaint (a feedback report)
    EMAIL_CHANGED = "email_changed"
    POSITION_STARTED = "position_started"
    POSITION_ENDED = "position_ended"
    RETENTION = "retention"  # old traces anonymised (no person)
    # Sign-up on a public page (signups.py): the confirmation mailed, then confirmed.
    SIGNUP_MAILED = "signup-mailed"
    SIGNUP_CONFIRMED = "signup-confirmed"
    # A self-declared role that waits for staff (role_claims.py).
    ROLE_CLAIMED = "role-claimed"
    ROLE_VERIFIED = "role-verified"
    ROLE_REJECTED = "role-rejected"
    STAFF_SAVED = "staff-saved"  # a staff account added or changed (no person)
    STAFF_REMOVED = "staff-removed"
    # What staff did in the console (console/context.audit; no person): "console-" and a verb.
    CONSOLE_SIGNED_IN = "console-signed-in"
    CONSOLE_SIGNED_OUT = "console-signed-out"
    CONSOLE_REFUSED = "console-refused"
    CONSOLE_ISSUE_CREATED = "console-issue-created"
    CONSOLE_ISSUE_SAVED = "console-issue-saved"
    CONSOLE_ITEM_SAVED = "console-item-saved"
    CONSOLE_ITEM_DELETED = "console-item-deleted"
    CONSOLE_ITEMS_REORDERED = "console-items-reordered"
    CONSOLE_STAFF_SAVED = "console-staff-saved"
    CONSOLE_STAFF_REMOVED = "console-staff-removed"
    # The workflow (review.py, schedule.py, archive.py; no person): who did what to which mail.
    REVIEW_SUBMITTED = "review-submitted"
    REVIEW_APPROVED = "review-approved"
    REVIEW_SENT_BACK = "review-sent-back"
    MAILING_SCHEDULED = "mailing-scheduled"
    MAILING_CANCELLED = "mailing-cancelled"
    ARCHIVE_WITHDRAWN = "archive-withdrawn"
    ARCHIVE_RESTORED = "archive-restored"
    CONSOLE_TEST_SENT = "console-test-sent"  # test copies recorded (their ids, no address)
    CONSOLE_INTAKE_ACCEPTED = "console-intake-accepted"
    CONSOLE_INTAKE_REJECTED = "console-intake-rejected"
    CONSOLE_REMISS_SAVED = "console-remiss-saved"
    CONSOLE_FETCH_REQUESTED = "console-fetch-requested"
    CONSOLE_POSITION_ENDED = "console-position-ended"
    CONSOLE_HANDED_OVER = "console-handed-over"
    CONSOLE_AREAS_SAVED = "console-areas-saved"
    CONSOLE_ROLE_VERIFIED = "console-role-verified"
    CONSOLE_ROLE_REJECTED = "console-role-rejected"
    # The workflow in the console (console/review_pages.py, mailings_pages.py, webinar_pages.py).
    CONSOLE_REVIEW_SUBMITTED = "console-review-submitted"
    CONSOLE_REVIEW_APPROVED = "console-review-approved"
    CONSOLE_REVIEW_SENT_BACK = "console-review-sent-back"
    CONSOLE_MAILING_CREATED = "console-mailing-created"  # send now: left to the background sender
    CONSOLE_MAILING_SCHEDULED = "console-mailing-scheduled"
    CONSOLE_MAILING_CANCELLED = "console-mailing-cancelled"
    CONSOLE_MAILING_PAUSED = "console-mailing-paused"
    CONSOLE_MAILING_RESUMED = "console-mailing-resumed"
    CONSOLE_WEBINAR_SAVED = "console-webinar-saved"
    CONSOLE_WEBINAR_CANCELLED = "console-webinar-cancelled"
    CONSOLE_WEBINAR_FOLLOWED_UP = "console-webinar-followed-up"
    CONSOLE_BRANDING_SAVED = "console-branding-saved"  # logo, alt text, colour (branding.toml)


class SuppressionReason(StrEnum):
    """Why an address is on the suppression list (the first reason is kept, erasure excepted)."""

    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    ERASED = "erased"
    COMPLAINT = "complaint"


def log_event(session: Session, kind: EventKind, person: Person | None = None,
              **detail: Any) -> None:
    """Append to the event log. DETAIL must not hold personal data (it outlives an erasure)."""
    session.add(Event(kind=kind, person_id=person.id if person else None, detail=detail))


def suppression_reason(session: Session, secret: bytes, email: str) -> str | None:
    """Why EMAIL (normalised) is on the suppression list, or None if it is not."""
    return session.scalar(
        select(Suppression.reason).where(Suppression.email_hash == address_hash(secret, email)))


def is_suppressed(session: Session, secret: bytes, email: str) -> bool:
    return suppression_reason(session, secret, email) is not None


def may_confirm(status: str | None, reason: str | None) -> bool:
    """Whether a sign-up confirmation may go to a person of STATUS (None: not in the register
    yet) whose address is on the suppression list for REASON (None: it is not).

    A confirmation is a message the person asked for on a public page, to prove the address is
    theirs: it also reaches someone not confirmed yet (pending) and someone who unsubscribed (the
    confirmation is how they come back), never a bounced, erased or complaining address. The one
    rule of signups.py (what to mail), outbox/creating.py and sender.py (what to send).
    """
    return (status in (None, "active", "pending", "unsubscribed")
            and reason in (None, SuppressionReason.UNSUBSCRIBED))


def suppress(session: Session, secret: bytes, email: str, reason: SuppressionReason) -> None:
    """Put EMAIL on the suppression list (idempotent; the first reason is kept)."""
    if not is_suppressed(session, secret, email):
        session.add(Suppression(email_hash=address_hash(secret, email), reason=reason))


def hard_bounce(session: Session, secret: bytes, person: Person | None, *,
                addresses: Iterable[str] = (), **detail: Any) -> None:
    """The address will never take mail: suppress ADDRESSES and PERSON's address, mark an
    active PERSON bounced, and log it with DETAIL (the evidence, never the address)."""
    for form in {*addresses, *([person.email] if person is not None else [])}:
        suppress(session, secret, form, SuppressionReason.BOUNCED)
    if person is not None and person.status == "active":
        person.status = "bounced"
    log_event(session, EventKind.BOUNCED, person, **detail)
