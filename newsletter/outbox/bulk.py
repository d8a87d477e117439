"""The bulk path of `outbox.creating.add_recipients`: persons read BATCH at a time as plain values,
checked and written with driver-level statements.

SQLAlchemy compiles each of thousands of bound parameters anew for every statement, which costs
more than running it; so the checks against earlier mailings and the suppression list and the
multi-row INSERT of outbox rows are written in the driver's own parameter style here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import Session

from .. import segments
from ..models import (
    OutboxRow,
    OutboxStatus,
    Person,
    PersonArea,
    Position,
    Suppression,
)
from ..settings import Settings
from ..sources import Profile

BATCH = 2000  # persons read, and outbox rows written, per statement when fixing recipients


def batches(profiles: list[Profile]) -> Iterator[list[Profile]]:
    """PROFILES, BATCH at a time."""
    for start in range(0, len(profiles), BATCH):
        yield profiles[start:start + BATCH]


def profiles(session: Session, settings: Settings, segment: str, today: date,
             transactional: bool) -> Iterator[list[Profile]]:
    """The persons of SEGMENT on TODAY as Profiles, BATCH at a time in id order (keyset
    pagination: one query a batch, nothing held but the batch)."""
    areas = (select(func.aggregate_strings(PersonArea.area, ","))
             .where(PersonArea.person_id == Person.id).scalar_subquery())
    roles = (select(func.aggregate_strings(Position.role, ","))
             .where(Position.person_id == Person.id, Position.held_on(today)).scalar_subquery())
    query = (segments.recipients_query(settings, segment, today=today,
                                       include_paused=transactional)
             .with_only_columns(Person.id, Person.public_id, Person.email, Person.name,
                                areas, roles)
             .where(Person.id > bindparam("after")).limit(BATCH))
    conn, after, nothing = session.connection(), 0, frozenset()
    while rows := conn.execute(query, {"after": after}).all():
        yield [Profile(pid, public_id, email, name or "",
                       frozenset(chosen.split(",")) if chosen else None,
                       frozenset(held.split(",")) if held else nothing)
               for pid, public_id, email, name, chosen, held in rows]
        after = rows[-1][0]


def had(session: Session, earlier: list[int], ids: list[int]) -> set[int]:
    """Those of IDS who got (or are getting) the same source in one of the EARLIER mailings."""
    if not earlier:
        return set()
    ours = ", ".join(str(int(m)) for m in earlier)
    return _select_in(session, (
        f"SELECT person_id FROM {OutboxRow.__tablename__} WHERE mailing_id IN ({ours}) "
        f"AND status NOT IN ('{OutboxStatus.FAILED.value}', '{OutboxStatus.SUPPRESSED.value}') "
        "AND person_id IN "), ids)


_SUPPRESSED = f"SELECT email_hash FROM {Suppression.__tablename__} WHERE email_hash IN "
_ROW_COLUMNS = ("person_id", "variant_key", "message_id")  # besides mailing, status, attempts


def _driver_params(session: Session, values: Sequence[Any]) -> tuple[list[str], Any]:
    """Placeholders for VALUES in the driver's parameter style (PEP 249's five), and the
    parameters to pass with them."""
    style, n = session.connection().dialect.paramstyle, len(values)
    if style == "named":
        return [f":p{i}" for i in range(n)], {f"p{i}": v for i, v in enumerate(values)}
    marks = {"qmark": ["?"] * n, "format": ["%s"] * n, "pyformat": ["%s"] * n,
             "numeric": [f":{i + 1}" for i in range(n)],
             "numeric_dollar": [f"${i + 1}" for i in range(n)]}[style]
    return marks, tuple(values)


def _select_in(session: Session, sql: str, values: list[Any]) -> set[Any]:
    """The first column of SQL ending in "... IN " followed by the VALUES, as a set."""
    if not values:
        return set()
    marks, params = _driver_params(session, values)
    return {r[0] for r in session.connection().exec_driver_sql(f"{sql}({', '.join(marks)})",
                                                               params)}


def insert_rows(session: Session, mailing_id: int, rows: list[tuple[int, str, str]]) -> None:
    """ROWS (person id, variant key, Message-ID) as pending outbox rows of MAILING_ID: one
    multi-row INSERT."""
    marks, params = _driver_params(session, [value for row in rows for value in row])
    constant = f"'{OutboxStatus.PENDING.value}', 0"
    values = ", ".join(f"({int(mailing_id)}, {a}, {b}, {c}, {constant})"
                       for a, b, c in zip(*[iter(marks)] * 3, strict=True))
    session.connection().exec_driver_sql(
        f"INSERT INTO {OutboxRow.__tablename__} (mailing_id, {', '.join(_ROW_COLUMNS)}, "
        f"status, attempts) VALUES {values}", params)



def suppressed(session: Session, hashes: list[str]) -> set[str]:
    """Those of the suppression keys HASHES that are on the suppression list."""
    return _select_in(session, _SUPPRESSED, hashes)
