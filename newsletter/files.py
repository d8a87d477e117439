"""Writing a file so that a reader never sees half of it: a temp file beside it, renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_write(path: Path, *, encoding: str = "utf-8", newline: str | None = "\n",
                 mode: int = 0o644) -> Iterator[TextIO]:
    """A text file handle whose content replaces PATH when the block ends without error.

    On an error the temp file is removed and PATH is left as it was. MODE is the new file's
    permissions (0o600 for secrets and personal data).
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
