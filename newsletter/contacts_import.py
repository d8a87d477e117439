"""`contacts import`: a CSV file of contacts into the register, in the caller's transaction.

Rows are validated one by one (a bad row is reported with its line and skipped, the rest go in),
merged by address (inside the file and with the database), and written in bulk: the database is
read in a few chunked queries and written with executemany, never a query per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from . import csvfiles, db
from .contact_fields import (
    CONTACT_COLUMNS,
    DEFAULT_ROLE,
    FieldReader,
    Positions,
    contact_name,
    merge_contact,
)
from .contacts import normalise_email, smtputf8_warning
from .errors import InputError
from .events import EventKind
from .i18n import _, shown
from .labels import contact_status
from .models import (
    Base,
    Event,
    Municipality,
    Person,
    PersonArea,
    Position,
    Suppression,
    new_public_id,
)
from .municipalities import Resolver
from .positions import Change, end_unlisted
from .settings import Settings
from .signing import address_hash

# Column -> the headers that name it (case-insensitive, trimmed): English, Swedish, common variants.
COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "e-post", "epost", "e-postadress", "mejl", "mail"),
    "name": ("name", "namn"),
    "municipality": ("municipality", "kommun"),
    "role": ("role", "roll"),
    "county": ("county", "län", "lan"),
    "areas": ("areas", "områden", "omraden", "område"),
}
_CHUNK = 500  # bound parameters per IN (...) query

T = TypeVar("T")


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do). Counts are of contacts, not rows."""

    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_rows: int = 0
    # Rows whose address an earlier row of the file had: merged into that contact.
    merged: list[RowProblem] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    sync: bool = False
    # With sync: every position started (also the default role kept by someone whose last
    # position ended) and ended.
    started: list[Change] = field(default_factory=list)
    ended: list[Change] = field(default_factory=list)


@dataclass
class _Contact:
    """One address, merged from every row that has it."""

    email: str
    line: int
    name: str = ""
    positions: Positions = field(default_factory=set)
    areas: set[str] | None = None


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read_row(fields: FieldReader, cells: dict[str, str], line: int,
              warnings: list[RowProblem]) -> tuple[_Contact | None, list[str]]:
    """The contact in one row's CELLS, or the reasons it is rejected."""
    problems: list[str] = []
    email = ""
    try:
        email = normalise_email(cells.get("email", ""))
    except InputError as exc:
        problems.append(exc.reason)
    position = None
    try:
        position = fields.position(cells.get("municipality", ""), cells.get("role", ""))
    except InputError as exc:
        problems.append(exc.reason)
        if exc.field == "municipality" and cells.get("role"):
            try:
                fields.role(cells["role"])
            except InputError as role_exc:
                problems.append(role_exc.reason)
    name = ""
    try:
        name = contact_name(cells.get("name", ""))
    except InputError as exc:
        problems.append(exc.reason)
    areas = None
    if cells.get("areas"):
        try:
            areas = fields.areas(cells["areas"])
        except InputError as exc:
            problems.append(exc.reason)
    if problems:
        return None, problems

    county = cells.get("county", "")
    if county and position and position[0] is not None:
        muni = fields.municipality(cells["municipality"])
        if not fields.county_matches(county, muni):
            warnings.append(RowProblem(line, f"county {county!r} does not match {muni.name} "
                                             f"({muni.county}); kept the municipality's"))
    warning = smtputf8_warning(email)
    if warning:
        warnings.append(RowProblem(line, warning))
    contact = _Contact(email=email, line=line, name=name, areas=areas)
    if position:
        contact.positions.add(position)
    return contact, []


def _columns(header: csvfiles.Record, source: str,
             warnings: list[RowProblem]) -> dict[str, int]:
    line = header.line
    by_header = {h: col for col, names in COLUMNS.items() for h in names}
    found: dict[str, int] = {}
    for index, cell in enumerate(header.cells):
        key = csvfiles.normalise_header(cell)
        col = by_header.get(key)
        if col is None:
            if key:
                warnings.append(RowProblem(line, _("ignored unknown column “{column}”").format(
                    column=shown(cell.strip()))))
        elif col in found:
            raise InputError(_("column “{column}” appears twice").format(
                column=shown(cell.strip())), source=source, line=line)
        else:
            found[col] = index
    if "email" not in found:
        header_cells = ", ".join(shown(c.strip()[:30]) for c in header.cells[:8])
        raise InputError(_("missing column “email” (or “E-post”); the header has: {cells}").format(
            cells=header_cells), source=source, line=line)
    return found


def read_contacts(path: Path, fields: FieldReader, *,
                  report: ImportReport) -> dict[str, _Contact]:
    """The valid rows of PATH merged by address; bad rows go into REPORT.rejected."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(_("cannot read: {reason}").format(reason=exc.strerror),
                         source=source) from None
    text = csvfiles.decode(data, source=source)
    known = [h for names in COLUMNS.values() for h in names]
    header, records = csvfiles.read_rows(text, csvfiles.sniff_delimiter(text, known))
    if not header.cells:
        raise InputError(_("empty file: expected a header line such as {header}").format(
            header=",".join(CONTACT_COLUMNS)), source=source)
    columns = _columns(header, source, report.warnings)
    width = len(header.cells)
    contacts: dict[str, _Contact] = {}
    for record in records:
        report.rows += 1
        if record.problem:
            report.rejected.append(RowProblem(record.line, record.problem))
            continue
        cells = record.cells
        if len(cells) > width and any(cells[width:]):
            report.rejected.append(RowProblem(
                record.line, _("{n} fields but the header has {width} (a delimiter inside an "
                               "unquoted value?)").format(n=len(cells), width=width)))
            continue
        values = {col: cells[i] if i < len(cells) else "" for col, i in columns.items()}
        contact, problems = _read_row(fields, values, record.line, report.warnings)
        if contact is None:
            report.rejected.append(RowProblem(record.line, "; ".join(problems)))
            continue
        _merge(contacts, contact, report)
    return contacts


def _merge(contacts: dict[str, _Contact], new: _Contact, report: ImportReport) -> None:
    old = contacts.get(new.email)
    if old is None:
        contacts[new.email] = new
        return
    report.merged_rows += 1
    report.merged.append(RowProblem(new.line, _("same address as line {line} ({email}): one "
                                                "contact").format(line=old.line,
                                                                  email=new.email)))
    if new.name and not old.name:
        old.name = new.name
    elif new.name and new.name != old.name:
        report.warnings.append(RowProblem(
            new.line, f"same address as line {old.line} with another name; kept the first"))
    old.positions |= new.positions
    if new.areas is not None:
        old.areas = (old.areas or set()) | new.areas


def import_contacts(session: Session, settings: Settings, path: Path | str, *,
                    source: str | None = None,
                    lawful_basis: str = "legitimate_interest", sync: bool = False,
                    on: date | None = None) -> ImportReport:
    """Import the contacts in the CSV file PATH; SOURCE (default: the file name) is recorded
    as each new person's basis_source and in the events. Suppressed or inactive addresses are
    never made active again: they are reported as skipped. New positions start ON (default
    today).

    SYNC: the file is the whole truth for the (municipality, role) pairs it holds: a position
    of such a pair held on ON by someone the file does not list for it ends on ON (see
    positions.end_unlisted); REPORT.started and .ended list the changes. A file with rejected
    rows ends nothing (a row that could not be read might have been the holder's).
    """
    path = Path(path)
    on = on or date.today()
    source = source or path.name
    report = ImportReport(source=str(path), sync=sync)
    fields = FieldReader(settings, Resolver.from_session(session))
    contacts = read_contacts(path, fields, report=report)
    emails = list(contacts)

    hashes = {email: address_hash(settings.secret_key, email) for email in emails}
    suppressed: dict[str, str] = {}
    for chunk in _chunks(list(hashes.values())):
        suppressed.update(session.execute(
            select(Suppression.email_hash, Suppression.reason)
            .where(Suppression.email_hash.in_(chunk))).all())
    existing: dict[str, tuple[int, str, str]] = {}
    for chunk in _chunks(emails):
        for pid, email, name, status in session.execute(
                select(Person.id, Person.email, Person.name, Person.status)
                .where(Person.email.in_(chunk))):
            existing[email] = (pid, name, status)
    ids = [row[0] for row in existing.values()]
    have_positions: dict[int, set[tuple[int | None, str]]] = {}
    have_areas: dict[int, set[str]] = {}
    for chunk in _chunks(ids):
        for pid, muni, role in session.execute(
                select(Position.person_id, Position.municipality_id, Position.role)
                .where(Position.person_id.in_(chunk), Position.not_ended_by(on))):
            have_positions.setdefault(pid, set()).add((muni, role))
        for pid, area in session.execute(
                select(PersonArea.person_id, PersonArea.area)
                .where(PersonArea.person_id.in_(chunk))):
            have_areas.setdefault(pid, set()).add(area)

    now = datetime.now(UTC)
    new: list[_Contact] = []
    name_updates: list[dict] = []
    activations: list[dict] = []
    positions: list[dict] = []
    areas: list[dict] = []
    area_resets: list[int] = []
    events: list[dict] = []
    started: list[tuple[str, str, int | None, str]] = []  # address, name, municipality, role
    for email, contact in contacts.items():
        reason = suppressed.get(hashes[email])
        pid, name, status = existing.get(email, (None, "", "active"))
        # A pending person (signed up, not confirmed yet) is the staff's contact from now on.
        if reason or status not in ("active", "pending"):
            report.skipped.append(RowProblem(
                contact.line, _("address is {status}: an import never re-subscribes it").format(
                    status=contact_status(reason or status))))
            continue
        if pid is None:
            new.append(contact)
            continue
        merge = merge_contact(fields, name=contact.name, positions=contact.positions,
                              areas=contact.areas, have_name=name,
                              have_positions=have_positions.get(pid, set()),
                              have_areas=have_areas.get(pid, set()))
        if merge.name is not None:
            name_updates.append({"id": pid, "name": merge.name, "updated_at": now})
        changes = merge.changes
        if status == "pending":
            activations.append({"id": pid, "status": "active", "lawful_basis": lawful_basis,
                                "basis_source": source, "basis_at": now, "updated_at": now})
            changes = ["status", *changes]
        positions += [{"person_id": pid, "municipality_id": m, "role": r, "started_on": on}
                      for m, r in merge.positions]
        if sync:
            started += [(email, contact.name or name, m, r) for m, r in merge.positions]
        if merge.areas is not None:
            area_resets.append(pid)
            areas += [{"person_id": pid, "area": a} for a in sorted(merge.areas)]
        if changes:
            report.updated += 1
            events.append({"kind": EventKind.UPDATED, "person_id": pid, "at": now,
                           "detail": {"source": source, "changes": changes}})
        else:
            report.unchanged += 1
    report.added = len(new)

    if new:
        session.execute(insert(Person.__table__), [
            {"email": c.email, "name": c.name, "public_id": new_public_id(), "status": "active",
             "language": "sv", "lawful_basis": lawful_basis, "basis_source": source,
             "basis_at": now, "soft_bounces": 0, "created_at": now, "updated_at": now}
            for c in new])
        new_ids: dict[str, int] = {}
        for chunk in _chunks([c.email for c in new]):
            new_ids.update(session.execute(
                select(Person.email, Person.id).where(Person.email.in_(chunk))).all())
        for c in new:
            pid = new_ids[c.email]
            merge = merge_contact(fields, name=c.name, positions=c.positions, areas=c.areas)
            positions += [{"person_id": pid, "municipality_id": m, "role": r, "started_on": on}
                          for m, r in merge.positions]
            if sync:
                started += [(c.email, c.name, m, r) for m, r in merge.positions]
            areas += [{"person_id": pid, "area": a} for a in sorted(merge.areas or ())]
            events.append({"kind": EventKind.IMPORTED, "person_id": pid, "at": now,
                           "detail": {"source": source, "line": c.line}})
    if name_updates:
        session.execute(update(Person), name_updates)
    if activations:
        session.execute(update(Person), activations)
    for chunk in _chunks(area_resets):
        session.execute(delete(PersonArea).where(PersonArea.person_id.in_(chunk)))
    _insert(session, Position, positions)
    _insert(session, PersonArea, areas)
    _insert(session, Event, events)
    if sync:
        names = dict(session.execute(select(Municipality.id, Municipality.name)).all())
        report.started = [Change(email, name, names.get(m), r, on, "started")
                          for email, name, m, r in sorted(started, key=str)]
        if not report.rejected:
            changes = end_unlisted(session, settings, _listed(contacts), on, source=source)
            report.started += changes.started
            report.ended = changes.ended
    db.refresh_statistics(session.connection())  # a big import changes what a query should use
    return report


def _listed(contacts: dict[str, _Contact]) -> dict[tuple[int | None, str], set[str]]:
    """The addresses the file lists for each (municipality, role) pair it holds; a row with a
    municipality and no role lists the address for the default role there."""
    listed: dict[tuple[int | None, str], set[str]] = {}
    for email, contact in contacts.items():
        for muni, role in contact.positions:
            listed.setdefault((muni, role or DEFAULT_ROLE), set()).add(email)
    return listed


def _insert(session: Session, model: type[Base], rows: list[dict]) -> None:
    """Core executemany: the ORM's per-object bookkeeping would double the import's time."""
    if rows:
        session.execute(insert(model.__table__), rows)
