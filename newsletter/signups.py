"""Sign-ups asked for on the public pages (`/prenumerera` and a webinar's page): recorded by the
request, handled in the background, confirmed by the person (double opt-in).

The pages must not tell who is a contact, not even by how long they take (issue 17). So the
request does the same work for every well-formed address: `limited` counts it against the rate
limits (per address and page, per client), `record` looks the address up (one indexed query
for a person's id, found or not) and inserts one `signups` row (with that id, or else the
address), the request commits, wakes the background sender and answers. What the address is
(an active contact, unsubscribed, on the suppression list, unknown) matters only afterwards, in
`handle_pending` (a task of background.BackgroundSender):

- a webinar registration of an active contact goes straight through (`webinars.register`,
  dated when the request came): their confirmation with the calendar invite; the row goes;
- nothing is mailed to a bounced, erased or complaining address (events.may_confirm), nor for
  a webinar that closed meanwhile; the row goes;
- anyone else gets a confirmation mail (kinds/signup.py) with a signed link
  (links.confirm_url) that works for `[register] confirm_days`; someone not in the register
  becomes a person with status "pending", who gets that mail and nothing else. The row stays,
  with what the form said.

`confirm` (the link, then a button: a GET never changes anything, mail scanners follow links)
applies the form: a pending person becomes active, someone who unsubscribed themselves is
subscribed again, the consent is recorded (consent.py: when, which page, which text), the
position starts, or waits for staff if its role is one of `[register] verified_roles`
(role_claims.py), the areas are set, and a webinar registration is made. The row is then
deleted: a second use of the link finds nothing, as a forged or expired one does. Someone who
registered for a webinar without ticking the newsletter becomes a contact with `subscribed`
false: segments leave them out of everything but what they asked for (segments.py).

`purge_expired` (retention, the worker) deletes sign-ups whose link expired and pending persons
left with none: what an unconfirmed form said is not kept.

Each row is handled in its own transaction, locked, so two processes never handle one twice; a
row that fails (a template error) is left for the next round and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from . import consent, db, links, preferences, role_claims, webinars
from .contact_fields import DEFAULT_ROLE
from .errors import NewsletterError
from .events import EventKind, SuppressionReason, log_event, may_confirm, suppression_reason
from .kinds.signup import confirmation
from .models import Person, RateCounter, Signup, Suppression, Webinar, new_public_id
from .outbox import creating, forgetting
from .positions import end_placeholder, start_position
from .settings import Settings
from .signin import over_limit
from .signing import address_hash, keyed_hash, read_token

BATCH = 100  # sign-ups handled per round
RATE_KEY = "signup:"  # the prefix of this module's rate counters (console_rate_counters)


@dataclass(frozen=True)
class Details:
    """What a sign-up form said besides the address, and the consent texts it showed."""

    name: str = ""
    municipality_id: int | None = None
    role: str | None = None
    areas: tuple[str, ...] = ()
    subscribe: bool = False  # wants the newsletter
    page: str = ""  # the form's path
    consent_text_id: int | None = None
    newsletter_text_id: int | None = None


# --- the request ------------------------------------------------------------------------------

def limited(session: Session, settings: Settings, email: str, client: str, *, page: str,
            now: datetime | None = None) -> str | None:
    """Count one sign-up of EMAIL on PAGE from CLIENT (an IP address): "client" if the client
    is over its limit, "address" if the address is (on that page), else None. Both are counted
    every time; only keyed hashes are stored. Call it in a writer transaction."""
    limits = settings.signup
    window = timedelta(minutes=limits.window_minutes)
    secret = settings.secret_key
    by_client = over_limit(session, f"{RATE_KEY}c:{keyed_hash(secret, 'signup-client', client)}",
                           limits.per_client, window, now=now)
    by_address = over_limit(
        session, f"{RATE_KEY}a:{keyed_hash(secret, 'signup-address', f'{page} {email}')}",
        limits.per_address, window, now=now)
    return "client" if by_client else "address" if by_address else None


def record(session: Session, webinar: Webinar | None, email: str, *,
           details: Details | None = None, now: datetime | None = None) -> None:
    """Record that EMAIL (normalised) signed up (for WEBINAR, or the newsletter): one lookup
    and one insert, the same whoever it is. The address itself is kept only for one who is
    not a contact, until the row is handled."""
    d = details or Details()
    person_id = session.scalar(select(Person.id).where(Person.email == email))
    session.add(Signup(webinar_id=webinar.id if webinar is not None else None,
                       person_id=person_id, email=None if person_id is not None else email,
                       created_at=now or datetime.now(UTC), name=d.name,
                       municipality_id=d.municipality_id, role=d.role,
                       areas=list(d.areas) or None, subscribe=d.subscribe, page=d.page,
                       consent_text_id=d.consent_text_id,
                       newsletter_text_id=d.newsletter_text_id))


# --- the background ---------------------------------------------------------------------------

def handle_pending(settings: Settings, writers: sessionmaker[Session]) -> list[int]:
    """Handle the sign-ups recorded so far (up to BATCH), each in its own transaction; the ids
    of the mailings they caused (confirmations), to be sent. A row that fails stays for the
    next round; the first failure is raised once the others are done."""
    with writers() as s:
        ids = list(s.scalars(select(Signup.id).where(Signup.mailed_at.is_(None))
                             .order_by(Signup.id).limit(BATCH)))
    mailings: list[int] = []
    failed: NewsletterError | None = None
    for signup_id in ids:
        try:
            with db.transaction(writers) as s:
                signup = s.scalar(select(Signup).where(Signup.id == signup_id,
                                                       Signup.mailed_at.is_(None))
                                  .with_for_update())
                if signup is None:
                    continue  # another process handled it
                made, keep = _handle(s, settings, signup, datetime.now(UTC))
                if not keep:
                    s.delete(signup)
            mailings += made
        except NewsletterError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return mailings


def _handle(session: Session, settings: Settings, signup: Signup,
            now: datetime) -> tuple[list[int], bool]:
    """(mailing ids, whether the row stays to wait for the person)."""
    webinar = session.get(Webinar, signup.webinar_id) if signup.webinar_id is not None else None
    person = session.get(Person, signup.person_id) if signup.person_id is not None else None
    address = person.email if person is not None else signup.email
    if address is None or (signup.webinar_id is not None and webinar is None):
        return [], False  # the person or the webinar is gone since
    reason = suppression_reason(session, settings.secret_key, address)
    if webinar is not None:
        if person is not None and person.status == "active" and reason is None:
            try:
                outcome = webinars.register(session, settings, webinar, person,
                                            now=signup.created_at)
            except NewsletterError:
                return [], False  # closed since the request: the page said so already
            return outcome.mailings, False
        if webinar.status != "scheduled" or webinar.starts_at <= now:
            return [], False
    if not may_confirm(person.status if person is not None else None, reason):
        return [], False
    if person is None:  # maybe made by an earlier row of this round
        person = session.scalar(select(Person).where(Person.email == address))
    if person is None:
        person = Person(email=address, name=signup.name, status="pending",
                        lawful_basis="consent", basis_source=signup.page, basis_at=now)
        session.add(person)
        session.flush()
    signup.person_id, signup.email = person.id, None
    signup.public_id, signup.mailed_at = new_public_id(), now
    session.flush()
    created = creating.create_mailing(session, settings,
                                      confirmation(settings, signup, person, webinar),
                                      f"person:{person.public_id}", persons=[person])
    log_event(session, EventKind.SIGNUP_MAILED, person, page=signup.page)
    return [created.mailing.id], True


# --- the person confirms ----------------------------------------------------------------------

def find(session: Session, settings: Settings, token: str, *,
         now: datetime | None = None) -> Signup | None:
    """The sign-up waiting for the person that TOKEN (from links.confirm_url) names, or None:
    forged, expired, or used already (then it is gone) all look the same."""
    public_id = read_token(settings.secret_key, links.CONFIRM, token or "")
    if public_id is None:
        return None
    signup = session.scalar(select(Signup).where(Signup.public_id == public_id))
    if signup is None or signup.mailed_at is None or signup.person_id is None:
        return None
    if (now or datetime.now(UTC)) - signup.created_at >= _valid(settings):
        return None
    return signup


def _valid(settings: Settings) -> timedelta:
    return timedelta(days=settings.signup.confirm_days)


@dataclass
class Confirmed:
    """What a confirmation did: the person, and for a webinar the registration's status
    (registered, waitlisted, already-...; None when registration had closed meanwhile) and the
    mailings to send."""

    person: Person
    webinar: Webinar | None = None
    registration: str | None = None
    mailings: list[int] | None = None
    claimed: bool = False  # the role they gave waits for staff (role_claims.py)


def confirm(session: Session, settings: Settings, token: str, *,
            now: datetime | None = None) -> Confirmed | None:
    """Apply the sign-up TOKEN names (see the module docstring); None if it names none that
    can be confirmed now (nothing changes then)."""
    now = now or datetime.now(UTC)
    signup = find(session, settings, token, now=now)
    if signup is None:
        return None
    person = session.scalar(select(Person).where(Person.id == signup.person_id).options(
        selectinload(Person.positions), selectinload(Person.areas)))
    reason = suppression_reason(session, settings.secret_key, person.email)
    if not may_confirm(person.status, reason):
        return None  # bounced or erased since the mail went
    today = now.astimezone(ZoneInfo(settings.organisation.timezone)).date()
    was = person.status
    if was == "unsubscribed":
        preferences.resubscribe(session, settings.secret_key, person, source=signup.page)
    elif reason == SuppressionReason.UNSUBSCRIBED:  # an address blocked before it was a contact
        session.execute(delete(Suppression).where(
            Suppression.email_hash == address_hash(settings.secret_key, person.email)))
    person.status = "active"
    if signup.subscribe:
        person.subscribed = True
    elif was != "active":
        person.subscribed = False  # came for a webinar only
    if signup.name:
        person.name = signup.name
    person.lawful_basis, person.basis_source, person.basis_at = "consent", signup.page, now
    claimed = _position(session, settings, person, signup, today, now)
    areas = [a for a in signup.areas or () if a in settings.area_slugs]
    if areas:
        preferences.set_areas(session, settings, person, areas)
    made = consent.record(session, person, signup, now=now)
    log_event(session, EventKind.SIGNUP_CONFIRMED, person, page=signup.page,
              purposes=sorted({c.purpose for c in made}))
    result = Confirmed(person, mailings=[], claimed=claimed)
    if signup.webinar_id is not None:
        result.webinar = session.get(Webinar, signup.webinar_id)
        try:
            outcome = webinars.register(session, settings, result.webinar, person, now=now)
            result.registration, result.mailings = outcome.status, outcome.mailings
        except NewsletterError:
            pass  # cancelled or started meanwhile: the page tells
    session.delete(signup)
    session.flush()
    return result


def _position(session: Session, settings: Settings, person: Person, signup: Signup,
              today: date, now: datetime) -> bool:
    """The position the form named: started, or a claim for staff (role_claims.py); True if
    a claim waits."""
    role = signup.role or (DEFAULT_ROLE if signup.municipality_id is not None else None)
    if role is None or role not in settings.roles or (
            role == DEFAULT_ROLE and signup.municipality_id is None):
        return False
    if role_claims.needs_verification(settings, role):
        return role_claims.claim(session, settings, person, signup.municipality_id, role,
                                 page=signup.page, today=today, now=now) is not None
    if any(p.municipality_id == signup.municipality_id and p.role == role
           and not p.ended_by(today) for p in person.positions):
        return False
    start_position(session, person, signup.municipality_id, role, today, source=signup.page)
    end_placeholder(session, settings, person, signup.municipality_id, today,
                    source=signup.page)
    return False


# --- housekeeping -----------------------------------------------------------------------------

def purge_expired(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Delete the sign-ups whose link has expired, the pending persons left without one (what
    they gave is not kept; their confirmation's frozen content goes too) and old rate
    counters. Returns how many sign-ups and persons went."""
    now = now or datetime.now(UTC)
    cutoff = now - _valid(settings)
    gone = session.execute(delete(Signup).where(Signup.created_at < cutoff)
                           .execution_options(synchronize_session=False)).rowcount or 0
    stale = list(session.scalars(select(Person).where(
        Person.status == "pending", Person.created_at < cutoff,
        ~exists().where(Signup.person_id == Person.id))))
    for person in stale:
        forgetting.forget_person(session, person)
        session.delete(person)
    window = timedelta(minutes=settings.signup.window_minutes)
    session.execute(delete(RateCounter).where(RateCounter.key.like(f"{RATE_KEY}%"),
                                              RateCounter.window_start < now - window))
    session.flush()
    return gone + len(stale)
