"""A git merge driver for the gettext catalogs: two branches that add ids merge without conflict.

    git config merge.po.driver "python3 scripts/po_merge.py %O %A %B"   # once per clone

.gitattributes routes newsletter/locale/**/*.po here. Git calls `po_merge.py BASE OURS THEIRS`
and takes what is left in OURS as the result. The result is the union of the entries of both
sides (an id one side dropped stays: a leftover id is harmless, and scripts/update_catalogs.py
drops it, while a wrongly dropped one would show English on a Swedish page). Where the two sides
hold different translations of an id, the side that changed it since BASE wins; when both changed
it, OURS wins. The header block is OURS'. The result is written sorted, without locations, as
update_catalogs.py writes it.

Git runs the driver with whatever `python3` is on PATH; when that one lacks Babel, the driver
runs itself again with the project's `.venv/bin/python` (git runs drivers in the top folder of the
work tree), and without that, falls back to the line merge below.

Failure mode: when a side does not parse as a catalog (e.g. it holds conflict markers), the
driver falls back to git's own line merge (`git merge-file`), which leaves conflict markers in
OURS, and exits non-zero so that git reports the conflict; nothing is lost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

try:
    from babel.messages.catalog import Catalog, Message
    from babel.messages.pofile import PoFileError
    from update_catalogs import read_catalog, render, write_atomic  # scripts/ is on sys.path
except ImportError:  # git's `python3` may lack Babel: main() re-runs under the project's venv
    HAVE_BABEL = False
else:
    HAVE_BABEL = True


def _entries(catalog: Catalog) -> dict[tuple[str | tuple[str, ...], str | None], Message]:
    """CATALOG's entries by (id, context): one id with two contexts is two entries."""
    return {(m.id, m.context): m for m in catalog if m.id}


def merge(base: Catalog, ours: Catalog, theirs: Catalog) -> list[Message]:
    """The union of OURS' and THEIRS' entries; a translation changed on one side only wins."""
    old, mine, other = _entries(base), _entries(ours), _entries(theirs)
    merged = []
    for key in {**mine, **other}:
        a, b = mine.get(key), other.get(key)
        if a is None or b is None:
            merged.append(a or b)
        elif not a.string and b.string:
            merged.append(b)
        elif b.string and b.string != a.string and key in old and old[key].string == a.string:
            merged.append(b)  # only theirs changed this translation
        else:
            merged.append(a)
    return merged


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: po_merge.py BASE OURS THEIRS", file=sys.stderr)
        return 2
    base_path, ours_path, theirs_path = map(Path, argv)
    if not HAVE_BABEL:
        venv_python = Path(".venv/bin/python").absolute()
        if venv_python.is_file() and Path(sys.executable).absolute() != venv_python:
            return subprocess.run([str(venv_python), __file__, *argv]).returncode
        print("po_merge: Babel is not installed; falling back to a line merge", file=sys.stderr)
        return _line_merge(base_path, ours_path, theirs_path)
    try:
        language = _language(ours_path)
        _h, base = read_catalog(base_path, language)
        header, ours = read_catalog(ours_path, language)
        _h, theirs = read_catalog(theirs_path, language)
    except (SystemExit, PoFileError, UnicodeDecodeError, ValueError) as exc:
        print(f"po_merge: {exc}; falling back to a line merge", file=sys.stderr)
        return _line_merge(base_path, ours_path, theirs_path)
    write_atomic(ours_path, render(header, merge(base, ours, theirs), language))
    return 0


def _line_merge(base_path: Path, ours_path: Path, theirs_path: Path) -> int:
    """Git's own line merge into OURS: conflict markers and exit 1 where the sides clash."""
    result = subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
                             str(ours_path), str(base_path), str(theirs_path)])
    return 1 if result.returncode else 0


def _language(path: Path) -> str:
    """The catalog's language from its `Language:` header (git hands the driver temp files)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith('"Language: '):
            return line.removeprefix('"Language: ').split("\\n")[0].strip()
    raise ValueError(f"{path}: no Language header")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
