"""Consent: the texts the public pages show above their buttons, and what a person agreed to.

A text is a template (`templates/web/consent/NAME.txt.j2`, the site's copy first, so staff
can edit it) rendered in the site's language. The page shows exactly the rendered text, and
the request that takes the form stores it once per version (`consent_texts`: the version id
is the text's name and a hash of it), so a consent record always points at the words the
person saw. When the person confirms their address, `record` writes a `consents` row for
each purpose they agreed to: when they sent the form, when they confirmed, on which page.

Texts: `newsletter` (/prenumerera), `webinar` (a webinar's page) and `webinar_newsletter`
(the "also the newsletter" box on a webinar's page).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from . import i18n
from .errors import ConfigError
from .i18n import _
from .models import Consent, ConsentText, Person, Signup
from .settings import Settings

# Text name -> what it consents to.
PURPOSES = {"newsletter": "newsletter", "webinar": "webinar",
            "webinar_newsletter": "newsletter"}


def purpose_label(purpose: str) -> str:
    """PURPOSE (newsletter, webinar) in words, in the site's language."""
    return {"newsletter": _("the newsletter"), "webinar": _("a webinar")}.get(purpose, purpose)


def current_text(settings: Settings, name: str) -> str:
    """The consent text NAME as the pages show it now (paragraphs separated by blank lines)."""
    if name not in PURPOSES:
        raise ValueError(f"no consent text {name!r}")
    env = Environment(loader=FileSystemLoader([str(d) for d in settings.templates_dirs]),
                      undefined=StrictUndefined, autoescape=False)
    i18n.install(env)
    template = f"web/consent/{name}.txt.j2"
    try:
        text = env.get_template(template).render(organisation=settings.organisation.name)
    except TemplateError as exc:
        raise ConfigError(f"{template}: {exc}") from None
    paragraphs = (" ".join(p.split()) for p in text.split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def stored_text(session: Session, name: str, text: str) -> ConsentText:
    """The stored version of TEXT (consent text NAME), added the first time it is seen."""
    version = f"{name}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"
    row = session.scalar(select(ConsentText).where(ConsentText.version == version))
    if row is None:
        row = ConsentText(version=version, purpose=PURPOSES[name], text=text)
        session.add(row)
        session.flush()
    return row


def record(session: Session, person: Person, signup: Signup, *, now: datetime) -> list[Consent]:
    """The consents of SIGNUP, now that PERSON confirmed the address: the page's text, and the
    newsletter box's when it was ticked."""
    made = []
    for text_id in (signup.consent_text_id, signup.newsletter_text_id):
        if text_id is None:
            continue
        text = session.get(ConsentText, text_id)
        made.append(Consent(person_id=person.id, text_id=text_id, purpose=text.purpose,
                            page=signup.page, webinar_id=signup.webinar_id,
                            given_at=signup.created_at, confirmed_at=now))
    session.add_all(made)
    return made


def consents_of(session: Session, person_id: int) -> list[Consent]:
    """PERSON_ID's consents, oldest first, with their texts."""
    return list(session.scalars(select(Consent).where(Consent.person_id == person_id)
                                .order_by(Consent.confirmed_at, Consent.id)
                                .options(selectinload(Consent.text))))
