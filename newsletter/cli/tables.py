"""Tables in a terminal: a header row, a rule, then the rows, in columns as wide as their
longest cell; figures aligned right. One layout for every listing (report, send status,
webinar list)."""

from __future__ import annotations

from collections.abc import Sequence

import click

MAX_CELL = 48


def cell(text: object, limit: int = MAX_CELL) -> str:
    """TEXT on one line, cut with "…" after LIMIT characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def lines(headers: Sequence[str], rows: Sequence[Sequence[object]],
          numeric: Sequence[bool] = (), *, limit: int = MAX_CELL) -> list[str]:
    """HEADERS, a rule and ROWS as aligned lines; NUMERIC[i] aligns column i right."""
    cells = [tuple(cell(c, limit) for c in row) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = tuple(numeric) + (False,) * (len(headers) - len(numeric))

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if right[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in cells]


def echo(headers: Sequence[str], rows: Sequence[Sequence[object]],
         numeric: Sequence[bool] = (), *, limit: int = MAX_CELL) -> None:
    """Print the table of `lines`."""
    for text in lines(headers, rows, numeric, limit=limit):
        click.echo(text)
