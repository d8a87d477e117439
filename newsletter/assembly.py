"""Variants cut from one finished document: render once, assemble each variant by joining strings.

A template marks every piece that a variant may leave out with a begin and an end token, and
every number that differs between variants with a count token; `Marks` hands the tokens out. The
document is rendered once with every piece in it (the issue: through Jinja, MJML and premailer
for the HTML, Jinja for the text), `Assembly.parse` splits it at the tokens, and
`Assembly.build(keep, counts)` joins the fixed text with the pieces a variant keeps and its
numbers: microseconds a variant, where rendering one costs milliseconds.

Why the result equals rendering the variant on its own (tests/test_variants.py proves it byte for
byte): the tokens are plain ASCII words (`__NLCUT<nonce>B7__`) that Jinja and premailer keep as
text and MJML passes through inside `<mj-raw>`; a template with the marks off (`Marks(False)`)
writes nothing for them, so its output is the variant's own; premailer writes back what it parsed
without re-indenting (render.py turns its pretty-printing off), and MJML renders an element the
same whatever its neighbours are. What would break it is CSS that depends on an element's
neighbours (`:first-child`, `:nth-...`, `+`, `~`): premailer would inline it differently once a
neighbour is gone. `structural_css` finds such rules; the caller then renders each variant on
its own. A template that marks nothing, or marks inconsistently (a token missing, doubled or
out of order), gives no Assembly (`parse` returns None) and the same fallback: custom templates
from before the marks keep working, only slower. The nonce is random per render, so no text in
an item can pose as a token.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

_OPEN, _CLOSE, _COUNT = "B", "E", "N"


@dataclass(frozen=True)
class Piece:
    """The tokens around one optional piece: write BEGIN before it and END after it."""

    begin: str = ""
    end: str = ""


class Marks:
    """Hands out the tokens of one render; with ON false every token is "" (a plain render)."""

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.nonce = secrets.token_hex(6) if on else ""
        self._numbers: dict[Hashable, int] = {}
        self.names: list[Hashable] = []  # piece or count number -> its name

    def _number(self, name: Hashable) -> int:
        if name not in self._numbers:
            self._numbers[name] = len(self.names)
            self.names.append(name)
        return self._numbers[name]

    def piece(self, name: Hashable) -> Piece:
        """The tokens around piece NAME (empty when off)."""
        if not self.on:
            return Piece()
        n = self._number(("piece", name))
        return Piece(self._token(_OPEN, n), self._token(_CLOSE, n))

    def count(self, name: Hashable, value: int) -> str:
        """VALUE as text, or (on) the token that `build` replaces with count NAME."""
        if not self.on:
            return str(value)
        return self._token(_COUNT, self._number(("count", name)))

    def _token(self, kind: str, n: int) -> str:
        return f"__NLCUT{self.nonce}{kind}{n}__"


@dataclass(frozen=True)
class _Part:
    text: str  # fixed text, or "" for a count
    needs: tuple[Hashable, ...]  # the pieces it lies in, outermost first
    count: Hashable | None = None


@dataclass(frozen=True)
class Assembly:
    """A marked document split at its tokens; `build` makes one variant of it."""

    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, document: str, marks: Marks,
              skip: Callable[[Hashable], bool] = lambda _name: False) -> Assembly | None:
        """DOCUMENT (rendered with MARKS on) split at its tokens; None unless every piece MARKS
        handed out (but those SKIP(name) allows to be missing, e.g. the table of contents in a
        text) is there once, begin before end, properly nested."""
        if not marks.on:
            return None
        token = re.compile(rf"__NLCUT{marks.nonce}([{_OPEN}{_CLOSE}{_COUNT}])(\d+)__")
        chunks = token.split(document)
        parts: list[_Part] = []
        stack: list[Hashable] = []
        seen: set[int] = set()
        for i in range(0, len(chunks), 3):
            if chunks[i]:
                parts.append(_Part(chunks[i], tuple(stack)))
            if i + 1 >= len(chunks):
                break
            kind, n = chunks[i + 1], int(chunks[i + 2])
            if n >= len(marks.names):
                return None
            name = marks.names[n]
            if kind == _COUNT:
                parts.append(_Part("", tuple(stack), name[1]))
            elif kind == _OPEN:
                if n in seen:
                    return None
                seen.add(n)
                stack.append(name[1])
            elif not stack or stack.pop() != name[1]:
                return None
        missing = [name for n, name in enumerate(marks.names)
                   if name[0] == "piece" and n not in seen and not skip(name[1])]
        if stack or missing:
            return None
        return cls(tuple(_merge(parts)))

    def build(self, keep: Callable[[Hashable], bool], counts: Mapping[Hashable, int]) -> str:
        """The variant that keeps the pieces for which KEEP(name) is true (a piece inside a
        dropped one is dropped with it), each count token replaced by COUNTS[name]."""
        kept: dict[Hashable, bool] = {}
        out = []
        for part in self.parts:
            if all(kept[n] if n in kept else kept.setdefault(n, keep(n)) for n in part.needs):
                out.append(part.text if part.count is None else str(counts[part.count]))
        return "".join(out)


def _merge(parts: list[_Part]) -> list[_Part]:
    """Neighbouring fixed parts in the same pieces as one part (fewer strings to join)."""
    merged: list[_Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if (last is not None and part.count is None and last.count is None
                and last.needs == part.needs):
            merged[-1] = _Part(last.text + part.text, part.needs)
        else:
            merged.append(part)
    return merged


# A selector that depends on an element's neighbours or position: :first-child, :last-of-type,
# :nth-child(...), :only-child, :empty, and the sibling combinators + and ~ (outside parentheses).
_STRUCTURAL = re.compile(r":(first|last|nth|only)-|:empty\b|[+~](?![^(]*\))")
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_RULE = re.compile(r"([^{}]+)\{[^{}]*\}")


def structural_css(html: str) -> bool:
    """Whether a style block of HTML has a selector that depends on an element's neighbours
    (premailer would inline it differently in a variant that lacks some of them)."""
    for block in _STYLE.findall(html):
        for selector in _RULE.findall(re.sub(r"/\*.*?\*/", "", block, flags=re.DOTALL)):
            selector = selector.rpartition(";")[2]  # after an @import or @charset
            if not selector.lstrip().startswith("@") and _STRUCTURAL.search(selector):
                return True
    return False
