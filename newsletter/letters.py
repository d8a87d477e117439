"""What the system writes by itself, from templates the association can change: a `Letter`.

Every message whose words are not the staff's own (the webinar messages, the console's sign-in
mail, the remiss call and reminder) is a Markdown file with front matter under templates/: the
front matter holds the subject and the other one-line texts, the body is Markdown, and both are
Jinja2 templates rendered with the facts of the message (a webinar's title, time, links ...).
The site's own templates/ folder is searched first, then the package's (settings.templates_dirs):
a site changes a text by copying one file into its templates/ and editing it.

The emails' texts are written per language, `templates/email/messages/LANG/NAME.md` with LANG
the site's `[organisation] language`: a whole message translated as prose reads better than
sentences glued from catalog entries, and the people who change a text edit one file
(docs/LANGUAGE.md). The frame around them (header, footer) is templates/email/*.j2 with `_()`.

Values are shown as given: in the body every `{{ value }}` is escaped for Markdown (a title with
`*` or `_` stays as written; `| md` says the same explicitly), except values that are Markdown
already, such as a webinar's description or an address we made, which the caller passes as
`Markdown`. The front matter's values are plain text and are not escaped.

Failure mode: a template that does not parse, lacks its subject, names a variable the message
does not have or gives an action that is not a web address is a `ConfigError` naming the file
(and line where Jinja knows it). It is raised while the message is rendered, which is before a
mailing is created, so a broken text never leaves a half-made mailing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound

from . import i18n
from .content import markdown_text, split_front_matter
from .errors import ConfigError, InputError
from .i18n import _, shown
from .markdown import safe_url
from .settings import Settings

# Front matter keys a letter may have; a key not among them is a mistake (a typo) and refused.
FIELDS = ("subject", "preheader", "action", "action_url")
MESSAGES = "email/messages"


class Markdown(str):
    """Text that is Markdown already: put into a letter's body as it is, not escaped."""


@dataclass(frozen=True)
class Letter:
    """One message's words: SUBJECT, PREHEADER (the inbox's preview line), BODY (Markdown) and
    an optional ACTION, the label of the button that leads to ACTION_URL."""

    subject: str
    body: str
    preheader: str = ""
    action: str = ""
    action_url: str = ""
    template: str = ""  # where the words came from, to name in errors


def _shown(value: Any) -> str:
    """A `{{ value }}` in a body: escaped for Markdown unless it is Markdown already."""
    if value is None:
        return ""
    if isinstance(value, Markdown):
        return value
    return markdown_text(str(value))


def _md(value: Any) -> Markdown:
    return value if isinstance(value, Markdown) else Markdown(markdown_text(str(value)))


@cache
def _environments(dirs: tuple[str, ...]) -> tuple[Environment, Environment]:
    """(body, plain) environments over template folders DIRS: the body's escapes values for
    Markdown, the plain one (the front matter's values) does not."""
    made = []
    for finalize in (_shown, None):
        env = Environment(loader=FileSystemLoader(list(dirs)), undefined=StrictUndefined,
                          autoescape=False, keep_trailing_newline=True, finalize=finalize)
        env.filters["md"] = _md
        i18n.install(env)
        made.append(env)
    return made[0], made[1]


def message_template(settings: Settings, name: str) -> str:
    """The template of email message NAME in the site's language: email/messages/LANG/NAME.md."""
    return f"{MESSAGES}/{settings.organisation.language}/{name}.md"


def write(settings: Settings, template: str, context: Mapping[str, Any]) -> Letter:
    """The Letter of TEMPLATE (a path under templates/, e.g. "intake/remiss_call.md") with the
    values of CONTEXT; see the module's docstring for escaping and errors."""
    body_env, plain_env = _environments(tuple(str(d) for d in settings.templates_dirs))
    try:
        source, filename, _uptodate = body_env.loader.get_source(body_env, template)
    except TemplateNotFound:
        raise ConfigError(_("templates/{template}: no such template (in {folders})").format(
            template=template, folders=", ".join(str(d) for d in settings.templates_dirs))
        ) from None
    try:
        data, body, first_line = split_front_matter(source, filename)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    unknown = [key for key in data if key not in FIELDS]
    if unknown:
        raise ConfigError(_("{file}: front matter: unknown key “{key}” (known: {known})").format(
            file=filename, key=shown(unknown[0]), known=", ".join(FIELDS)))
    fields: dict[str, str] = {}
    try:
        for key in FIELDS:
            raw = data.get(key) or ""
            fields[key] = " ".join(plain_env.from_string(str(raw)).render(context).split())
    except TemplateError as exc:
        raise ConfigError(_("{file}: front matter: {reason}").format(file=filename, reason=exc)
                          ) from None
    try:
        text = body_env.from_string(body).render(context)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"{filename}:{first_line + line - 1}" if line else filename
        raise ConfigError(f"{where}: {exc}") from None
    if not fields["subject"]:
        raise ConfigError(_("{file}: the front matter has no subject").format(file=filename))
    if fields["action"] and not safe_url(fields["action_url"]):
        raise ConfigError(_("{file}: action_url must be a web address, not “{url}”").format(
            file=filename, url=shown(fields["action_url"])))
    return Letter(subject=fields["subject"], preheader=fields["preheader"],
                  body=text.strip() + "\n", action=fields["action"],
                  action_url=fields["action_url"] if fields["action"] else "",
                  template=filename)


def write_message(settings: Settings, name: str, context: Mapping[str, Any]) -> Letter:
    """The Letter of email message NAME (templates/email/messages/LANG/NAME.md)."""
    return write(settings, message_template(settings, name), context)
