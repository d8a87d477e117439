"""Sweden's 290 municipalities: shipped data, lookup by name, long form or kommunkod, membership."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InputError, NotFound
from .i18n import _, shown
from .models import Municipality

_SUFFIXES = (" kommun", " stad", " municipality")
_PREFIXES = ("region ",)


@dataclass(frozen=True)
class Row:
    kommunkod: str
    name: str
    county_code: str
    county: str


def shipped() -> list[Row]:
    """The municipalities in the package's copy of municipalities.csv."""
    text = resources.files("newsletter.data").joinpath("municipalities.csv").read_text("utf-8")
    return [Row(r["kommunkod"], r["name"], r["county_code"], r["county"])
            for r in csv.DictReader(io.StringIO(text))]


_FOLD = str.maketrans({"å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u"})


def fold(name: str) -> str:
    """NAME as a domain writes it: lower case, å, ä, ö (and é, ü) folded, no spaces."""
    return "".join(name.casefold().translate(_FOLD).split())


def _derived(name: str) -> set[str]:
    folded = fold(name)
    stems = {folded, folded.replace("-", "")}
    return {f"{stem}.se" for stem in stems} | {f"{stem}kommun.se" for stem in stems}


@cache
def domains() -> dict[str, str]:
    """Domain -> kommunkod of the municipalities' own domains: derived from the names (see
    `fold`) unless two names give the same domain, then municipality_domains.csv (package
    data: the exceptions, e.g. Härjedalen's herjedalen.se), which wins."""
    found: dict[str, set[str]] = {}
    for row in shipped():
        for domain in _derived(row.name):
            found.setdefault(domain, set()).add(row.kommunkod)
    table = {domain: codes.pop() for domain, codes in found.items() if len(codes) == 1}
    text = resources.files("newsletter.data").joinpath("municipality_domains.csv").read_text(
        "utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    table.update({r["domain"]: r["kommunkod"] for r in csv.DictReader(lines)})
    return table


def kommunkod_for_address(email: str) -> str | None:
    """The kommunkod of the municipality whose domain EMAIL (normalised) is at, or below
    (anna@asele.se, anna@skola.asele.se: Åsele's 2463); None for any other domain."""
    labels = email.rpartition("@")[2].lower().split(".")
    table = domains()
    for start in range(len(labels) - 1):
        code = table.get(".".join(labels[start:]))
        if code is not None:
            return code
    return None


def load_municipalities(session: Session) -> int:
    """Insert the shipped municipalities that the database lacks; returns how many were added."""
    have = set(session.scalars(select(Municipality.kommunkod)))
    rows = [r for r in shipped() if r.kommunkod not in have]
    session.add_all(Municipality(kommunkod=r.kommunkod, name=r.name, county_code=r.county_code,
                                 county=r.county) for r in rows)
    return len(rows)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def county_key(text: str) -> str:
    """A county as people write it, for comparing: "Jämtlands län", "Jämtland", "JÄMTLANDS"
    -> "jämtland"."""
    return _norm(text).removesuffix(" län").removesuffix("s")


class Resolver:
    """Finds a municipality as people write it: "Åsele", "Åsele kommun", "Malmö stad", "2463"."""

    def __init__(self, municipalities: Iterable[Municipality]) -> None:
        self._by_code: dict[str, Municipality] = {}
        self._by_name: dict[str, Municipality] = {}
        for m in municipalities:
            self._by_code[m.kommunkod] = m
            self._by_name[_norm(m.name)] = m

    @classmethod
    def from_session(cls, session: Session) -> Resolver:
        return cls(session.scalars(select(Municipality)))

    def _candidates(self, key: str) -> list[str]:
        out = [key]
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                out.append(key[len(prefix):])
        for suffix in _SUFFIXES:
            if key.endswith(suffix):
                stem = key[: -len(suffix)]
                # Genitive and short forms: "Östersunds kommun", "Falu kommun" (Falun).
                out += [stem, stem[:-1] if stem.endswith("s") else stem, stem + "n"]
        return out

    def find(self, text: str) -> Municipality | None:
        text = text.strip()
        if re.fullmatch(r"\d{3,4}", text):
            return self._by_code.get(text.zfill(4))
        for key in self._candidates(_norm(text)):
            if key in self._by_name:
                return self._by_name[key]
        return None

    def suggest(self, text: str) -> str | None:
        key = self._candidates(_norm(text))[-1] if text.strip() else ""
        close = difflib.get_close_matches(key, self._by_name.keys(), n=1, cutoff=0.6)
        return self._by_name[close[0]].name if close else None

    def resolve(self, text: str) -> Municipality:
        """The municipality TEXT names, or an error that offers the closest name."""
        found = self.find(text)
        if found is not None:
            return found
        hint = self.suggest(text)
        if hint:
            raise NotFound(_("unknown municipality “{value}” (did you mean “{suggestion}”?)"
                             ).format(value=shown(text), suggestion=hint))
        raise NotFound(_("unknown municipality “{value}”").format(value=shown(text)))


def set_members(session: Session, names: Iterable[str], *, member: bool = True,
                since: date | None = None, source: str = "") -> list[Municipality]:
    """Mark the named municipalities as members (or not); every name must resolve."""
    resolver = Resolver.from_session(session)
    changed: list[Municipality] = []
    for line, name in enumerate(names, start=1):
        if not name.strip() or name.lstrip().startswith("#"):
            continue
        try:
            m = resolver.resolve(name)
        except NotFound as exc:
            raise InputError(str(exc), source=source or None,
                             line=line if source else None) from None
        if m.member != member:
            m.member = member
            m.member_since = (since or date.today()) if member else None
            changed.append(m)
    return changed


def list_municipalities(session: Session, *, members_only: bool = False,
                        county: str | None = None) -> list[Municipality]:
    query = select(Municipality).order_by(Municipality.kommunkod)
    if members_only:
        query = query.where(Municipality.member.is_(True))
    if county:
        query = query.where(Municipality.county == county)
    rows = list(session.scalars(query))
    if county and not rows:
        raise NotFound(_("no municipalities in county “{county}”").format(county=shown(county)))
    return rows
