"""User-facing text: every message, prompt, page and email text goes through `_()`.

Message ids are English; the site's language (`[organisation] language`, default Swedish) picks
the catalog: `newsletter/locale/LANG/LC_MESSAGES/newsletter.po`, the sources kept in the
repository. An installed package carries them compiled to `.mo` (setup.py compiles them at
build); a source checkout compiles the `.po` in memory on first use. A message id missing from a
catalog shows as itself, in English, so tests/test_i18n.py fails on any id that is missing from
either catalog.

One process serves one site, so the language is the process's: `activate(language)` is called
where settings are loaded (the CLI, the apps' factories, the worker). In Jinja2 templates `_` and
`ngettext` are globals (`install(env)`): `{{ _("Sign in") }}`. One English word that means two
things (a button "Preview" and a breadcrumb "Preview") gets a context: `pgettext("breadcrumb",
"Preview")`, so that each can be translated on its own.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "newsletter"
LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of LANGUAGE: the compiled .mo when it is there and current, else the .po."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return gettext.GNUTranslations(fh)
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class _Active:
    """The process's catalog (see the module docstring)."""

    language = DEFAULT_LANGUAGE
    catalog: gettext.NullTranslations | None = None


def activate(language: str) -> None:
    """Speak LANGUAGE (one of LANGUAGES) from now on in this process."""
    _Active.language = language
    _Active.catalog = translations(language)


def language() -> str:
    return _Active.language


def _catalog() -> gettext.NullTranslations:
    if _Active.catalog is None:
        _Active.catalog = translations(_Active.language)
    return _Active.catalog


def _(message: str) -> str:
    """MESSAGE in the site's language. Use str.format placeholders by name: `_("{n} sent")`."""
    return _catalog().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """SINGULAR or PLURAL for the count N, in the site's language."""
    return _catalog().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """MESSAGE in the site's language, as meant in CONTEXT (one id, two meanings: two contexts)."""
    return _catalog().pgettext(context, message)


def N_(message: str) -> str:
    """MESSAGE unchanged: marks an id for the catalogs that is translated elsewhere, later."""
    return message


def shown(value: object) -> str:
    """VALUE as quoted in a message (“{value}”): control characters escaped (a newline as \\n), so
    that an error about a hostile value stays one line; unlike `{value!r}`, no Python quotes."""
    return repr(str(value))[1:-1]


def install(env: Any) -> None:
    """Make `_`, `ngettext` and `pgettext` globals of the Jinja2 environment ENV."""
    env.globals.update(_=_, ngettext=ngettext, pgettext=pgettext)
