"""CSV files as Swedish Excel writes and reads them: encodings, delimiters, formula-safe cells."""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import InputError
from .files import atomic_write

DELIMITERS = (",", ";", "\t")
# A cell starting with one of these is a formula (or becomes one) in Excel and LibreOffice.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Record:
    """One data row: the physical line it starts on (the header is line 1) and its cells."""

    line: int
    cells: list[str]


def decode(data: bytes, *, source: str) -> str:
    """The text of DATA: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InputError("this is an Excel workbook, not CSV: in Excel choose Save As, "
                         "CSV UTF-8 (or CSV semicolon-separated)", source=source)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-16: {exc.reason}", source=source) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError("neither UTF-8 nor Windows-1252: save the file as CSV (UTF-8)",
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


def read_rows(text: str, delimiter: str) -> tuple[Record, Iterator[Record]]:
    """The header and the data records of TEXT; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    for cells in reader:
        if any(c.strip() for c in cells):
            header = cells
            break
    header_line = reader.line_num

    def records() -> Iterator[Record]:
        start = header_line + 1
        for cells in reader:
            cells = [c.strip() for c in cells]
            if any(cells):
                yield Record(start, [unneutralise(c) if c[:1] == "'" else c for c in cells])
            start = reader.line_num + 1

    return Record(header_line, header), records()


def neutralise(cell: str) -> str:
    """A cell Excel shows as text: one starting with = + - @ tab or CR gets a leading quote."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_csv(target: Path | str, header: Sequence[str], rows: Iterable[Sequence[str]], *,
              delimiter: str = ",") -> int:
    """Write a formula-safe CSV to TARGET ("-" = stdout), atomically; returns the row count.

    A file gets a UTF-8 BOM (so Excel reads å, ä, ö right), is written to a temp file in the same
    folder and renamed over TARGET, so a reader never sees half a file. It is private (mode 600):
    it holds personal data.
    """
    if str(target) == "-":
        return _write(sys.stdout, header, rows, delimiter)
    with atomic_write(Path(target), encoding="utf-8-sig", newline="", mode=0o600) as fh:
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
