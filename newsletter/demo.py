"""The demo: the main job end to end on demo data (invented contacts, all @example.se)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from sqlalchemy.orm import Session

from .contacts_import import ImportReport, import_contacts
from .municipalities import set_members
from .segments import count
from .settings import Settings

DEMO_MONTH = "2026-12"
DEMO_SEGMENT = "medlemmar"


@dataclass(frozen=True)
class Seeded:
    members: int
    contacts: ImportReport
    segments: dict[str, int]


def seed(session: Session, settings: Settings) -> Seeded:
    """Mark the demo member municipalities and import the demo contacts (idempotent)."""
    data = resources.files("newsletter.data")
    members = data.joinpath("demo_members.txt").read_text(encoding="utf-8").splitlines()
    set_members(session, members, source="demo_members.txt")
    with resources.as_file(data.joinpath("demo_contacts.csv")) as path:
        report = import_contacts(session, settings, path, source="demo (newsletter demo)")
    session.flush()
    return Seeded(
        members=sum(1 for line in members if line.strip() and not line.startswith("#")),
        contacts=report,
        segments={name: count(session, settings, name) for name in settings.segments},
    )
