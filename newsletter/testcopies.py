"""Test copies: a mailing's content sent to a few addresses before it goes out, subject marked
[TEST], and what became of each.

A test copy is a mailing of its own (`outbox.creating.create_test_mailings`): it publishes nothing,
marks nobody as sent and is left out of every report. Any address may get one, contact or
not, except an address on the suppression list because it bounced (it takes no mail: another
bounce hurts the sender's reputation), complained (it called our mail spam) or was erased (the
person asked to be forgotten). An unsubscribed address may: staff often unsubscribe from the
newsletter they compile and still test it in their own mailbox. The check is all or nothing:
one refused address and no copy is made, so a form can be corrected and sent again whole.

Both surfaces use it: `newsletter send issue --test-to` and the console's test send, which
records the copies and leaves their sending to its background sender (`recent` then tells
the page what became of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from .contacts import normalise_email
from .errors import InputError, SuppressedAddress
from .events import SuppressionReason, suppression_reason
from .i18n import _
from .models import Mailing, MailingKind, MailingStatus, OutboxStatus, Person
from .outbox import creating, lifecycle
from .settings import Settings
from .sources import Content, Source

MAX_ADDRESSES = 10  # a test send is a check, not a way round the segments
RECENT = 10  # test copies of one source a page lists
REFUSED = (SuppressionReason.BOUNCED, SuppressionReason.COMPLAINT, SuppressionReason.ERASED)
_SEPARATORS = re.compile(r"[\s,;]+")


def parse_addresses(text: str, *, field: str = "addresses") -> list[str]:
    """The addresses in TEXT (separated by commas, semicolons, spaces or new lines), each
    normalised (contacts.normalise_email), duplicates dropped, at most MAX_ADDRESSES."""
    found = list(dict.fromkeys(normalise_email(part, field=field)
                               for part in _SEPARATORS.split(text or "") if part))
    if not found:
        raise InputError(_("give at least one address"), field=field)
    if len(found) > MAX_ADDRESSES:
        raise InputError(_("at most {n} addresses at a time").format(n=MAX_ADDRESSES),
                         field=field)
    return found


def refusal(session: Session, settings: Settings, address: str) -> str | None:
    """Why ADDRESS (normalised) may not get a test copy, or None if it may."""
    reason = suppression_reason(session, settings.secret_key, address)
    texts = {
        SuppressionReason.BOUNCED: _("{address} bounced: it takes no mail"),
        SuppressionReason.COMPLAINT: _("{address} reported our mail as spam"),
        SuppressionReason.ERASED: _("{address} was erased at the person's request"),
    }
    return texts[reason].format(address=address) if reason in REFUSED else None


def create(session: Session, settings: Settings, source: Source,
           addresses: Iterable[str]) -> list[Mailing]:
    """A test copy of SOURCE for each of ADDRESSES (normalised), in the caller's transaction;
    none at all (SuppressedAddress) if any address may not get one (see the module's text)."""
    addresses = list(addresses)
    refused = [why for why in (refusal(session, settings, a) for a in addresses) if why]
    if refused:
        raise SuppressedAddress(_("no test copy was sent: {reasons}").format(
            reasons="; ".join(refused)))
    return creating.create_test_mailings(session, settings, source, addresses)


@dataclass(frozen=True)
class OneVariant:
    """SOURCE with everyone getting variant KEY: a test of the variant a preview shows, whoever
    the address belongs to. The rest (kind, key, subject, rendering) is SOURCE's."""

    source: Source
    variant: str

    @property
    def kind(self) -> MailingKind:
        return self.source.kind

    @property
    def key(self) -> str:
        return self.source.key

    @property
    def transactional(self) -> bool:
        return self.source.transactional

    @property
    def subject(self) -> str:
        return self.source.subject

    def variant_of(self, person: Person) -> str:
        return self.variant

    def render(self, key: str) -> Content:
        return self.source.render(key)


@dataclass(frozen=True)
class TestCopy:
    """One test copy and where it stands: STATE is an OutboxStatus value, or "paused" for a
    mailing the engine paused (DETAIL says why: the relay's answer, the reason it failed)."""

    __test__ = False  # not a test class, whatever pytest makes of the name

    mailing_id: int
    address: str  # "" once the address was erased
    subject: str
    created_at: datetime
    state: str
    detail: str = ""
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None

    @property
    def delivered(self) -> bool:
        return self.state == OutboxStatus.SENT

    @property
    def finished(self) -> bool:
        return self.state in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED)


def recent(session: Session, source: Source, *, limit: int = RECENT) -> list[TestCopy]:
    """The latest test copies of SOURCE (its kind and key), newest first."""
    ids = creating.mailing_ids_like(session, source.kind, f"test:{source.key}:")[-limit:]
    return [_copy(session, mailing_id) for mailing_id in reversed(ids)]


def _copy(session: Session, mailing_id: int) -> TestCopy:
    progress = lifecycle.mailing_status(session, mailing_id, failures=1)
    mailing = progress.mailing
    state = next((s for s in OutboxStatus if progress.counts[s]), OutboxStatus.PENDING)
    detail = progress.failures[0][1].partition(": ")[2] if progress.failures else ""
    if mailing.status == MailingStatus.PAUSED:
        state, detail = "paused", mailing.paused_reason or ""
    return TestCopy(mailing_id, (mailing.meta or {}).get("test_to", ""), mailing.subject,
                    mailing.created_at, state, detail, mailing.finished_at,
                    progress.next_attempt_at)
