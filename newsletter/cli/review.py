"""`newsletter issue submit|approve|send-back|status` and `newsletter review ...`: four-eyes
approval of what goes to a segment (review.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

from .. import review, schedule
from ..content import check_month
from ..i18n import _
from ..models import MailingKind, Review
from ..settings import Settings
from .app import App, pass_app
from .issues import issue_group

MONTH = click.argument("month", metavar="YYYY-MM")
REF = click.argument("ref", metavar="REF")
BY = click.option("--by", "by", metavar="EMAIL", required=True,
                  help="The staff member who does it (a reviewer or an administrator).")
COMMENT = click.option("--comment", required=True, help="What should change, for the author.")


def _when(settings: Settings, at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone(ZoneInfo(settings.organisation.timezone)).strftime("%Y-%m-%d %H:%M")


def _print_status(settings: Settings, st: review.ReviewStatus, *, show_diff: bool) -> None:
    click.echo(_("{ref}: {state}").format(ref=st.ref, state=review.state_label(st.state)))
    if not st.approval_required:
        click.echo(_("Approval is not required on this site ([workflow] require_approval)."))
    found = st.review
    if st.current is not None:
        click.echo(_("Subject: {subject}").format(subject=st.current.subject))
    if st.error:
        click.echo(_("It cannot be rendered now: {error}").format(error=st.error))
    if found is not None:
        click.echo(_("Segment: {segment} ({expr})").format(segment=found.segment,
                                                          expr=found.segment_expr))
        if found.submitted_at:
            click.echo(_("Submitted: {at} by {who}").format(
                at=_when(settings, found.submitted_at),
                who=found.submitted_by or _("(no staff member given)")))
        if found.approved_at:
            click.echo(_("Approved: {at} by {who}").format(at=_when(settings, found.approved_at),
                                                         who=found.approved_by))
        if found.comment:
            click.echo(_("Sent back: {at} by {who}: {comment}").format(
                at=_when(settings, found.returned_at), who=found.returned_by,
                comment=found.comment))
    for m in st.mailings:
        line = _("Mailing {id}: {status} to {segment}").format(id=m.id, status=m.status,
                                                               segment=m.segment)
        if m.scheduled_at is not None:
            line += _(", scheduled for {at}").format(at=schedule.scheduled_at_local(settings, m))
        click.echo(line)
    if st.state == review.Shown.CHANGED:
        click.echo(_("Changed after approval: the approval is void; submit it again."))
        if show_diff and st.diff:
            click.echo(_("What changed since the approval:"))
            for line in st.diff:
                click.echo(line)
    elif st.state == review.Shown.CHANGED_IN_REVIEW:
        click.echo(_("Changed since it was submitted: whoever changed it submits it again."))


# --- newsletter issue ... -----------------------------------------------------------------------

@click.command("submit")
@MONTH
@click.option("--to", "segment", default=None,
              help="The segment it is for (default: [workflow] issue_segment, medlemmar).")
@click.option("--by", "by", metavar="EMAIL",
              help="The staff member who submits it: its author, who may not approve it.")
@pass_app
def issue_submit(app: App, month: str, segment: str | None, by: str | None) -> None:
    """Submit issue YYYY-MM for review, as it is now, for a segment.

    Example: newsletter issue submit 2026-12 --by redaktor@example.se
    """
    ref = review.Ref(MailingKind.ISSUE, check_month(month))
    segment = segment or app.settings.workflow.issue_segment
    with app.transaction() as s:
        source = review.source_for(s, app.settings, ref)
        review.submit(s, app.settings, source, segment, by=by)
    click.echo(_("Issue {month} is submitted for review ({segment}).").format(
        month=month, segment=segment))
    click.echo(_("A reviewer approves it with: {command}").format(
        command=review.approve_hint(ref)))


def _approve(app: App, ref: review.Ref, by: str) -> None:
    with app.transaction() as s:
        source = review.source_for(s, app.settings, ref)
        found = review.approve(s, app.settings, source, by=by)
        segment = found.segment
    click.echo(_("{ref} is approved by {by} for {segment}.").format(ref=ref, by=by,
                                                                  segment=segment))


def _send_back(app: App, ref: review.Ref, by: str, comment: str) -> None:
    with app.transaction() as s:
        review.send_back(s, app.settings, ref, by=by, comment=comment)
    click.echo(_("{ref} is sent back to its author: {comment}").format(ref=ref,
                                                                      comment=comment))


def _status(app: App, ref: review.Ref, show_diff: bool, show_text: bool = False) -> None:
    with app.transaction() as s:
        source = review.source_for(s, app.settings, ref)
        st = review.status(s, app.settings, source)
        _print_status(app.settings, st, show_diff=show_diff)
    if show_text and st.current is not None:
        click.echo("")
        click.echo(st.current.text)


@click.command("approve")
@MONTH
@BY
@pass_app
def issue_approve(app: App, month: str, by: str) -> None:
    """Approve issue YYYY-MM as it was submitted (not by the one who submitted it).

    Example: newsletter issue approve 2026-12 --by granskare@example.se
    """
    _approve(app, review.Ref(MailingKind.ISSUE, check_month(month)), by)


@click.command("send-back")
@MONTH
@BY
@COMMENT
@pass_app
def issue_send_back(app: App, month: str, by: str, comment: str) -> None:
    """Send issue YYYY-MM back to its author with a comment; it is a draft again.

    Example: newsletter issue send-back 2026-12 --by granskare@example.se
    --comment "Länken i bostadsnyheten fungerar inte"
    """
    _send_back(app, review.Ref(MailingKind.ISSUE, check_month(month)), by, comment)


@click.command("status")
@MONTH
@click.option("--no-diff", is_flag=True, help="Do not show what changed since approval.")
@pass_app
def issue_status(app: App, month: str, no_diff: bool) -> None:
    """Where issue YYYY-MM stands: draft, in review, approved (or changed after approval, with
    what changed), scheduled, sending, sent.

    Example: newsletter issue status 2026-12
    """
    _status(app, review.Ref(MailingKind.ISSUE, check_month(month)), not no_diff)


# --- newsletter review ... -----------------------------------------------------------------------

@click.group("review")
def review_group() -> None:
    """Review and approval of issues (YYYY-MM), targeted mailings (targeted:sha256:...) and
    webinar announcements (webinar:SLUG)."""


@review_group.command("list")
@pass_app
def review_list(app: App) -> None:
    """List everything submitted for review, newest first, with its state as recorded.

    Example: newsletter review list
    """
    with app.transaction() as s:
        rows = list(s.scalars(select(Review).order_by(Review.updated_at.desc(), Review.id)))
        for r in rows:
            click.echo(f"{r.kind + ':' + r.key:<48} {review.state_label(r.state):<14} "
                       f"{r.segment[:20]:<20} {r.subject[:50]}")
    if not rows:
        click.echo(_("Nothing has been submitted for review."))


@review_group.command("show")
@REF
@click.option("--no-diff", is_flag=True, help="Do not show what changed since approval.")
@click.option("--text", "show_text", is_flag=True,
              help="Also print the text as it would go out (what a reviewer reads).")
@pass_app
def review_show(app: App, ref: str, no_diff: bool, show_text: bool) -> None:
    """Where REF stands (see `issue status`); with --text, the text as it would go out.

    Example: newsletter review show webinar:bredband-pa-landsbygden --text
    """
    _status(app, review.parse_ref(ref), not no_diff, show_text)


@review_group.command("approve")
@REF
@BY
@pass_app
def review_approve(app: App, ref: str, by: str) -> None:
    """Approve REF as it was submitted (not by the one who submitted it).

    Example: newsletter review approve targeted:sha256:4f1c... --by granskare@example.se
    """
    _approve(app, review.parse_ref(ref), by)


@review_group.command("send-back")
@REF
@BY
@COMMENT
@pass_app
def review_send_back(app: App, ref: str, by: str, comment: str) -> None:
    """Send REF back to its author with a comment.

    Example: newsletter review send-back webinar:bredband --by granskare@example.se
    --comment "Fel tid i rubriken"
    """
    _send_back(app, review.parse_ref(ref), by, comment)


def register(main: click.Group) -> None:
    for command in (issue_submit, issue_approve, issue_send_back, issue_status):
        issue_group.add_command(command)
    main.add_command(review_group)
