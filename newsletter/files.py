"""Files we write: whole or not at all, and private when they hold personal data.

`atomic_write` writes a temp file beside the target and renames it over it, so a reader never
sees half a file. Files that hold personal data (the SQLite database and its -wal/-shm, exports,
previews, build outputs, delivered messages, the secret key) are created mode 0600: the site's
umask can make them stricter, never wider. `check_replaceable` keeps an export from replacing
what is not a plain file (a symlink, a FIFO, a device such as /dev/null) or from creating folders
a mistyped path would invent.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import InputError
from .i18n import _

PRIVATE = 0o600
# The widest mode a file with personal data may keep: owner read-write, group read.
WIDEST_PRIVATE = 0o640


@contextmanager
def atomic_write(path: Path, *, encoding: str = "utf-8", newline: str | None = "\n",
                 mode: int = 0o644) -> Iterator[TextIO]:
    """A text file handle whose content replaces PATH when the block ends without error.

    On an error the temp file is removed and PATH is left as it was. MODE is the new file's
    permissions (PRIVATE for secrets and personal data).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_replaceable(path: Path) -> None:
    """Refuse (InputError) to write PATH unless it is a regular file or does not exist yet in
    a folder that does: a symlink, FIFO or device is never replaced, no folder is created."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise InputError(_("the folder does not exist (create it first)"),
                             source=str(path.parent)) from None
        return
    kind = _kind(info.st_mode)
    if kind:
        raise InputError(_("{kind}, not a regular file: not replaced (write to a file name, "
                           "or - for standard output)").format(kind=kind), source=str(path))


def _kind(mode: int) -> str | None:
    """What a file that is not a regular file is, in words; None for a regular file."""
    if stat.S_ISLNK(mode):
        return _("a symbolic link")
    if stat.S_ISDIR(mode):
        return _("a folder")
    if stat.S_ISFIFO(mode):
        return _("a FIFO")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _("a device")
    if not stat.S_ISREG(mode):
        return _("a socket")
    return None


def create_private(path: Path) -> None:
    """Create PATH empty with mode PRIVATE unless it exists; e.g. the SQLite database, which
    SQLite would create with the umask's mode (usually 0644) and whose -wal and -shm files
    SQLite then creates with the database's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return
    os.close(fd)


def make_private(path: Path) -> int | None:
    """Set PATH to mode PRIVATE if it is wider than WIDEST_PRIVATE; the old mode if changed."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    if mode & ~WIDEST_PRIVATE:
        os.chmod(path, PRIVATE)
        return mode
    return None
