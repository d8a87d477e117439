"""click's own words ("Usage:", "Error:", "Aborted!", "Options") in the site's language.

click marks its texts with the standard library's gettext (`from gettext import gettext as _` in
each of its modules), which reads the process's locale, not the site's `[organisation]
language`. `translate_click()` points those module-level names at newsletter.i18n, so that
click looks its texts up in our catalogs at the moment it prints them. The ids below are click's
own, copied verbatim (placeholders such as `{name!r}` included: click formats them), so that
scripts/update_catalogs.py extracts them and the Swedish catalog translates them; a click text
not listed here stays English. Checked against click 8.1-8.5; a click upgrade that rewords a
text only loses that translation (tests/test_i18n.py checks the common ones).
"""

from __future__ import annotations

import click
import click.core
import click.decorators
import click.exceptions
import click.formatting
import click.parser
import click.termui
import click.types

from .. import i18n
from ..i18n import N_, ngettext

_MODULES = (click.core, click.decorators, click.exceptions, click.formatting, click.parser,
            click.termui, click.types)

TEXTS = (
    N_("Usage:"), N_("Options"), N_("Commands"), N_("Positional arguments"),
    N_("Error: {message}"), N_("Aborted!"), N_("Try '{command} {option}' for help."),
    N_("Show this message and exit."), N_("Show the version and exit."),
    N_("Missing command."), N_("Missing argument"), N_("Missing option"),
    N_("Missing parameter"), N_("Missing {param_type}"),
    N_("Missing parameter: {param_name}"), N_("No such option {name!r}."),
    N_("No such command {name!r}."), N_("Invalid value: {message}"),
    N_("Invalid value for {param_hint}: {message}"), N_("default: {default}"),
    N_("env var: {var}"), N_("required"), N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."), N_("Option {name!r} does not take a value."),
    N_("Could not open file {filename!r}: {message}"), N_("{name} {filename!r} does not exist."),
    N_("file"), N_("directory"), N_("path"), N_("Error: invalid input"),
    N_("integer"), N_("float"),
)
PLURALS = (  # lambdas, so that the extraction sees ngettext calls without running them
    lambda n: ngettext("Got unexpected extra argument ({args})",
                       "Got unexpected extra arguments ({args})", n),
    lambda n: ngettext("Option {name!r} requires an argument.",
                       "Option {name!r} requires {nargs} arguments.", n),
    lambda n: ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", n),
    lambda n: ngettext("{value!r} does not match the format {format}.",
                       "{value!r} does not match the formats {formats}.", n),
    # click asks with ngettext: a plain id was never found, and "Did you mean" stayed English.
    # The plural is click 8.2+'s; click 8.1's "(Possible options: ...)" stays English.
    lambda n: ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)",
                       n),
)


def translate_click() -> None:
    """Make click look up its texts in the site's catalog (see the module docstring)."""
    for module in _MODULES:
        if hasattr(module, "_"):
            module._ = i18n._
        if hasattr(module, "ngettext"):
            module.ngettext = i18n.ngettext


def _path_kind(kind: click.Path) -> str:
    """The English name click gives a Path type (click.types.Path.__init__ translates it once)."""
    if kind.file_okay and not kind.dir_okay:
        return "file"
    return "directory" if kind.dir_okay and not kind.file_okay else "path"


def refresh(command: click.Command) -> None:
    """Put the texts click made once (the --help and --version options' help, a path type's name,
    which is its metavar) of COMMAND and its subcommands in the active language: click keeps
    each command's help option, made with the language active at the time, for the life of the
    process."""
    help_option = getattr(command, "_help_option", None)  # click >= 8.1.8 caches it there
    if help_option is not None:
        help_option.help = i18n._("Show this message and exit.")
    for param in command.params:
        if param.name == "version":
            param.help = i18n._("Show the version and exit.")
        if isinstance(param.type, click.Path):  # its name is the metavar: FILE, DIRECTORY
            param.type.name = i18n._(_path_kind(param.type))
    for sub in getattr(command, "commands", {}).values():
        refresh(sub)
