"""The public archive of sent issues, as staff manage it: which issues it shows, and
withdrawing one (`newsletter archive remove`) without touching what was sent.

An issue enters the archive when its first mailing to a segment starts (kinds/issue.publish:
at once for `send issue`, at the scheduled time for `send issue --at`), never for a test copy.
Withdrawing marks it (`withdrawn_at`): the pages /arkiv/ and /arkiv/YYYY-MM and the Atom feed
leave it out, the mailings and their rows stay as they were, and a later mailing of the same
month does not publish it again; `restore` puts it back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .content import check_month
from .errors import NotFound
from .events import EventKind, log_event
from .i18n import _
from .models import ArchivedIssue


def visible():
    """The SQL condition "shown on the public pages"."""
    return ArchivedIssue.withdrawn_at.is_(None)


def list_archive(session: Session) -> list[ArchivedIssue]:
    """Every archived issue, withdrawn ones too, newest month first."""
    return list(session.scalars(select(ArchivedIssue).order_by(ArchivedIssue.month.desc())))


def _get(session: Session, month: str) -> ArchivedIssue:
    found = session.scalar(select(ArchivedIssue).where(
        ArchivedIssue.month == check_month(month)))
    if found is None:
        raise NotFound(_("issue {month} is not in the archive (newsletter archive list)")
                       .format(month=month))
    return found


def withdraw(session: Session, month: str, *, by: str | None = None,
             now: datetime | None = None) -> ArchivedIssue:
    """Take issue MONTH off the public archive and feed; what was sent is untouched."""
    found = _get(session, month)
    if found.withdrawn_at is None:
        found.withdrawn_at = now or datetime.now(UTC)
        log_event(session, EventKind.ARCHIVE_WITHDRAWN, month=found.month, by=by)
    return found


def restore(session: Session, month: str, *, by: str | None = None) -> ArchivedIssue:
    """Show a withdrawn issue MONTH in the archive again."""
    found = _get(session, month)
    if found.withdrawn_at is not None:
        found.withdrawn_at = None
        log_event(session, EventKind.ARCHIVE_RESTORED, month=found.month, by=by)
    return found
