"""Questions on the terminal: a yes/no that understands Swedish, and whether anyone can answer.

click.confirm knows only y/yes/n/no, so a Swedish "j" got "Error: invalid input". `confirm`
takes y, yes, j, ja (and n, no, nej) in any case, whatever the site's language.
"""

from __future__ import annotations

import sys

import click

from ..i18n import _

YES = frozenset({"y", "yes", "j", "ja"})
NO = frozenset({"n", "no", "nej"})


def _yes_no(default: bool):
    def convert(value: str) -> bool:
        answer = value.strip().lower()
        if not answer:
            return default
        if answer in YES:
            return True
        if answer in NO:
            return False
        raise click.UsageError(_("answer y (j) or n"))
    return convert


def confirm(text: str, *, default: bool = False, abort: bool = False) -> bool:
    """Ask TEXT; True for y/yes/j/ja, False for n/no/nej, DEFAULT for an empty answer.

    With ABORT, a no ends the command (click.Abort: "Aborted!", exit status 1).
    """
    suffix = _("[Y/n]") if default else _("[y/N]")
    answer = click.prompt(f"{text} {suffix}", default="", show_default=False,
                          value_proc=_yes_no(default), prompt_suffix=" ")
    if abort and not answer:
        raise click.Abort()
    return answer


def interactive() -> bool:
    """True when someone can answer questions: stdin is a terminal."""
    return sys.stdin is not None and sys.stdin.isatty()
