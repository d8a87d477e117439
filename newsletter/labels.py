"""The one word for each state, in the site's language, for every surface (CLI and console).

A state is stored as an English StrEnum value ("sent", "done"); people read it through these
functions only, so that each word means one thing everywhere. In Swedish: "skickade" (the
receiving server took the message), "studsade" (it answered that the address does not exist:
a hard bounce, and the address is suppressed), "misslyckade" (failed for any other reason, e.g.
refused or given up after retries), "uppskjutna" (deferred: tried again later), "spärrade"
(not sent: unsubscribed, bounced or erased since the mailing was made), "väntar" (not tried
yet). A failed row that bounced is counted as "studsade", never also as "misslyckade".
"""

from __future__ import annotations

from typing import Protocol

from .i18n import _, pgettext
from .models import MailingKind, MailingStatus, OutboxStatus


def mailing_status(status: str) -> str:
    """A mailing's state as one word: 'schemalagt', 'skickas', 'pausat', 'klart', 'inställt'."""
    words = {MailingStatus.SCHEDULED: pgettext("mailing", "scheduled"),
             MailingStatus.SENDING: pgettext("mailing", "sending"),
             MailingStatus.PAUSED: pgettext("mailing", "paused"),
             MailingStatus.DONE: pgettext("mailing", "done"),
             MailingStatus.CANCELLED: pgettext("mailing", "cancelled")}
    return words.get(status, str(status))


def mailing_kind(kind: str) -> str:
    """What a mailing is: 'nyhetsbrev', 'riktat utskick', 'webbinarium'."""
    words = {MailingKind.ISSUE: pgettext("mailing kind", "newsletter"),
             MailingKind.TARGETED: pgettext("mailing kind", "targeted"),
             MailingKind.WEBINAR: pgettext("mailing kind", "webinar")}
    return words.get(kind, str(kind))


def outbox_status(status: str) -> str:
    """What the recipients of a mailing in STATUS are, as a heading of their count."""
    words = {OutboxStatus.PENDING: pgettext("recipients", "waiting"),
             OutboxStatus.SENDING: pgettext("recipients", "being sent"),
             OutboxStatus.SENT: pgettext("recipients", "sent"),
             OutboxStatus.DEFERRED: pgettext("recipients", "deferred"),
             OutboxStatus.FAILED: pgettext("recipients", "failed"),
             OutboxStatus.SUPPRESSED: pgettext("recipients", "suppressed")}
    return words.get(status, str(status))


def bounced() -> str:
    """The recipients whose address bounced (failed rows that were hard bounces)."""
    return pgettext("recipients", "bounced")


def contact_status(status: str) -> str:
    """A contact's state: 'aktiv', 'väntar på bekräftelse', 'avregistrerad', 'raderad' ..."""
    words = {"active": pgettext("contact", "active"),
             "pending": pgettext("contact", "awaiting confirmation"),
             "unsubscribed": pgettext("contact", "unsubscribed"),
             "bounced": pgettext("contact", "bounced"),
             "erased": pgettext("contact", "erased"),
             "complaint": pgettext("contact", "reported as spam")}  # a suppression reason
    return words.get(status, str(status))


def lawful_basis(basis: str) -> str:
    """The GDPR lawful basis of a contact: 'berättigat intresse' or 'samtycke'."""
    words = {"legitimate_interest": _("legitimate interest"), "consent": _("consent")}
    return words.get(basis, str(basis))


def webinar_status(status: str) -> str:
    """A webinar's state: 'planerat' or 'inställt'."""
    words = {"scheduled": pgettext("webinar", "scheduled"),
             "cancelled": pgettext("webinar", "cancelled")}
    return words.get(status, str(status))


class _Counts(Protocol):
    sent: int
    bounced: int
    failed: int
    suppressed: int
    remaining: int


def send_counts(report: _Counts) -> str:
    """'3 skickade, 0 studsade, 0 misslyckade, 0 spärrade, 0 kvar' of a send (sender.SendReport)."""
    return _("{sent} sent, {bounced} bounced, {failed} failed, {suppressed} suppressed, "
             "{left} left").format(sent=report.sent, bounced=report.bounced,
                                   failed=report.failed, suppressed=report.suppressed,
                                   left=report.remaining)
