"""The confirmation of a sign-up on a public page (double opt-in), as a mailing Source.

Its words are a message template staff can edit (letters.py), like the webinar messages:
`templates/email/messages/LANG/signup_confirmation.md` (the newsletter, /prenumerera) or
`webinar_signup_confirmation.md` (a webinar's page), sent in the newsletter's frame. The message
carries the one link that confirms (links.confirm_url), so it is a variant of its own, keyed by
the person's public id (erasure deletes it, as it does a personal calendar invite), and each
sign-up is a mailing of its own (key "signup:SIGNUP_PUBLIC_ID"). It is transactional: it answers
what the person asked for, and reaches a person who has not confirmed yet or who unsubscribed
(events.may_confirm).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from .. import links
from ..i18n import _
from ..letters import Letter, Markdown, write_message
from ..models import MailingKind, Person, Signup, Webinar
from ..render import render_message
from ..settings import Settings
from ..sources import EMAIL, Content, Profile
from .webinar import when

# The message templates (templates/email/messages/LANG/NAME.md) of the two confirmations.
NEWSLETTER_MESSAGE = "signup_confirmation"
WEBINAR_MESSAGE = "webinar_signup_confirmation"


@dataclass
class SignupConfirmation:
    """The confirmation of the sign-up SIGNUP_ID (its public id): LETTER, from the template."""

    settings: Settings
    signup_id: str
    letter: Letter
    kind = MailingKind.SIGNUP
    transactional = True

    @property
    def key(self) -> str:
        return f"signup:{self.signup_id}"

    @property
    def subject(self) -> str:
        return self.letter.subject

    def variant_of(self, person: Profile) -> str:
        return person.public_id

    @cached_property
    def _content(self) -> Content:
        why = _("You get this mail because someone entered this address on {site}. It was "
                "sent to {address}.").format(
                    site=self.settings.organisation.base_url.rstrip("/"), address=EMAIL)
        words = self.letter
        return render_message(self.settings, subject=words.subject, body_markdown=words.body,
                              preheader=words.preheader,
                              action=(words.action, words.action_url) if words.action else None,
                              why=why)

    def render(self, key: str) -> Content:
        return replace(self._content, key=key)


def confirmation(settings: Settings, signup: Signup, person: Person,
                 webinar: Webinar | None = None) -> SignupConfirmation:
    """The confirmation of SIGNUP (with its public id) for PERSON; WEBINAR if it is a
    registration."""
    context = {
        "name": signup.name or person.name or "",
        "url": Markdown(links.confirm_url(settings, signup.public_id)),
        "days": settings.signup.confirm_days,
        "organisation": settings.organisation.name,
        "reply_to": settings.organisation.reply_to,
        "already": person.status == "active" and person.subscribed,
        "newsletter": signup.subscribe,
        "webinar": webinar.title if webinar else "",
        "when": when(settings, webinar) if webinar else "",
    }
    name = WEBINAR_MESSAGE if webinar is not None else NEWSLETTER_MESSAGE
    return SignupConfirmation(settings, signup.public_id,
                              write_message(settings, name, context))
