"""Review and four-eyes approval of what goes to a segment: the issue, a targeted mailing, a
webinar announcement.

One review per mail, keyed like its mailings by kind and source key (`Ref`): "issue:2026-12",
"targeted:sha256:...", "webinar:SLUG:announce". A review is draft -> in review (`submit`) ->
approved (`approve`), or back to draft with a comment (`send_back`); what follows approval
(scheduled, sending, sent) is the state of its mailing, and `status` shows the two together.

What an approval covers. `snapshot` renders what would be sent: for an issue its complete
variant (every area and role-restricted item) and its public web version; for the others their
one message. `sources.fingerprint` of those contents, the segment's expression and a digest of
the email templates is the fingerprint: equal exactly when what goes out is. `submit` records
the fingerprint; `approve` refuses unless the content is still exactly what was submitted, and
records it again as approved; a send (preflight.py) refuses unless the current fingerprint is
the approved one. So any change after approval (an item, the editorial, a template, the
segment's definition, a webinar's time) voids it, visibly: `status` says "changed after
approval" and shows a unified diff of the review text (`review_text`: subject, preheader,
segment, templates digest, branding and the plain text, kept with the approval) against today's.

Who is who. Staff accounts (staff.py) carry the roles: any staff member may submit; a granskare
or an admin approves, sends back, sends. The author of the last change cannot approve it. We
take the one who submitted as that author: submitting records exactly what is submitted, and an
approval must match it, so any change made after the submission (in the console, with the CLI
or in a text editor) leaves the review "changed since it was submitted" until someone submits
it again, and that someone is then the author of the last change. A submission without a staff
member (`issue submit` without --by) names no author; any granskare may then approve it. The
command line authenticates nobody: --by is a claim, recorded in the event log; the console
will pass the signed-in member.

`[workflow] require_approval` (`approval_required`): true on a real site (`newsletter init`
writes it), false in the demo; not set, it is required unless [organisation] still holds the
demo's values.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import branding, segments, siteconfig, staff, webinars
from .content import check_month
from .errors import InputError, NotFound, NotPermitted, Refused
from .events import EventKind, log_event
from .i18n import _
from .kinds import webinar as webinar_kind
from .kinds.issue import IssueSource
from .kinds.targeted import TargetedSource
from .models import Mailing, MailingKind, MailingStatus, Person, Review, ReviewState, Staff
from .settings import Branding, Settings
from .sources import Content, Source, fingerprint

# The webinar invitation's calendar file carries a DTSTAMP (when it was made): the review
# renders it with this one, so that the same webinar gives the same fingerprint.
_FIXED_STAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Who a one-variant message is rendered for when reviewed (nobody: no personal content).
_PROBE = Person(email="granskning@example.se", name="", public_id="review", areas=[],
                positions=[])


@dataclass(frozen=True)
class Ref:
    """A mail under review: its mailing kind and source key."""

    kind: MailingKind
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


def parse_ref(text: str) -> Ref:
    """'2026-12' or 'issue:2026-12', 'targeted:sha256:...', 'webinar:SLUG:announce' (or
    'webinar:SLUG') as a Ref; InputError otherwise."""
    text = (text or "").strip()
    kind, _sep, key = text.partition(":")
    if not key:
        return Ref(MailingKind.ISSUE, check_month(text))
    if kind == MailingKind.ISSUE:
        return Ref(MailingKind.ISSUE, check_month(key))
    if kind == MailingKind.WEBINAR:
        slug = key.removesuffix(":announce")
        return Ref(MailingKind.WEBINAR, f"{slug}:announce")
    if kind == MailingKind.TARGETED and key.startswith("sha256:"):
        return Ref(MailingKind.TARGETED, key)
    raise InputError(_("not a mail to review: {text} (write YYYY-MM, targeted:sha256:... or "
                       "webinar:SLUG)").format(text=text), field="REF")


def ref_of(source: Source) -> Ref:
    return Ref(MailingKind(source.kind), source.key)


def submit_hint(ref: Ref) -> str:
    """The command that submits REF (for messages)."""
    if ref.kind == MailingKind.ISSUE:
        return f"newsletter issue submit {ref.key} --by EMAIL"
    if ref.kind == MailingKind.WEBINAR:
        slug = ref.key.removesuffix(":announce")
        return f"newsletter webinar announce {slug} --to SEGMENT --submit --by EMAIL"
    return "newsletter mail --to SEGMENT --subject ... --body ... --submit --by EMAIL"


def status_hint(ref: Ref) -> str:
    """The command that shows where REF stands (for messages)."""
    if ref.kind == MailingKind.ISSUE:
        return f"newsletter issue status {ref.key}"
    return f"newsletter review show {ref}"


def approve_hint(ref: Ref) -> str:
    """The command that approves REF (for messages)."""
    if ref.kind == MailingKind.ISSUE:
        return f"newsletter issue approve {ref.key} --by EMAIL"
    return f"newsletter review approve {ref} --by EMAIL"


def approval_required(settings: Settings) -> bool:
    """Whether a send to a segment needs an approval (see the module)."""
    required = settings.workflow.require_approval
    if required is None:
        return not siteconfig.demo_fields(settings.organisation)
    return required


# --- what would be sent -----------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What SOURCE to a segment would send now: its fingerprint and its review text."""

    fingerprint: str
    text: str
    subject: str
    segment_expr: str


def _templates_digest(settings: Settings) -> str:
    """SHA-256 over the email templates in use (the site's own, then the package's): a change
    in a branch no variant rendered today still changes what a later variant would say."""
    h = hashlib.sha256()
    for rank, folder in enumerate(settings.templates_dirs):
        email = folder / "email"
        if not email.is_dir():
            continue
        for path in sorted(p for p in email.rglob("*") if p.is_file()):
            h.update(f"{rank}:{path.relative_to(email).as_posix()}\0".encode())
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _contents(source: Source) -> list[Content]:
    if isinstance(source, IssueSource):
        renderer = source.renderer
        return [renderer.render(renderer.all_key), renderer.web_version()]
    if isinstance(source, webinar_kind.WebinarMessage):
        source = replace(source, stamped_at=_FIXED_STAMP)
    key = source.variant_of(_PROBE)
    return [replace(source.render(key), key=key)]


def review_text(content: Content, segment: str, segment_expr: str, templates: str,
                look: Branding | None = None) -> str:
    """What a reviewer reads and a diff compares: the subject, preheader, segment, templates
    digest, the branding (LOOK: a new colour or logo changes the HTML, not the plain text, and
    the diff must show why an approval no longer holds), the plain text, and any calendar file."""
    lines = [f"subject: {content.subject}", f"preheader: {content.preheader}",
             f"segment: {segment} = {segment_expr}", f"templates: {templates[:16]}"]
    if look is not None:
        lines.append(f"branding: {look.colour}, logo {look.logo or '-'} ({look.logo_alt})")
    lines += ["", ""]
    text = "\n".join(lines) + content.text
    for attachment in content.attachments:
        name = attachment.get("filename") or attachment.get("content_type", "")
        text += f"\n--- {name}\n{attachment.get('data', '')}"
    return text


def snapshot(settings: Settings, source: Source, segment: str) -> Snapshot:
    """Render SOURCE as it would go to SEGMENT now (see the module): fingerprint and text."""
    expr = segments.resolve_segment(settings, segment)
    contents = _contents(source)
    templates = _templates_digest(settings)
    return Snapshot(fingerprint=fingerprint(contents, expr, templates),
                    text=review_text(contents[0], segment, expr, templates,
                                     branding.current(settings)),
                    subject=contents[0].subject, segment_expr=expr)


def source_for(session: Session, settings: Settings, ref: Ref, *,
               now: datetime | None = None) -> Source:
    """The Source REF names, built afresh: an issue from its files (with the webinars
    upcoming at NOW), a webinar's announcement from its row, a targeted mailing from what its
    submission stored."""
    if ref.kind == MailingKind.ISSUE:
        return IssueSource(settings, ref.key, webinars.upcoming(session, settings, now))
    if ref.kind == MailingKind.WEBINAR:
        webinar = webinars.get_webinar(session, ref.key.removesuffix(":announce"))
        return webinar_kind.announcement(settings, webinar)
    found = get_review(session, ref)
    data = found.source_data if found is not None else {}
    if not data.get("subject"):
        raise NotFound(_("no submitted mailing {ref} (newsletter mail ... --submit)").format(
            ref=ref))
    return TargetedSource(settings, data["subject"], data["body"])


def source_data(source: Source) -> dict[str, Any]:
    """What `source_for` needs to build SOURCE again without its command's arguments."""
    if isinstance(source, TargetedSource):
        return {"subject": source.subject, "body": source.body}
    return {}


# --- who may do what ----------------------------------------------------------------------------

def staff_member(session: Session, email: str | None, needed: str) -> Staff:
    """The staff member EMAIL, who must have role NEEDED or above; NotPermitted otherwise."""
    member = staff.find_staff(session, email or "")
    if member is None:
        raise NotPermitted(_("{email} is not a staff member (newsletter staff list)").format(
            email=email or "?"))
    if not staff.allows(member.role, needed):
        raise NotPermitted(_("{email} is a {role}: only a reviewer or an administrator may do "
                             "that").format(email=member.email,
                                            role=staff.role_label(member.role).lower()))
    return member


# --- the review ---------------------------------------------------------------------------------

def get_review(session: Session, ref: Ref) -> Review | None:
    return session.scalar(select(Review).where(Review.kind == ref.kind, Review.key == ref.key))


def submit(session: Session, settings: Settings, source: Source, segment: str, *,
           by: str | None = None, now: datetime | None = None) -> Review:
    """Ask for review of SOURCE to SEGMENT as it is now; BY (a staff member, any role) is
    recorded as the author of the last change. Submitting again records the new version."""
    now = now or datetime.now(UTC)
    author = staff_member(session, by, staff.REDAKTOR).email if by is not None else None
    snap = snapshot(settings, source, segment)
    ref = ref_of(source)
    found = get_review(session, ref)
    if found is None:
        found = Review(kind=ref.kind, key=ref.key)
        session.add(found)
    found.state = ReviewState.IN_REVIEW
    found.subject, found.segment, found.segment_expr = snap.subject, segment, snap.segment_expr
    found.source_data = source_data(source)
    found.submitted_by, found.submitted_at = author, now
    found.submitted_fingerprint = snap.fingerprint
    found.approved_by = found.approved_at = found.approved_fingerprint = None
    found.comment = None
    session.flush()
    log_event(session, EventKind.REVIEW_SUBMITTED, ref=str(ref), by=author,
              fingerprint=snap.fingerprint)
    return found


def _in_review(session: Session, ref: Ref) -> Review:
    found = get_review(session, ref)
    if found is None or found.state != ReviewState.IN_REVIEW:
        raise Refused(_("{ref} is not in review: it must be submitted first ({command})")
                      .format(ref=ref, command=submit_hint(ref)))
    return found


def approve(session: Session, settings: Settings, source: Source, *, by: str,
            now: datetime | None = None) -> Review:
    """Approve SOURCE as submitted: BY must be a granskare or an admin and not its author, and
    the content must still be exactly what was submitted."""
    now = now or datetime.now(UTC)
    member = staff_member(session, by, staff.GRANSKARE)
    ref = ref_of(source)
    found = _in_review(session, ref)
    if found.submitted_by and found.submitted_by == member.email:
        raise NotPermitted(_("{email} submitted {ref} (the last change is theirs): another "
                             "reviewer must approve it").format(email=member.email, ref=ref))
    snap = snapshot(settings, source, found.segment)
    if snap.fingerprint != found.submitted_fingerprint:
        raise Refused(_("{ref} has changed since it was submitted: whoever changed it submits "
                        "it again ({command}), then another reviewer approves it").format(
            ref=ref, command=submit_hint(ref)))
    found.state = ReviewState.APPROVED
    found.approved_by, found.approved_at = member.email, now
    found.approved_fingerprint, found.approved_text = snap.fingerprint, snap.text
    session.flush()
    log_event(session, EventKind.REVIEW_APPROVED, ref=str(ref), by=member.email,
              fingerprint=snap.fingerprint)
    return found


def send_back(session: Session, settings: Settings, ref: Ref, *, by: str, comment: str,
              now: datetime | None = None) -> Review:
    """Send REF back to its author with COMMENT (BY: a granskare or an admin): it is a draft
    again, and an approval it had is withdrawn."""
    now = now or datetime.now(UTC)
    member = staff_member(session, by, staff.GRANSKARE)
    comment = (comment or "").strip()
    if not comment:
        raise InputError(_("say what should change"), field="--comment")
    found = get_review(session, ref)
    if found is None or found.state == ReviewState.DRAFT:
        raise Refused(_("{ref} is not in review: there is nothing to send back").format(ref=ref))
    found.state = ReviewState.DRAFT
    found.approved_by = found.approved_at = found.approved_fingerprint = None
    found.returned_by, found.returned_at, found.comment = member.email, now, comment
    session.flush()
    log_event(session, EventKind.REVIEW_SENT_BACK, ref=str(ref), by=member.email)
    return found


# --- where it stands ------------------------------------------------------------------------------

class Shown:
    """The states `status` shows: the review's, then its mailing's."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGED_IN_REVIEW = "changed_in_review"  # changed since it was submitted
    APPROVED = "approved"
    CHANGED = "changed_after_approval"  # the approval is void
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"


def state_label(state: str) -> str:
    """STATE (a Shown value) for people."""
    return {Shown.DRAFT: _("draft"), Shown.IN_REVIEW: _("in review"),
            Shown.CHANGED_IN_REVIEW: _("in review, changed since it was submitted"),
            Shown.APPROVED: _("approved"), Shown.CHANGED: _("changed after approval"),
            Shown.SCHEDULED: _("scheduled"), Shown.SENDING: _("sending"),
            Shown.PAUSED: _("paused"), Shown.SENT: _("sent")}[state]


@dataclass
class ReviewStatus:
    ref: Ref
    state: str  # a Shown value
    review: Review | None
    current: Snapshot | None  # None when it cannot be rendered now (the error says why)
    error: str | None = None
    approval_required: bool = True
    mailings: list[Mailing] = field(default_factory=list)  # to segments, oldest first
    diff: list[str] = field(default_factory=list)  # since approval, when it changed

    @property
    def approved(self) -> bool:
        """Approved, and still exactly what was approved."""
        return self.state == Shown.APPROVED


def diff(old: str, new: str) -> list[str]:
    """A unified diff of two review texts (the approved one and today's)."""
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(),
                                     _("approved"), _("now"), lineterm=""))


def mailings_of(session: Session, ref: Ref) -> list[Mailing]:
    """REF's mailings to a segment (not test copies, not one-person messages), oldest first."""
    return list(session.scalars(select(Mailing).where(
        Mailing.kind == ref.kind, Mailing.source == ref.key).order_by(Mailing.id)))


_MAILING_SHOWN = {MailingStatus.SCHEDULED: Shown.SCHEDULED, MailingStatus.SENDING: Shown.SENDING,
                  MailingStatus.PAUSED: Shown.PAUSED, MailingStatus.DONE: Shown.SENT}


def status(session: Session, settings: Settings, source: Source, *,
           segment: str | None = None) -> ReviewStatus:
    """Where SOURCE stands: its review against what it would send now to SEGMENT (default:
    the segment it was submitted for), and its latest mailing."""
    ref = ref_of(source)
    found = get_review(session, ref)
    segment = segment or (found.segment if found else None) or settings.workflow.issue_segment
    result = ReviewStatus(ref, Shown.DRAFT, found, None,
                          approval_required=approval_required(settings),
                          mailings=mailings_of(session, ref))
    try:
        result.current = snapshot(settings, source, segment)
    except (InputError, NotFound) as exc:
        result.error = str(exc)
    if found is not None and found.state == ReviewState.IN_REVIEW:
        result.state = Shown.IN_REVIEW
        if result.current and result.current.fingerprint != found.submitted_fingerprint:
            result.state = Shown.CHANGED_IN_REVIEW
    elif found is not None and found.state == ReviewState.APPROVED:
        result.state = Shown.APPROVED
        if not result.current or result.current.fingerprint != found.approved_fingerprint:
            result.state = Shown.CHANGED
            if result.current and found.approved_text is not None:
                result.diff = diff(found.approved_text, result.current.text)
    live = [m for m in result.mailings if m.status != MailingStatus.CANCELLED]
    if live:
        result.state = _MAILING_SHOWN.get(live[-1].status, result.state)
    return result


def check_approved(session: Session, settings: Settings, source: Source, segment: str) -> None:
    """Refused, with one line saying why and what to do, unless SOURCE to SEGMENT is approved
    and unchanged since."""
    ref = ref_of(source)
    found = get_review(session, ref)
    if found is None or found.state == ReviewState.DRAFT:
        extra = (_(" It was sent back: {comment}").format(comment=found.comment)
                 if found is not None and found.comment else "")
        raise Refused(_("{ref} is not approved: submit it for review first ({command}), then "
                        "a reviewer approves it.").format(ref=ref, command=submit_hint(ref))
                      + extra)
    if found.state == ReviewState.IN_REVIEW:
        raise Refused(_("{ref} is in review and not yet approved ({command})").format(
            ref=ref, command=approve_hint(ref)))
    snap = snapshot(settings, source, segment)
    if snap.segment_expr != found.segment_expr and segment != found.segment:
        raise Refused(_("{ref} was approved for the segment {approved} ({expr}), not {segment} "
                        "({now}): submit it again for this segment").format(
            ref=ref, approved=found.segment, expr=found.segment_expr, segment=segment,
            now=snap.segment_expr))
    if snap.fingerprint != found.approved_fingerprint:
        raise Refused(_("{ref} has changed after approval: the approval is void ({command} "
                        "shows what changed); submit it again").format(
            ref=ref, command=status_hint(ref)))
