"""CSV files as Swedish Excel writes and reads them: encodings, delimiters, formula-safe cells."""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import InputError
from .files import PRIVATE, atomic_write, check_replaceable
from .i18n import _

DELIMITERS = (",", ";", "\t")
# A cell starting with one of these is a formula (or becomes one) in Excel and LibreOffice.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Record:
    """One data row: the physical line it starts on (the header is line 1) and its cells.

    PROBLEM says why the row cannot be used (cells are then empty): an unbalanced quote (which
    would otherwise swallow the rows after it into one value), a NUL character, or a value over
    csv's field limit (128 KiB).
    """

    line: int
    cells: list[str]
    problem: str | None = None


def decode(data: bytes, *, source: str) -> str:
    """The text of DATA: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InputError(_("this is an Excel workbook, not CSV: in Excel choose Save As, "
                           "CSV UTF-8 (or CSV semicolon-separated)"), source=source)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(_("not valid UTF-16: {reason}").format(reason=exc.reason),
                             source=source) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(_("neither UTF-8 nor Windows-1252: save the file as CSV (UTF-8)"),
                         source=source, line=line) from None


def _header_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def sniff_delimiter(text: str, known: Iterable[str]) -> str:
    """The delimiter that splits the header into the most known column names."""
    header = _header_line(text)
    known = set(known)

    def score(delim: str) -> tuple[int, int]:
        cells = next(csv.reader([header], delimiter=delim), [])
        return sum(normalise_header(c) in known for c in cells), len(cells)

    return max(DELIMITERS, key=score)


def normalise_header(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).casefold()


def unneutralise(cell: str) -> str:
    """Undo `neutralise`: "'=x" read back is "=x", so that an export imports unchanged."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


class _Lines:
    """The physical lines of a text, for csv.reader, with the position to read on from."""

    def __init__(self, text: str) -> None:
        # Split only at \r\n, \n and \r, as csv does (str.splitlines also splits at \x1c, \x85 ...).
        self.lines = io.StringIO(text, newline="").readlines()
        self.next = 0  # index of the next line to hand out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.next >= len(self.lines):
            raise StopIteration
        self.next += 1
        return self.lines[self.next - 1]


def read_rows(text: str, delimiter: str) -> tuple[Record, Iterator[Record]]:
    """The header and the data records of TEXT; blank lines are skipped.

    A record that is not usable (see Record.problem) is reported on the line it starts on,
    and reading goes on from the next physical line, so that an unbalanced quote costs one row,
    not every row after it.
    """
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] = []
    header_line = 0
    for cells in reader:
        if any(c.strip() for c in cells):
            header, header_line = cells, lines.next
            break

    def records() -> Iterator[Record]:
        while True:
            start = lines.next
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.next = start + 1
                yield Record(start + 1, [], _csv_problem(exc))
                continue
            problem = _cell_problem(cells, lines.next, delimiter)
            if problem:
                lines.next = start + 1
                yield Record(start + 1, [], problem)
                continue
            cells = [c.strip() for c in cells]
            if any(cells):
                yield Record(start + 1, [unneutralise(c) if c[:1] == "'" else c for c in cells])

    return Record(header_line, header), records()


def _csv_problem(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        return _('a value longer than {size} KiB: a quote (") that is not closed?').format(
            size=csv.field_size_limit() // 1024)
    return _("not readable as CSV: {reason}").format(reason=exc)


def _cell_problem(cells: list[str], last: int, delimiter: str) -> str | None:
    """Why CELLS (a record ending on line LAST) cannot be a row, or None.

    A value in quotes may hold a line break (a note typed in Excel). But an unbalanced quote
    makes the csv module read on to the end of the file or to the next quote, taking the rows
    in between into one value: that shows as a value ending in a line break (the file ended
    inside the quotes) or as continuation lines holding the delimiter (rows of their own).
    """
    for cell in cells:
        if "\x00" in cell:
            return _("a NUL character: is this really a text (CSV) file?")
        if "\n" not in cell and "\r" not in cell:
            continue
        if cell.endswith(("\n", "\r")):
            return _('a value in quotes is not closed before the end of the file: a closing '
                     'quote (") missing?')
        if any(delimiter in line for line in _LINE_BREAK.split(cell)[1:]):
            return _('a value in quotes runs on to line {line} and takes in what look like '
                     'rows of their own: a closing quote (") missing? The row is skipped and the '
                     "lines after it are read again").format(line=last)
    return None


def neutralise(cell: str) -> str:
    """A cell Excel shows as text: one starting with = + - @ tab or CR gets a leading quote."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_csv(target: Path | str, header: Sequence[str], rows: Iterable[Sequence[str]], *,
              delimiter: str = ",", bom: bool = False) -> int:
    """Write a formula-safe CSV to TARGET ("-" = stdout), atomically; returns the row count.

    A file gets a UTF-8 BOM (so Excel on Windows reads å, ä, ö right), is written to a temp file
    in the same folder and renamed over TARGET, so a reader never sees half a file. It is private
    (mode 600): it holds personal data. TARGET must be a regular file or a new name in an
    existing folder (files.check_replaceable). Standard output gets the BOM only with BOM (it
    may go to another program; `contacts export --excel > file.csv` asks for it).
    """
    if str(target) == "-":
        if bom:
            sys.stdout.write("\ufeff")
        return _write(sys.stdout, header, rows, delimiter)
    check_replaceable(Path(target))
    with atomic_write(Path(target), encoding="utf-8-sig", newline="", mode=PRIVATE) as fh:
        return _write(fh, header, rows, delimiter)


def _write(fh: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]],
           delimiter: str) -> int:
    writer = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([neutralise(c) for c in row])
        count += 1
    return count
