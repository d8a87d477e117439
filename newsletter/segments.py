"""Segments: the expression language that picks the recipients of a mailing.

Grammar (a hand-written recursive-descent parser: four rules, and every error can say exactly
which column is wrong and what would have been right there)::

    expr      := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | atom
    atom      := "(" expr ")" | FIELD ":" VALUE | FIELD        (bare: a boolean field, `member`)
    VALUE     := WORD | "a double-quoted string"   (no escapes; may hold spaces and å ä ö)
    WORD      := letters (å ä ö é ...), digits, "-", "_", "."

Keywords and field names are case-insensitive. Fields, with Swedish aliases in brackets:
`role` (roll), `municipality` (kommun: name, long form or kommunkod), `kommunkod`, `county` (län:
name or county code), `member` (medlem; bare, or `member:yes|no`), `area` (område), `language`
(språk), `registered` (anmäld: registered, not wait-listed or cancelled, for the webinar SLUG).

What a condition means. Every condition is about a person:

* `area`, `language`, `registered` are properties of the person. A person with no chosen areas
  wants every area, so they match any `area:` condition.
* `role`, `municipality`, `kommunkod`, `county`, `member` are about the person's positions: the
  person has SOME position such that... Position conditions joined by `and` are tested against
  one and the same position, because that is how staff read them: `role:kommunchef and member`
  is "a kommunchef of a member municipality", not "a kommunchef somewhere who also holds some
  position in a member municipality". A parenthesised group of position conditions joined by
  `and`/`or` counts as one position condition: `(role:kso or role:politiker) and member`.
  A position without a municipality (the association's own board) is not in a member municipality.
* `not` is about the person: for a position condition, `not X` means "has NO such position":
  `not role:styrelse` is everyone not on the board; `role:kommunchef and not member` a kommunchef
  with no position in any member municipality (`role:kommunchef and member:no`: a kommunchef of a
  non-member municipality, one position).
* Anything else (`or` between person and position conditions, a `not` inside an `and`) combines
  as plain boolean logic over the person.

Positions count only while they are held: on the day the segment is judged by (`today=`, default
today; a scheduled mailing passes its date), a position that has not started or has ended is
history and matches nothing, also under `not`.

Recipients are only persons with status "active" whose pause is over (paused_until NULL or before
today). Suppressed addresses are left out by the same test: the suppression list is keyed by a keyed
hash (HMAC) of the address, which SQL cannot compute, so contacts.py keeps the invariant that
suppressing an existing person also sets their status to unsubscribed, bounced or erased.

Every value reaches SQL as a bound parameter of a SQLAlchemy Core query built from EXISTS
subqueries, so a person is counted once however many positions match.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from .errors import NotFound, SegmentSyntaxError
from .i18n import _, shown
from .models import Municipality, Person, PersonArea, Position, Registration, Webinar
from .municipalities import Resolver, county_key, shipped
from .settings import Settings

FIELDS = ("role", "municipality", "kommunkod", "county", "member", "area", "language",
          "registered")
POSITION_FIELDS = frozenset({"role", "municipality", "kommunkod", "county", "member"})
ALIASES = {"roll": "role", "kommun": "municipality", "län": "county", "lan": "county",
           "medlem": "member", "område": "area", "omrade": "area", "språk": "language",
           "sprak": "language", "anmäld": "registered", "anmald": "registered"}
_BARE_FIELDS = frozenset({"member"})
_EXAMPLES = {"role": "role:kommunchef", "municipality": "municipality:Åsele",
             "kommunkod": "kommunkod:2463", "county": 'county:"Jämtlands län"',
             "area": "area:digitalisering", "language": "language:sv",
             "registered": "registered:SLUG"}
_KEYWORDS = frozenset({"and", "or", "not"})
_YES = frozenset({"yes", "ja", "true", "1"})
_NO = frozenset({"no", "nej", "false", "0"})


# --- the syntax tree ------------------------------------------------------------------------

@dataclass(frozen=True)
class Cond:
    """FIELD:VALUE, or a bare boolean FIELD (value None); columns are 1-based, for messages."""

    field: str
    value: str | None
    column: int
    value_column: int

    def __str__(self) -> str:
        if self.value is None:
            return self.field
        if self.value and all(_is_word_char(c) for c in self.value):
            return f"{self.field}:{self.value}"
        return f'{self.field}:"{self.value}"'


@dataclass(frozen=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"not {self.operand}"


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.operands)) + ")"


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.operands)) + ")"


Node = Cond | Not | And | Or


# How deep "(" and "not" may nest. The parser and the SQL compiler recurse once per level, so
# without a bound 5,000 "(" exhaust Python's stack; people write two or three.
MAX_DEPTH = 32


def _error(expr: str, column: int, message: str) -> SegmentSyntaxError:
    """MESSAGE (one whole, translated sentence) about the text at COLUMN of EXPR."""
    quoted = expr if len(expr) <= 80 else expr[:77] + "..."
    return SegmentSyntaxError(_("column {column}: {message}").format(column=column,
                                                                     message=message),
                              source=_("segment “{expression}”").format(expression=shown(quoted)))


# --- the parser -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "(", ")", ":", "end"
    text: str  # a string's text without its quotes
    column: int
    raw: str  # as written

    def describe(self) -> str:
        """What the token is, as an error names what it found: “)”, or the end."""
        if self.kind == "end":
            return _("the end of the expression")
        return _("“{token}”").format(token=shown(self.raw))


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "-_."


def _tokens(expr: str) -> Iterator[_Token]:
    i = 0
    while i < len(expr):
        ch, column = expr[i], i + 1
        if ch.isspace():
            i += 1
        elif ch in "():":
            yield _Token(ch, ch, column, ch)
            i += 1
        elif ch == '"':
            end = expr.find('"', i + 1)
            if end < 0:
                raise _error(expr, column, _('unterminated string: add the closing "'))
            yield _Token("string", expr[i + 1:end], column, expr[i:end + 1])
            i = end + 1
        elif _is_word_char(ch):
            end = i
            while end < len(expr) and _is_word_char(expr[end]):
                end += 1
            yield _Token("word", expr[i:end], column, expr[i:end])
            i = end
        else:
            raise _error(expr, column, _unexpected(ch))
    yield _Token("end", "", len(expr) + 1, "")


def _unexpected(ch: str) -> str:
    """The message for a character no token starts with; the common slips get their fix."""
    if ch == "&":
        return _('unexpected character “{char}” (write "and")').format(char=ch)
    if ch == "|":
        return _('unexpected character “{char}” (write "or")').format(char=ch)
    if ch == "!":
        return _('unexpected character “{char}” (write "not")').format(char=ch)
    if ch == "'":
        return _('unexpected character “{char}” (quote values with double quotes: "...")'
                 ).format(char=ch)
    return _("unexpected character “{char}”").format(char=shown(ch))


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = list(_tokens(expr))
        self.pos = 0
        self.depth = 0  # "(" and "not" open now: bounded, so no input exhausts the stack

    def _peek(self) -> _Token:
        return self.tokens[self.pos]

    def _next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _at_keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.text.casefold() == word

    def _previous(self) -> str:
        """The token before the current one, as written (for "after ..." messages)."""
        return shown(self.tokens[self.pos - 1].raw) if self.pos > 0 else ""

    def _at_end_after_something(self, token: _Token) -> bool:
        return token.kind == "end" and self.pos > 0

    def parse(self) -> Node:
        if self._peek().kind == "end":
            raise _error(self.expr, 1, _("empty expression: write a condition such as "
                                         "role:kommunchef, member or area:bostad"))
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            raise _error(self.expr, token.column, self._not_the_end(token))
        return node

    def _not_the_end(self, found: _Token) -> str:
        """The message for FOUND where the expression should have ended or gone on with a
        keyword; after `role:kso member` a missing "and", after `municipality:Upplands Väsby`
        missing quotes."""
        if found.kind == "word" and _field(found.text) in FIELDS:
            return _('expected "and", "or" or the end of the expression, but found {found} '
                     '(join conditions with "and" or "or")').format(found=found.describe())
        if found.kind == "word" and self.pos >= 3 and self.tokens[self.pos - 2].kind == ":":
            field, value = self.tokens[self.pos - 3].raw, self.tokens[self.pos - 1].text
            return _('expected "and", "or" or the end of the expression, but found {found} '
                     "(a value with spaces needs quotes: {example})").format(
                found=found.describe(), example=shown(f'{field}:"{value} {found.text}"'))
        return _('expected "and", "or" or the end of the expression, but found {found}'
                 ).format(found=found.describe())

    def _or(self) -> Node:
        operands = [self._and()]
        while self._at_keyword("or"):
            self._next()
            operands.append(self._and())
        return _join(Or, operands)

    def _and(self) -> Node:
        operands = [self._not()]
        while self._at_keyword("and"):
            self._next()
            operands.append(self._not())
        return _join(And, operands)

    def _deeper(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(self.expr, token.column, _(
                'more than {depth} "(" and "not" inside each other: write it more simply'
            ).format(depth=MAX_DEPTH))

    def _not(self) -> Node:
        if self._at_keyword("not"):
            self._deeper(self._next())
            node = Not(self._not())
            self.depth -= 1
            return node
        return self._atom()

    def _atom(self) -> Node:
        token = self._peek()
        if token.kind == "(":
            self._deeper(self._next())
            node = self._or()
            found = self._peek()
            if found.kind != ")":
                if self._at_end_after_something(found):
                    message = _('expected ")" after “{previous}” to close the "(" at column '
                                "{column}").format(previous=self._previous(), column=token.column)
                else:
                    message = _('expected ")" to close the "(" at column {column}, but found '
                                "{found}").format(column=token.column, found=found.describe())
                raise _error(self.expr, found.column, message)
            self._next()
            self.depth -= 1
            return node
        if token.kind == "word" and token.text.casefold() not in _KEYWORDS:
            return self._condition()
        if self._at_end_after_something(token):
            message = _('expected a condition (field:value, member, not, "(") after “{previous}”'
                        ).format(previous=self._previous())
        else:
            message = _('expected a condition (field:value, member, not, "("), but found {found}'
                        ).format(found=token.describe())
        raise _error(self.expr, token.column, message)

    def _condition(self) -> Cond:
        token = self._next()
        field = _field(token.text)
        if field not in FIELDS:
            close = difflib.get_close_matches(field, [*FIELDS, *ALIASES], n=1, cutoff=0.7)
            if close:
                message = _("unknown field “{field}” (did you mean “{suggestion}”? fields: "
                            "{fields})").format(field=shown(token.text),
                                                suggestion=_field(close[0]),
                                                fields=", ".join(FIELDS))
            else:
                message = _("unknown field “{field}” (fields: {fields})").format(
                    field=shown(token.text), fields=", ".join(FIELDS))
            raise _error(self.expr, token.column, message)
        if self._peek().kind == ":":
            self._next()
            value = self._peek()
            if value.kind == "end":
                raise _error(self.expr, value.column, _("expected a value after “{field}:”"
                                                        ).format(field=token.raw))
            if value.kind not in ("word", "string"):
                raise _error(self.expr, value.column, _(
                    "expected a value after “{field}:”, but found {found}").format(
                    field=token.raw, found=value.describe()))
            self._next()
            return Cond(field, value.text, token.column, value.column)
        if field not in _BARE_FIELDS:
            raise _error(self.expr, token.column + len(token.raw),
                         _('expected ":" and a value after “{field}”, e.g. {example}').format(
                             field=token.raw, example=_EXAMPLES[field]))
        return Cond(field, None, token.column, token.column)


def _field(word: str) -> str:
    """The canonical field a word names (Swedish aliases mapped), case-folded."""
    name = word.casefold()
    return ALIASES.get(name, name)


def _join(kind: type[And] | type[Or], operands: list[Node]) -> Node:
    """One operand stays itself; nested and-in-and (or-in-or) is flattened, being associative."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


def parse(expr: str) -> Node:
    """The syntax tree of EXPR; SegmentSyntaxError names the column and what was expected."""
    return _Parser(expr).parse()


# --- named segments -------------------------------------------------------------------------

def resolve_segment(settings: Settings, name_or_expr: str) -> str:
    """The expression of a named segment (settings.segments), or else the text as an expression.

    A single word that is neither a segment's name nor a field is reported as an unknown segment.
    """
    text = name_or_expr.strip()
    if text in settings.segments or (re.fullmatch(r"[\w.-]+", text) and _field(text) not in FIELDS):
        return named_segment(settings, text)
    return text


def named_segment(settings: Settings, name: str) -> str:
    """The expression of the named segment NAME; NotFound lists the names there are."""
    by_name = {key.casefold(): expr for key, expr in settings.segments.items()}
    if name.strip().casefold() not in by_name:
        raise _unknown_segment(settings, name)
    return by_name[name.strip().casefold()]


def _unknown_segment(settings: Settings, text: str) -> NotFound:
    word = text.strip().casefold()
    if word in settings.roles:
        suggestion = f"role:{word}"
    elif word in settings.area_slugs:
        suggestion = f"area:{word}"
    else:
        close = difflib.get_close_matches(word, list(settings.segments), n=1, cutoff=0.6)
        suggestion = f'"{close[0]}"' if close else ""
    names = ", ".join(settings.segments) or _("none")
    if suggestion:
        return NotFound(_('unknown segment "{name}" (did you mean {suggestion}? named segments: '
                          "{names}; or write an expression such as role:kommunchef and member)"
                          ).format(name=text, suggestion=suggestion, names=names))
    return NotFound(_('unknown segment "{name}" (named segments: {names}; or write an '
                      "expression such as role:kommunchef and member)").format(name=text,
                                                                              names=names))


# --- compiling to SQL -----------------------------------------------------------------------

class _Compiler:
    """Turns a syntax tree into a boolean SQL expression over Person (see the module docstring)."""

    def __init__(self, settings: Settings, expr: str, today: date) -> None:
        self.settings = settings
        self.expr = expr
        self.today = today
        rows = shipped()
        # The shipped list is what `newsletter init` loads, so no session is needed to check names.
        self.resolver = Resolver(Municipality(kommunkod=r.kommunkod, name=r.name) for r in rows)
        self.counties = {r.county_code: r.county for r in rows}

    def person(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, Not):
            return not_(self.person(node.operand))
        if _position_only(node):
            return self._exists_position([node])
        if isinstance(node, Or):
            return or_(*map(self.person, node.operands))
        if isinstance(node, And):
            same = [op for op in node.operands if _position_only(op)]
            rest = [self.person(op) for op in node.operands if not _position_only(op)]
            return and_(*([self._exists_position(same)] if same else []), *rest)
        return self._person_condition(node)

    def _exists_position(self, nodes: list[Node]) -> ColumnElement[bool]:
        """EXISTS a position of the person, held today, for which all NODES hold."""
        query = select(Position.id).where(Position.person_id == Person.id,
                                          Position.held_on(self.today),
                                          *map(self._position, nodes))
        if any(c.field != "role" for n in nodes for c in _conditions(n)):
            query = query.outerjoin(Municipality, Position.municipality_id == Municipality.id)
        return query.exists()

    def _position(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*map(self._position, node.operands))
        if isinstance(node, Or):
            return or_(*map(self._position, node.operands))
        assert isinstance(node, Cond)
        value = node.value or ""
        if node.field == "role":
            return Position.role == self._slug(node, "role", list(self.settings.roles))
        if node.field in ("municipality", "kommunkod"):
            return Municipality.kommunkod == self._kommunkod(node, value)
        if node.field == "county":
            return Municipality.county_code == self._county(node, value)
        if node.field == "member":
            if self._yes_no(node):
                return Municipality.member.is_(True)
            return or_(Municipality.id.is_(None), Municipality.member.is_(False))
        raise self._unknown(node)

    def _person_condition(self, node: Cond) -> ColumnElement[bool]:
        value = node.value or ""
        if node.field == "area":
            slug = self._slug(node, "area", self.settings.area_slugs)
            mine = select(PersonArea.area).where(PersonArea.person_id == Person.id)
            return or_(~mine.exists(), mine.where(PersonArea.area == slug).exists())
        if node.field == "language":
            if not re.fullmatch(r"[a-z]{2,3}", value.casefold()):
                raise self._bad(node, _("language “{value}” is not a language code such as "
                                        "sv or en").format(value=shown(value)))
            return Person.language == value.casefold()
        if node.field == "registered":
            if not value:  # registered:""
                raise self._bad(node, _("registered needs a webinar's slug"))
            return (select(Registration.id)
                    .join(Webinar, Registration.webinar_id == Webinar.id)
                    .where(Registration.person_id == Person.id, Webinar.slug == value,
                           Registration.status == "registered")
                    .exists())
        raise self._unknown(node)

    def _unknown(self, node: Cond) -> SegmentSyntaxError:
        """A field the parser accepts but nothing here compiles: never guess another field."""
        return _error(self.expr, node.column,
                      _('the field "{field}" cannot be used here').format(field=node.field))

    def _bad(self, node: Cond, message: str) -> SegmentSyntaxError:
        return _error(self.expr, node.value_column, message)

    def _slug(self, node: Cond, what: str, valid: list[str]) -> str:
        slug = (node.value or "").casefold()
        if slug not in valid:
            close = difflib.get_close_matches(slug, valid, n=1, cutoff=0.6)
            values = {"value": shown(node.value), "valid": ", ".join(valid),
                      "suggestion": close[0] if close else ""}
            raise self._bad(node, _unknown_value(what, bool(close)).format(**values))
        return slug

    def _kommunkod(self, node: Cond, value: str) -> str:
        if node.field == "kommunkod" and not re.fullmatch(r"\d{4}", value):
            raise self._bad(node, _("kommunkod “{value}” is not four digits, e.g. 2463 (Åsele)"
                                    ).format(value=shown(value)))
        found = self.resolver.find(value)
        if found is None:
            hint = self.resolver.suggest(value) if node.field == "municipality" else None
            if hint:
                message = _("unknown municipality “{value}” (did you mean “{suggestion}”?)"
                            ).format(value=shown(value), suggestion=hint)
            elif node.field == "kommunkod":
                message = _("unknown kommunkod “{value}”").format(value=shown(value))
            else:
                message = _("unknown municipality “{value}”").format(value=shown(value))
            raise self._bad(node, message)
        return found.kommunkod

    def _county(self, node: Cond, value: str) -> str:
        code = value.strip().zfill(2)
        if code in self.counties:
            return code
        for code, name in self.counties.items():
            if county_key(value) == county_key(name):
                return code
        names = list(self.counties.values())
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        if close:
            message = _('unknown county “{value}” (did you mean “{suggestion}”? a county name '
                        'such as "Jämtlands län", or its code such as 23)').format(
                value=shown(value), suggestion=close[0])
        else:
            message = _('unknown county “{value}” (a county name such as "Jämtlands län", or '
                        "its code such as 23)").format(value=shown(value))
        raise self._bad(node, message)

    def _yes_no(self, node: Cond) -> bool:
        if node.value is None or node.value.casefold() in _YES:
            return True
        if node.value.casefold() in _NO:
            return False
        raise self._bad(node, _("member takes yes or no, not “{value}” (or write just member)"
                                ).format(value=shown(node.value)))


def _unknown_value(what: str, suggested: bool) -> str:
    """The message (to .format with value, valid, suggestion) for a role or area that is not
    one: a whole sentence per field, with and without a suggestion."""
    if what == "role" and suggested:
        return _("unknown role “{value}” (did you mean “{suggestion}”? roles: {valid})")
    if what == "role":
        return _("unknown role “{value}” (roles: {valid})")
    if suggested:
        return _("unknown area “{value}” (did you mean “{suggestion}”? areas: {valid})")
    return _("unknown area “{value}” (areas: {valid})")


def _conditions(node: Node) -> Iterator[Cond]:
    if isinstance(node, Cond):
        yield node
    elif isinstance(node, Not):
        yield from _conditions(node.operand)
    else:
        for operand in node.operands:
            yield from _conditions(operand)


def _position_only(node: Node) -> bool:
    """Position conditions joined by and/or (no `not`): tested against one position."""
    if isinstance(node, Cond):
        return node.field in POSITION_FIELDS
    if isinstance(node, (And, Or)):
        return all(map(_position_only, node.operands))
    return False


@dataclass(frozen=True)
class Targets:
    """Whom a segment aims at: the roles it asks for and the places it is limited to."""

    roles: frozenset[str]
    places: ColumnElement[bool] | None  # over Municipality; None: anywhere


def targets(settings: Settings, segment: str) -> Targets:
    """The roles and places SEGMENT (a name or an expression) asks for, read from its
    conditions: `role:kommunchef and county:Jämtland` aims at the kommunchef of each
    municipality of Jämtland; a place under `not` is left out of the places. An approximation
    for telling staff whom a mailing misses (coverage.unreached), never used to pick
    recipients."""
    expr = resolve_segment(settings, segment)
    compiler = _Compiler(settings, expr, date.today())
    roles: set[str] = set()
    places: list[ColumnElement[bool]] = []
    excluded: list[ColumnElement[bool]] = []

    def walk(node: Node, negated: bool) -> None:
        if isinstance(node, Not):
            walk(node.operand, not negated)
        elif isinstance(node, (And, Or)):
            for operand in node.operands:
                walk(operand, negated)
        elif node.field == "role" and not negated:
            roles.add(compiler._slug(node, "role", list(settings.roles)))
        elif node.field in ("municipality", "kommunkod", "county"):
            (excluded if negated else places).append(compiler._position(node))

    walk(parse(expr), False)
    where = [or_(*places)] if places else []
    where += [not_(or_(*excluded))] if excluded else []
    return Targets(frozenset(roles), and_(*where) if where else None)


def _recipients(settings: Settings, segment: str, today: date | None,
                include_paused: bool = False) -> ColumnElement[bool]:
    expr = resolve_segment(settings, segment)
    today = today or date.today()
    condition = _Compiler(settings, expr, today).person(parse(expr))
    if include_paused:
        return and_(Person.status == "active", condition)
    return and_(Person.status == "active", Person.subscribed.is_(True),
                or_(Person.paused_until.is_(None), Person.paused_until < today),
                condition)


def recipients_query(settings: Settings, segment: str, *, today: date | None = None,
                     include_paused: bool = False) -> Select[tuple[Person]]:
    """The active, subscribed, unpaused persons in SEGMENT (a named segment or an expression),
    by id.

    TODAY (default: today) is the day positions and pauses are judged by: a mailing scheduled
    for a later day passes that day, so that a hand-over dated before it already counts.
    INCLUDE_PAUSED is for transactional messages (a webinar the person registered for): a
    pause holds back the newsletter, not the answer to something the person asked for; nor
    does being a contact only for a webinar (`Person.subscribed` false: open registration
    without the newsletter), which keeps a person out of everything else.
    """
    return select(Person).where(_recipients(settings, segment, today, include_paused)
                                ).order_by(Person.id)


def _check_webinars(session: Session, settings: Settings, segment: str) -> None:
    """Report a `registered:` condition naming a webinar that does not exist."""
    expr = resolve_segment(settings, segment)
    for cond in _conditions(parse(expr)):
        if cond.field == "registered" and cond.value and session.scalar(
                select(Webinar.id).where(Webinar.slug == cond.value)) is None:
            known = ", ".join(session.scalars(select(Webinar.slug).order_by(Webinar.slug)))
            if known:
                message = _("unknown webinar “{slug}” (webinars: {known})").format(
                    slug=shown(cond.value), known=known)
            else:
                message = _("unknown webinar “{slug}” (there are no webinars yet)").format(
                    slug=shown(cond.value))
            raise _error(expr, cond.value_column, message)


def count(session: Session, settings: Settings, segment: str, *, today: date | None = None
          ) -> int:
    """How many persons SEGMENT (a named segment or an expression) reaches."""
    where = _recipients(settings, segment, today)
    _check_webinars(session, settings, segment)
    return session.scalar(select(func.count()).select_from(Person).where(where)) or 0


def sample(session: Session, settings: Settings, segment: str, n: int = 5, *,
           today: date | None = None) -> list[Person]:
    """The first N persons of SEGMENT by id, with their positions and municipalities loaded."""
    query = recipients_query(settings, segment, today=today).limit(n).options(
        selectinload(Person.positions).selectinload(Position.municipality))
    _check_webinars(session, settings, segment)
    return list(session.scalars(query))
