"""What must hold before anything goes to a segment: the refusals of `send issue`, `mail`,
`webinar announce` and (through the same functions) the console.

`check_send` runs them in this order and raises the first as one line (`Refused`, exit 1):

1. the one who sends (--by, or the console's signed-in member) is a granskare or an admin;
2. an issue passes `issue check` (no errors) and no file of it still holds the scaffold's
   placeholder text ("Skriv månadens ledare här.");
3. where approval is required (review.approval_required), it is approved and unchanged since
   (review.check_approved);
4. a site still on the demo's settings (siteconfig.demo_fields: an example.se sender, "(demo)"
   in the name) mails nobody outside example.se: its From, List-Unsubscribe and links would
   speak for an organisation that does not exist.

Test copies (`--test-to`) are drafts on their way to review: only rules 1 and 4 apply to them
(`check_test_copies`), and they never publish anything. Resuming a mailing already created
checks nothing again: it passed when it was created, and its content is frozen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import issue_build, review, segments, siteconfig, staff
from .content import load_issue, scaffold_sources
from .errors import Refused
from .i18n import _, ngettext
from .kinds.issue import IssueSource
from .models import Person, Staff
from .render import IssueRenderer
from .settings import Settings
from .sources import Source


def check_sender(session: Session, by: str | None) -> Staff | None:
    """BY, if given, must be a staff member who may send (a granskare or an admin)."""
    if by is None:
        return None
    return review.staff_member(session, by, staff.GRANSKARE)


def check_issue_ready(settings: Settings, month: str,
                      renderer: Callable[[], IssueRenderer] | None = None) -> None:
    """Refused if issue MONTH has errors in `issue check` or still holds scaffold text
    (RENDERER: see issue_build.check_issue)."""
    report = issue_build.check_issue(settings, month, renderer=renderer)
    if report.errors:
        raise Refused(ngettext(
            "issue {month} does not pass `newsletter issue check`: {n} error, the first: "
            "{first}",
            "issue {month} does not pass `newsletter issue check`: {n} errors, the first: "
            "{first}", len(report.errors)).format(month=month, n=len(report.errors),
                                                   first=report.errors[0]))
    left = scaffold_sources(load_issue(settings, month))
    if left:
        raise Refused(_("{file}: still holds the scaffold's placeholder text: replace it with "
                        "the real text").format(file=left[0]))


def _outside_demo(address_column):
    domain = siteconfig.DEMO_DOMAIN
    return ~or_(func.lower(address_column).like(f"%@{domain}"),
                func.lower(address_column).like(f"%.{domain}"))


def check_demo_recipients(session: Session, settings: Settings, segment: str | None = None,
                          addresses: Iterable[str] = ()) -> None:
    """Refused if the site still has demo settings and SEGMENT (its persons now) or ADDRESSES
    reach anyone outside example.se."""
    demo = siteconfig.demo_fields(settings.organisation)
    if not demo:
        return
    outside = [a for a in addresses
               if not siteconfig.is_demo_address(a)]
    count = len(outside)
    if segment is not None:
        query = segments.recipients_query(settings, segment).with_only_columns(Person.email)
        query = query.where(_outside_demo(Person.email))
        found = session.scalars(query.limit(1)).first()
        if found is not None:
            outside.append(found)
            count += session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if outside:
        raise Refused(ngettext(
            "the site still has the demo's settings ({fields} in newsletter.toml) and {n} "
            "recipient is outside example.se ({first}): run `newsletter init` with the real "
            "organisation's values first",
            "the site still has the demo's settings ({fields} in newsletter.toml) and {n} "
            "recipients are outside example.se ({first}): run `newsletter init` with the real "
            "organisation's values first", count).format(
                fields=", ".join(f"organisation.{f}" for f in demo), n=count, first=outside[0]))


def check_send(session: Session, settings: Settings, source: Source, segment: str, *,
               by: str | None = None) -> None:
    """Refused (one line) unless SOURCE may go to SEGMENT now (see the module)."""
    check_sender(session, by)
    if isinstance(source, IssueSource):
        check_issue_ready(settings, source.month, lambda: source.renderer)
    if review.approval_required(settings):
        review.check_approved(session, settings, source, segment)
    check_demo_recipients(session, settings, segment)


def check_test_copies(session: Session, settings: Settings, addresses: Iterable[str], *,
                      by: str | None = None) -> None:
    """Refused unless test copies may go to ADDRESSES (see the module)."""
    check_sender_for_tests(session, by)
    check_demo_recipients(session, settings, addresses=addresses)


def check_sender_for_tests(session: Session, by: str | None) -> Staff | None:
    """Any staff member may send test copies (a redaktör tests before asking for review)."""
    if by is None:
        return None
    return review.staff_member(session, by, staff.REDAKTOR)
