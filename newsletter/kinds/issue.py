"""The monthly issue as a mailing: its Source, and its public web version for the archive.

The issue's files are read, and its variants rendered, only when a new mailing needs them
(`subject`, `variant_of`, `render`): resuming an existing mailing works even if the files
changed or are gone. Publishing the web version in the archive is a step of its own, which
`send issue` takes after creating a mailing to a segment, never a test copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..content import Issue, load_issue
from ..models import ArchivedIssue, MailingKind, Person
from ..render import IssueRenderer, WebinarInfo
from ..settings import Settings
from ..sources import Content, Profile, profile_of


def wants(person: Person) -> tuple[frozenset[str] | None, frozenset[str]]:
    """(areas, roles) of PERSON: the areas they chose (None = every area) and the roles they
    hold today (an ended position unlocks nothing), which decide the content variant of the
    issue they get."""
    profile = profile_of(person)
    return profile.areas, profile.roles


@dataclass
class IssueSource:
    """Issue MONTH as a mailing; WEBINARS are the upcoming webinars its webinar block shows."""

    settings: Settings
    month: str
    webinars: Sequence[WebinarInfo] = field(default_factory=tuple)
    kind = MailingKind.ISSUE
    transactional = False

    @property
    def key(self) -> str:
        return self.month

    @cached_property
    def issue(self) -> Issue:
        return load_issue(self.settings, self.month)

    @cached_property
    def renderer(self) -> IssueRenderer:
        return IssueRenderer(self.settings, self.issue, self.webinars)

    @property
    def subject(self) -> str:
        return self.issue.subject

    def variant_of(self, person: Profile) -> str:
        return self.renderer.variant_key(person.areas, person.roles)

    def render(self, key: str) -> Content:
        return self.renderer.render(key)

    def web_version(self) -> Content:
        """The public version: every area, no role-restricted item, nothing personal."""
        return self.renderer.web_version()


def publish(session: Session, settings: Settings, source: IssueSource) -> bool:
    """Put SOURCE's web version in the public archive, unless its month is there already (the
    first mailing of a month wins). True if it was published now."""
    if session.scalar(select(ArchivedIssue.id).where(ArchivedIssue.month == source.month)):
        return False
    web = source.web_version()
    manifest = {**web.manifest, "area_names": {a.slug: a.name for a in settings.areas}}
    session.add(ArchivedIssue(month=source.month, subject=web.subject, preheader=web.preheader,
                              html=web.html, text=web.text, manifest=manifest))
    return True


def next_issue(session: Session, settings: Settings, today: date) -> str:
    """The month (YYYY-MM) of the next issue to be sent: the first month from TODAY's on that
    has not been sent (published in the archive), never a month already past."""
    month = date(today.year, today.month, 1)
    sent = set(session.scalars(select(ArchivedIssue.month).where(
        ArchivedIssue.month >= month.strftime("%Y-%m"))))
    while month.strftime("%Y-%m") in sent:
        month = (month + timedelta(days=32)).replace(day=1)
    return month.strftime("%Y-%m")
