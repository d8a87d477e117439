"""The commands' own help (their docstrings, the options' `help=`) in the site's language.

click keeps a command's help as the text it was given when the module was imported, so a
`help=_("...")` would be translated once, at import, in whatever language was active then, and
a docstring not at all. Instead every help text is written in English, as a plain string, and is
the message id: `translate(command)` walks the command tree when the root command is about to
parse its arguments (app.Group.make_context, after the site's language is known) and puts each
command's help and each option's help in the active language. The English id is kept on the
object (`_help_id`), so a second site in the same process (the tests) translates from English
again, not from Swedish. The short help in a command list is click's first sentence of the
translated help.

`message_ids` lists them for the catalogs: help_catalog.py, the Babel extractor babel.cfg maps
to it, yields them, so that scripts/update_catalogs.py and tests/test_i18n.py see exactly the ids
`translate` looks up.

Failure mode: a help text missing from a catalog shows in English (gettext's fallback);
tests/test_i18n.py fails on any id missing or untranslated. The `--version` option's help is
click's own text, translated by click_texts.refresh, and skipped here.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import click

from .. import i18n

_ID = "_help_id"
_SKIPPED = {"version"}  # params whose help is click's own text (click_texts.refresh)


def _english(obj: Any) -> str | None:
    """The English help of OBJ (a command or a param): its message id, remembered on first use."""
    if _ID not in vars(obj):
        help_ = getattr(obj, "help", None)
        setattr(obj, _ID, inspect.cleandoc(help_).partition("\f")[0] if help_ else None)
    return getattr(obj, _ID)


def help_objects(command: click.Command) -> Iterator[click.Command | click.Parameter]:
    """COMMAND, its params and every subcommand's, depth first, each once."""
    yield command
    for param in command.params:
        if param.name not in _SKIPPED:
            yield param
    for sub in getattr(command, "commands", {}).values():
        yield from help_objects(sub)


def translate(command: click.Command) -> None:
    """Put the help of COMMAND, its options and its subcommands in the active language."""
    for obj in help_objects(command):
        english = _english(obj)
        if english:
            obj.help = i18n._(english)


def message_ids(command: click.Command) -> list[str]:
    """Every English help text of COMMAND's tree, in the order of the tree."""
    ids = [_english(obj) for obj in help_objects(command)]
    return list(dict.fromkeys(i for i in ids if i))

