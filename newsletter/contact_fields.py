"""The fields of a contact as people write them: municipality, role, priority areas.

Shared by `contacts import` (once per row, so lookups are cached) and `contacts add`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InputError, NewsletterError
from .i18n import _, shown
from .models import Municipality, Person
from .municipalities import Resolver, county_key
from .settings import Settings

# The columns of an import file and of an export, in this order (so an export imports unchanged).
CONTACT_COLUMNS = ("email", "name", "municipality", "role", "county", "areas")
DEFAULT_ROLE = "ovrig"  # the role of a contact given a municipality but no role, if configured
_AREA_SPLIT = re.compile(r"[;|,\s]+")
MAX_NAME: int = Person.__table__.c.name.type.length

Positions = set[tuple[int | None, str | None]]


def contact_name(text: str) -> str:
    """TEXT with its whitespace collapsed; InputError if it is longer than a name may be."""
    name = " ".join(text.split())
    if len(name) > MAX_NAME:
        raise InputError(_("the name is {n} characters long, at most {limit}").format(
            n=len(name), limit=MAX_NAME), field="name")
    return name


class FieldReader:
    """Validates municipality, role and area values against the site's settings."""

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self._resolver = resolver
        self._municipalities: dict[str, Municipality | str] = {}
        self._counties: dict[tuple[str, str], bool] = {}
        self._roles = {slug.casefold(): slug for slug in settings.roles}
        self._roles.update({" ".join(name.split()).casefold(): slug
                            for slug, name in settings.roles.items()})
        self._role_list = ", ".join(settings.roles)
        self.default_role = DEFAULT_ROLE if DEFAULT_ROLE in settings.roles else None
        self._areas = {slug.casefold(): slug for slug in settings.area_slugs}
        self._area_list = ", ".join(settings.area_slugs)

    def municipality(self, text: str) -> Municipality:
        """The municipality TEXT names (name, "X kommun", kommunkod), else an error with the
        closest name."""
        found = self._municipalities.get(text)
        if found is None:
            try:
                found = self._resolver.resolve(text)
            except NewsletterError as exc:
                found = str(exc)
            self._municipalities[text] = found
        if isinstance(found, str):
            raise InputError(found, field="municipality")
        return found

    def county_matches(self, county: str, municipality: Municipality) -> bool:
        """Whether COUNTY ("Jämtlands län", "Jämtland", any case) is MUNICIPALITY's county."""
        key = (county, municipality.county)
        if key not in self._counties:
            self._counties[key] = county_key(county) == county_key(municipality.county)
        return self._counties[key]

    def role(self, text: str) -> str:
        """The role slug of TEXT: a slug or its Swedish name, in any case."""
        role = self._roles.get(" ".join(text.split()).casefold())
        if role is None:
            raise InputError(_("unknown role “{role}” (valid: {valid})").format(
                role=shown(text), valid=self._role_list), field="role")
        return role

    def areas(self, values: str | Iterable[str]) -> set[str]:
        """The area slugs in VALUES (`;`, `|` or `,` separated)."""
        words = _AREA_SPLIT.split(values) if isinstance(values, str) else list(values)
        out = set()
        for word in filter(None, (w.strip() for w in words)):
            slug = self._areas.get(word.casefold())
            if slug is None:
                raise InputError(_("unknown area “{area}” (valid: {valid})").format(
                    area=shown(word), valid=self._area_list), field="areas")
            out.add(slug)
        return out

    def stored_areas(self, slugs: set[str]) -> set[str]:
        """The PersonArea rows for SLUGS: none if they are every area (no rows = everything)."""
        return set() if len(slugs) == len(self._areas) else slugs

    def position(self, municipality: str, role: str) -> tuple[int | None, str | None] | None:
        """The (municipality id, role) a contact holds; role None means "the default role"
        (see settle_positions); None if both are empty."""
        muni = self.municipality(municipality).id if municipality else None
        if role:
            return muni, self.role(role)
        if muni is None:
            return None
        if self.default_role is None:
            raise InputError(_("empty role (valid: {valid})").format(valid=self._role_list),
                             field="role")
        return muni, None


def settle_positions(wanted: Positions, have: set[tuple[int | None, str]]
                     ) -> set[tuple[int | None, str]]:
    """The positions to hold: an empty role becomes DEFAULT_ROLE, unless the person holds
    another role in that municipality."""
    named = {m for m, role in wanted | have if role is not None}
    out = {(m, r) for m, r in wanted if r is not None}
    return out | {(m, DEFAULT_ROLE) for m, r in wanted if r is None and m not in named}


@dataclass(slots=True)
class Merge:
    """What adding a contact that may already exist changes: `contacts add` applies it to one
    person, the import to thousands at once; the rule is this one."""

    name: str | None = None  # the new name, if it changes
    positions: set[tuple[int | None, str]] = field(default_factory=set)  # to start
    areas: set[str] | None = None  # the person_areas rows to store instead, if they change

    @property
    def changes(self) -> list[str]:
        """What changes, for the event log: "name", "positions", "areas"."""
        return [what for what, changed in (("name", self.name is not None),
                                           ("positions", bool(self.positions)),
                                           ("areas", self.areas is not None)) if changed]


def merge_contact(fields: FieldReader, *, name: str, positions: Positions,
                  areas: set[str] | None, have_name: str = "",
                  have_positions: set[tuple[int | None, str]] | None = None,
                  have_areas: set[str] | None = None) -> Merge:
    """Merge what is given (NAME, POSITIONS, AREAS: None = not given) into what the person has
    (nothing, for a new person): a name replaces the old one, positions are added (held ones
    are kept; an empty role is settled as settle_positions says), areas replace the old ones.
    HAVE_POSITIONS are the positions held now: an ended one given again starts anew."""
    have_positions = have_positions or set()
    merge = Merge(name=name if name and name != have_name else None,
                  positions=settle_positions(positions, have_positions) - have_positions)
    if areas is not None:
        stored = fields.stored_areas(areas)
        if stored != (have_areas or set()):
            merge.areas = stored
    return merge
