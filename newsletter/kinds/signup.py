"""The confirmation of a sign-up on a public page (double opt-in), as a mailing Source.

Its text is a template staff can edit: `templates/email/signup_confirm.md.j2` (the newsletter,
/prenumerera) or `templates/email/webinar_signup_confirm.md.j2` (a webinar's page), rendered
with mail_templates.render_text and sent in the newsletter's frame. The message carries the
one link that confirms (links.confirm_url), so it is a variant of its own, keyed by the
person's public id (erasure deletes it, as it does a personal calendar invite), and each sign-up
is a mailing of its own (key "signup:SIGNUP_PUBLIC_ID"). It is transactional: it answers what
the person asked for, and reaches a person who has not confirmed yet or who unsubscribed
(events.may_confirm).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from .. import links
from ..i18n import _
from ..mail_templates import Message, render_text
from ..models import MailingKind, Person, Signup, Webinar
from ..render import render_message
from ..settings import Settings
from ..sources import EMAIL, Content, Profile
from .webinar import when

NEWSLETTER_TEMPLATE = "email/signup_confirm.md.j2"
WEBINAR_TEMPLATE = "email/webinar_signup_confirm.md.j2"


@dataclass
class SignupConfirmation:
    """The confirmation of the sign-up SIGNUP_ID (its public id): MESSAGE, from the template."""

    settings: Settings
    signup_id: str
    message: Message
    kind = MailingKind.SIGNUP
    transactional = True

    @property
    def key(self) -> str:
        return f"signup:{self.signup_id}"

    @property
    def subject(self) -> str:
        return self.message.subject

    def variant_of(self, person: Profile) -> str:
        return person.public_id

    @cached_property
    def _content(self) -> Content:
        why = _("You get this mail because someone entered this address on {site}. It was "
                "sent to {address}.").format(
                    site=self.settings.organisation.base_url.rstrip("/"), address=EMAIL)
        return render_message(self.settings, subject=self.message.subject,
                              body_markdown=self.message.body, why=why)

    def render(self, key: str) -> Content:
        return replace(self._content, key=key)


def confirmation(settings: Settings, signup: Signup, person: Person,
                 webinar: Webinar | None = None) -> SignupConfirmation:
    """The confirmation of SIGNUP (with its public id) for PERSON; WEBINAR if it is a
    registration."""
    context = {
        "name": signup.name or person.name or "",
        "url": links.confirm_url(settings, signup.public_id),
        "days": settings.signup.confirm_days,
        "organisation": settings.organisation.name,
        "reply_to": settings.organisation.reply_to,
        "already": person.status == "active" and person.subscribed,
        "newsletter": signup.subscribe,
        "webinar": webinar.title if webinar else "",
        "when": when(settings, webinar) if webinar else "",
    }
    template = WEBINAR_TEMPLATE if webinar is not None else NEWSLETTER_TEMPLATE
    return SignupConfirmation(settings, signup.public_id, render_text(settings, template, context))
