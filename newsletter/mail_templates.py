"""Mail texts that staff edit: Markdown templates with their subject in the front matter.

A template (e.g. `templates/intake/remiss_call.md`, `templates/email/signup_confirm.md.j2`) is
Jinja2 producing Markdown, with a front matter whose `subject:` is rendered too; the site's own
copy (ROOT/templates/...) wins over the package's. `{{ _("...") }}` translates (the site's
language), `| md` shows a value exactly as written (it escapes Markdown). What comes out is
sent in the newsletter's frame (render.render_message).

Failure mode: a template that does not render (a typo, an unknown variable) or has no subject
is a ConfigError naming the template: the site's text is the operator's to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from . import content, i18n
from .errors import ConfigError
from .settings import Settings


@dataclass(frozen=True)
class Message:
    subject: str
    body: str  # Markdown


def render_text(settings: Settings, name: str, context: dict[str, Any]) -> Message:
    """The template NAME (a path under templates/) rendered with CONTEXT."""
    env = Environment(loader=FileSystemLoader([str(d) for d in settings.templates_dirs]),
                      undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["md"] = lambda value: content.markdown_text(str(value))
    i18n.install(env)
    try:
        source, filename, _uptodate = env.loader.get_source(env, name)
        data, body, _line = content.split_front_matter(source, filename)
        subject = env.from_string(str(data.get("subject", ""))).render(context)
        text = env.from_string(body).render(context)
    except TemplateError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    subject = " ".join(subject.split())
    if not subject:
        raise ConfigError(f"{name}: the front matter has no subject")
    return Message(subject=subject, body=text.strip() + "\n")
