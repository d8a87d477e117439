"""User-facing text: every message, prompt, page and email text goes through `_()`.

Message ids are English; the site's language (`[organisation] language`, default Swedish) picks
the catalog. This module is the one place that knows how: for now `_` returns the id unchanged,
and the gettext catalogs (Babel, `.po` sources in the repository) replace that without touching
the callers. In Jinja2 templates, `_` is a global: `{{ _("Sign in") }}`.
"""

from __future__ import annotations


def _(message: str) -> str:
    """MESSAGE in the site's language. Use str.format placeholders by name: `_("{n} sent")`."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """SINGULAR or PLURAL for the count N, in the site's language."""
    return singular if n == 1 else plural
