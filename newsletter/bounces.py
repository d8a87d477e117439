"""Bounces: delivery status notifications (RFC 3464) and spam complaints (ARF, RFC 5965) read
from a Maildir or mbox.

A hard bounce suppresses the address at once (events.hard_bounce, the one policy); soft bounces
are counted on the person and count as a hard bounce after `[bounces] soft_limit`; auto-replies
and ordinary mail are ignored. Each report is remembered by a digest, so reading the same mailbox
again changes nothing. The mailbox itself is only read, never changed.

A message delivered in between starts the soft-bounce count again: `soft_limit` counts soft
bounces in a row, not over a lifetime. The only deliveries we know of are the outbox rows the
relay accepted (`sent_at`), and a report comes after the message it is about, so the rule reads
the times of the messages, not of the reports: a soft bounce about message M (the outbox row its
Message-ID names; without one, the person's latest message) resets the count when another
message to the person was sent after the last message that soft-bounced
(`persons.soft_bounced_at`) and before M, and has not bounced itself. A report about an older
message that arrives late therefore never resets anything.

A spam complaint (a feedback report, `multipart/report; report-type=feedback-report`, as
Microsoft, Yahoo and others send through their feedback loops) suppresses the address with the
reason "complaint" and unsubscribes the person: the address is found in the report's
Original-Rcpt-To, or, as most providers redact it, through the Message-ID of the returned
message (our outbox row).
"""

from __future__ import annotations

import email
import hashlib
import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from flufl.bounce import all_failures
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .contacts import normalise_email
from .errors import InputError, InvalidAddress
from .events import EventKind, SuppressionReason, hard_bounce, log_event, suppress
from .i18n import _
from .models import OutboxRow, Person, ProcessedReport
from .outbox import creating, forgetting
from .settings import Settings

HARD = "hard"
SOFT = "soft"
AUTO_REPLY = "auto_reply"
NOT_REPORT = "not_report"
COMPLAINT = "complaint"

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_HEADER_TYPES = ("text/rfc822-headers", "message/rfc822-headers")
_MESSAGE_TYPES = ("message/rfc822", "message/global")
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS_RE = re.compile(r"[^\s<>;:,()\"'\[\]]+@[^\s<>;:,()\"'\[\]]+")
_MESSAGE_ID_RE = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
# What one message file starts with: a header field ("Name: value", RFC 5322's printable field
# name). Anything else (a PDF, random bytes) is not a mailbox: refused rather than counted.
_MESSAGE_START = re.compile(rb"[!-9;-~]+:")
_SNIFF = 4096
# flufl.bounce logs a traceback when one of its detectors trips over a malformed message (then
# raises; see _legacy_failures); with nothing configured, Python would print it to stderr.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
# The status a DSN recipient block implies by its Action when it gives no code.
_IMPLIED_STATUS = {"failed": "5.0.0", "delayed": "4.0.0"}
# Subjects of personal auto-replies (Outlook in Swedish and English, common webmail).
_AUTO_SUBJECTS = ("automatiskt svar", "autosvar", "automatic reply", "auto:", "out of office",
                  "frånvaro", "abwesenheit")


@dataclass(frozen=True)
class Failure:
    """One recipient a report says could not be reached."""

    email: str
    status: str  # the enhanced status code, e.g. "5.1.1"
    kind: str  # HARD or SOFT; COMPLAINT for the complainant of a feedback report
    diagnostic: str = ""


@dataclass(frozen=True)
class Report:
    """What one message in the bounce mailbox says."""

    kind: str  # HARD (at least one hard failure), SOFT, COMPLAINT, AUTO_REPLY or NOT_REPORT
    failures: tuple[Failure, ...] = ()
    original_message_id: str | None = None


@dataclass
class BounceSummary:
    """Counts of one `process_mailbox` run: addresses for bounces, messages for the rest."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    suppressed_after_soft: int = 0
    auto_replies: int = 0
    not_reports: int = 0
    already_processed: int = 0
    unknown_addresses: int = 0
    complaints: int = 0


# --- reading and classifying ----------------------------------------------------------------

def classify_status(action: str, status: str) -> str | None:
    """HARD, SOFT or None (no failure) for a DSN recipient's Action and Status.

    5.x.x is hard, except what says nothing about the address: mailbox full or message too big
    (5.2.2, 5.2.3), the destination system (5.3.x) and policy refusals such as spam filters
    (5.7.x); those are soft, as are 4.x.x and delayed reports.
    """
    action = action.strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    match = _STATUS_RE.search(status)
    if match is None:
        return HARD if action == "failed" else SOFT if action == "delayed" else None
    klass, subject, detail = match.groups()
    if klass == "2":
        return None
    if klass == "4" or action == "delayed":
        return SOFT
    if (subject, detail) in (("2", "2"), ("2", "3")) or subject in ("3", "7"):
        return SOFT
    return HARD


def parse_report(raw: bytes) -> Report:
    """Read one message: a delivery report (RFC 3464, or a legacy bounce flufl.bounce knows),
    a spam complaint (RFC 5965), an auto-reply, or anything else."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    if _is_feedback_report(msg):
        return Report(COMPLAINT, tuple(_complainants(msg)), _original_message_id(msg, []))
    blocks = _delivery_status_blocks(msg)
    if blocks is not None:
        failures = tuple(_dsn_failures(blocks))
        return Report(_overall(failures), failures, _original_message_id(msg, blocks))
    if _is_personal_auto_reply(msg):
        return Report(AUTO_REPLY)
    failures = tuple(_legacy_failures(msg))
    if failures:
        return Report(_overall(failures), failures, _original_message_id(msg, []))
    if _header(msg, "Auto-Submitted").lower() not in ("", "no"):
        return Report(AUTO_REPLY)
    return Report(NOT_REPORT)


def report_digest(raw: bytes) -> str:
    """A report's identity: its Message-ID and body, so that status flags a mail client adds to
    the headers (Status:, X-Status:) do not make it look new."""
    parts = _HEADER_END_RE.split(raw, 1)
    body = parts[1] if len(parts) == 2 else b""
    headers = email.message_from_bytes(parts[0] + b"\n\n", policy=policy.compat32)
    message_id = " ".join(str(headers.get("Message-ID", "")).split())
    return hashlib.sha256(message_id.encode("utf-8", "replace") + b"\0" + body).hexdigest()


def _header(msg: Message, name: str) -> str:
    return " ".join(str(msg.get(name, "")).split())


def _overall(failures: tuple[Failure, ...]) -> str:
    if any(f.kind == HARD for f in failures):
        return HARD
    return SOFT if failures else NOT_REPORT


def _delivery_status_blocks(msg: Message) -> list[Message] | None:
    """The header blocks of the message/delivery-status part, or None if there is none."""
    for part in msg.walk():
        if part.get_content_type() not in _DSN_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            return payload
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        parser = HeaderParser(policy=policy.default)
        return [parser.parsestr(chunk.strip() + "\n")
                for chunk in re.split(r"\r?\n[ \t]*\r?\n", text) if chunk.strip()]
    return None


def _dsn_failures(blocks: list[Message]) -> Iterator[Failure]:
    for block in blocks[1:]:
        recipient = _header(block, "Original-Recipient") or _header(block, "Final-Recipient")
        address = recipient.rpartition(";")[2].strip().strip("<>")
        action = _header(block, "Action")
        diagnostic = _header(block, "Diagnostic-Code")
        match = _STATUS_RE.search(_header(block, "Status")) or _STATUS_RE.search(diagnostic)
        status = match.group(0) if match else _IMPLIED_STATUS.get(action.lower(), "")
        kind = classify_status(action, status)
        if kind and address:
            yield Failure(address, status, kind, diagnostic)


def _is_feedback_report(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and (msg.get_param("report-type") or "").lower() == "feedback-report")


def _complainants(msg: Message) -> Iterator[Failure]:
    """The addresses a feedback report names (Original-Rcpt-To; Removal-Recipient, from drafts
    some providers still follow), often none: providers redact them."""
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            fields = payload[0] if payload else None
        else:
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            fields = HeaderParser(policy=policy.default).parsestr(text.strip() + "\n")
        if fields is None:
            return
        kind = _header(fields, "Feedback-Type").lower() or "abuse"
        for name in ("Original-Rcpt-To", "Removal-Recipient"):
            for value in fields.get_all(name) or ():
                address = " ".join(str(value).split()).strip("<>")
                if "@" in address:
                    yield Failure(address, "", COMPLAINT, kind)
        return


def _legacy_failures(msg: Message) -> Iterator[Failure]:
    """Bounces that are not RFC 3464 (qmail, old Exchange, ...), found by flufl.bounce."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - its heuristics trip over malformed mail: not a bounce
        return
    for address in sorted(permanent):
        yield Failure(address.decode("ascii", "replace"), "5.0.0", HARD)
    for address in sorted(temporary - permanent):
        yield Failure(address.decode("ascii", "replace"), "4.0.0", SOFT)


def _is_personal_auto_reply(msg: Message) -> bool:
    """Out-of-office and similar replies; Auto-Submitted alone is checked after flufl.bounce,
    as some mail servers put it on their (non RFC 3464) bounces too."""
    if any(msg.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    return _header(msg, "Subject").lower().startswith(_AUTO_SUBJECTS)


def _original_message_id(msg: Message, blocks: list[Message]) -> str | None:
    """The Message-ID of the message that bounced, if the report carries it."""
    for part in msg.walk():
        content_type = part.get_content_type()
        headers: Message | None = None
        if content_type in _HEADER_TYPES:
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            headers = HeaderParser(policy=policy.default).parsestr(text)
        elif content_type in _MESSAGE_TYPES and part.is_multipart():
            headers = part.get_payload(0)
        if headers is not None and headers.get("Message-ID"):
            return _header(headers, "Message-ID")
    if blocks and blocks[0].get("X-Original-Message-ID"):
        return _header(blocks[0], "X-Original-Message-ID")
    if not msg.is_multipart():
        match = _MESSAGE_ID_RE.search(msg.get_payload(decode=True).decode("utf-8", "replace"))
        return match.group(1) if match else None
    return None


# --- the mailbox ----------------------------------------------------------------------------

def read_mailbox(path: Path) -> Iterator[bytes]:
    """The raw messages in PATH: a Maildir (new/ and cur/), an mbox file, or one message file."""
    if not path.exists():
        raise InputError(_("no such file or folder"), source=str(path))
    if path.is_dir():
        if not ((path / "new").is_dir() or (path / "cur").is_dir()):
            raise InputError(_("not a Maildir (it has no new/ or cur/ folder)"), source=str(path))
        box: mailbox.Mailbox = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.keys())
    else:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF)
        if not head:
            return
        if not head.startswith(b"From "):
            if not _MESSAGE_START.match(head) or b"\0" in head:
                raise InputError(_("neither a Maildir folder, an mbox file nor an email "
                                   "message"), source=str(path))
            yield path.read_bytes()
            return
        box = mailbox.mbox(path, create=False)
        keys = list(box.keys())
    for key in keys:
        yield box.get_bytes(key)


# --- applying reports -----------------------------------------------------------------------

def process_mailbox(session: Session, settings: Settings, path: Path) -> BounceSummary:
    """Read every message in PATH and apply the reports not seen before (see the module doc).

    Run it in a transaction; roll that back for a dry run.
    """
    summary = BounceSummary()
    for raw in read_mailbox(path):
        summary.messages += 1
        digest = report_digest(raw)
        if session.scalar(select(ProcessedReport.id).where(ProcessedReport.digest == digest)):
            summary.already_processed += 1
            continue
        report = parse_report(raw)
        apply_report(session, settings, report, summary)
        session.add(ProcessedReport(digest=digest, outcome=report.kind))
    return summary


def apply_report(session: Session, settings: Settings, report: Report,
                 summary: BounceSummary) -> None:
    """Suppress, count and log what REPORT says, adding to SUMMARY."""
    if report.kind == AUTO_REPLY:
        summary.auto_replies += 1
        return
    if report.kind == NOT_REPORT:
        summary.not_reports += 1
        return
    row = creating.row_by_message_id(session, report.original_message_id)
    if report.kind == COMPLAINT:
        _complaint(session, settings, report, row, summary)
        return
    for failure in report.failures:
        try:
            address = normalise_email(failure.email)
        except InvalidAddress:
            continue
        person = _find_person(session, address)
        if person is None:
            summary.unknown_addresses += 1
            if row is not None and row.person_id is not None and len(report.failures) == 1:
                person = session.get(Person, row.person_id)
        previous = (row.last_error or "") if row is not None else ""
        counted_before = previous.startswith("bounce")
        # The sender's own note on the row (e.g. "possibly sent twice") is kept.
        if row is not None and (not previous or counted_before) and not (
                failure.kind == SOFT and counted_before):
            row.last_error = _describe(failure)
        if failure.kind == HARD:
            hard_bounce(session, settings.secret_key, person,
                        addresses=(address, address.lower()), status=failure.status, type=HARD)
            summary.hard += 1
        elif not counted_before:
            summary.soft += 1
            if _soft_bounce(session, settings, person, failure,
                            row if row is not None and person is not None
                            and row.person_id == person.id else None):
                summary.suppressed_after_soft += 1


def _soft_bounce(session: Session, settings: Settings, person: Person | None,
                 failure: Failure, row: OutboxRow | None) -> bool:
    """Count a soft bounce about ROW (None: the person's latest message), starting the count
    again after a delivery (see the module docstring); True if it took the person over the
    limit and suppressed them."""
    if person is None:
        return False
    bounced_at = row.sent_at if row is not None else None
    if bounced_at is None:
        bounced_at = forgetting.last_sent_at(session, person.id)
    if (bounced_at is not None and person.soft_bounced_at is not None
            and forgetting.delivered_between(session, person.id, person.soft_bounced_at,
                                             bounced_at)):
        person.soft_bounces = 0
    if bounced_at is not None and (person.soft_bounced_at is None
                                   or bounced_at > person.soft_bounced_at):
        person.soft_bounced_at = bounced_at
    person.soft_bounces = (person.soft_bounces or 0) + 1
    log_event(session, EventKind.DEFERRED, person, status=failure.status, source="dsn")
    if person.soft_bounces < settings.soft_bounce_limit or person.status != "active":
        return False
    hard_bounce(session, settings.secret_key, person, status=failure.status, type="soft_limit",
                soft_bounces=person.soft_bounces)
    return True


def _complaint(session: Session, settings: Settings, report: Report, row: OutboxRow | None,
               summary: BounceSummary) -> None:
    """Suppress the complainant's address ("complaint") and unsubscribe them."""
    persons: dict[int, Person] = {}
    addresses = set()
    for failure in report.failures:
        try:
            address = normalise_email(failure.email)
        except InvalidAddress:
            continue
        addresses.add(address)
        person = _find_person(session, address)
        if person is not None:
            persons[person.id] = person
    if not persons and row is not None and row.person_id is not None:
        person = session.get(Person, row.person_id)
        if person is not None:
            persons[person.id] = person
    if not persons and not addresses:
        summary.unknown_addresses += 1
        return
    kind = report.failures[0].diagnostic if report.failures else "abuse"
    for address in addresses - {p.email for p in persons.values()}:
        suppress(session, settings.secret_key, address, SuppressionReason.COMPLAINT)
    for person in persons.values():
        suppress(session, settings.secret_key, person.email, SuppressionReason.COMPLAINT)
        if person.status == "active":
            person.status = "unsubscribed"
        log_event(session, EventKind.COMPLAINED, person, type=kind)
    summary.complaints += 1


def _find_person(session: Session, address: str) -> Person | None:
    """The person with ADDRESS; reports often change the case of the local part."""
    person = session.scalar(select(Person).where(Person.email == address))
    if person is None:
        person = session.scalars(
            select(Person).where(func.lower(Person.email) == address.lower())).first()
    return person


def _describe(failure: Failure) -> str:
    """The outbox row's last_error: kind, status and the diagnostic without any address."""
    diagnostic = _ADDRESS_RE.sub("<adress>", failure.diagnostic)
    return f"bounce {failure.kind} {failure.status}: {diagnostic}"[:300].rstrip(": ")
