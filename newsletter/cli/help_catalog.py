"""The Babel extractor of the commands' help texts (babel.cfg maps this file to `extract`).

It imports the whole command line to walk its tree (help_texts.message_ids), so it is a module of
its own that nothing imports: help_texts is imported by app.py, and an import of `main` there
would be a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from babel.messages.extract import extract_python

from . import main
from .help_texts import message_ids


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: dict) -> Iterator[tuple]:
    """This file's own `_()` ids (Babel's Python extractor), then every help text of the
    `newsletter` command tree, in the tree's order (line 0: they have no line here)."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    for msgid in message_ids(main):
        yield 0, None, msgid, []
