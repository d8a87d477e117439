"""What a mailing says: its `Content`, the `Source` of each mail kind, and the personal parts.

A mailing is one Source sent to one segment. The Source says which content variant each person gets
(`variant_of(profile) -> key`; a `Profile` is plain values, read in bulk, no ORM object) and what
that variant says (`render(key) -> Content`). outbox.creating freezes the Content of each variant
once, when the mailing is created, and the send engine sends exactly that, however the files change
afterwards. The Sources themselves are in `kinds/`: one module per mail kind (the issue, a targeted
mailing, the webinar messages); a new kind is a new Source there and a member of
`models.MailingKind`.

Content is the same for everyone who gets its variant. The personal parts are plain ASCII
placeholders (PLACEHOLDERS) that survive Jinja, MJML, premailer and quoted-printable:
messages.py splices each `Recipient`'s values in when it builds the MIME message, and
`personalise` does the same for a preview.

`Content.digest()` is a stable fingerprint of what one variant says (key, subject, preheader,
HTML, text and attachments); `fingerprint(contents, *extra)` combines the variants of a mailing
with, say, its segment expression, so that an approval can be bound to exactly what will go out.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, NamedTuple, Protocol

from . import links
from .models import MailingKind, Person
from .settings import Settings

NAME = "__NL_NAME__"
EMAIL = "__NL_EMAIL__"
UNSUBSCRIBE_URL = "__NL_UNSUBSCRIBE_URL__"
PREFERENCES_URL = "__NL_PREFERENCES_URL__"
# The person's token for their webinar registrations (links.registration_url puts it in a link).
WEBINAR_TOKEN = "__NL_WEBINAR_TOKEN__"
# Placeholder -> the Recipient field that replaces it.
PLACEHOLDERS: dict[str, str] = {
    NAME: "name",
    EMAIL: "email",
    UNSUBSCRIBE_URL: "unsubscribe_url",
    PREFERENCES_URL: "preferences_url",
    WEBINAR_TOKEN: "webinar_token",
}
# Any placeholder, also one this version does not know: none may reach a public page.
ANY_PLACEHOLDER = re.compile(r"__NL_[A-Z_]+__")


@dataclass(frozen=True)
class Content:
    """What one content variant of a mailing says, the same for everyone who gets it.

    ATTACHMENTS are dicts with `content_type` and `data` (text), and either `filename` (an
    ordinary attachment) or `alternative: True` (the last part of the multipart/alternative,
    e.g. an iTIP invite). MANIFEST describes what the content holds (an issue's areas and
    items) for the build and the archive; it is derived from the rest and not frozen.
    """

    subject: str
    html: str
    text: str
    preheader: str = ""
    attachments: tuple[Mapping[str, Any], ...] = ()
    key: str = ""
    manifest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def digest(self) -> str:
        """SHA-256 (hex) of what this variant says: equal exactly when the messages are."""
        data = {"key": self.key, "subject": self.subject, "preheader": self.preheader,
                "html": self.html, "text": self.text,
                "attachments": [dict(a) for a in self.attachments]}
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False)
                              .encode("utf-8")).hexdigest()

    def with_subject(self, subject: str) -> Content:
        return replace(self, subject=subject)


def fingerprint(contents: Iterable[Content], *extra: str) -> str:
    """One SHA-256 (hex) over the digests of CONTENTS (in key order) and EXTRA strings."""
    h = hashlib.sha256()
    for digest in sorted(f"{c.key}\0{c.digest()}" for c in contents):
        h.update(digest.encode("utf-8") + b"\n")
    for value in extra:
        h.update(b"\1" + value.encode("utf-8"))
    return h.hexdigest()


class Profile(NamedTuple):
    """A person as a Source sees them when it chooses their content variant: plain values,
    read for a whole segment in a few queries (outbox/bulk.py), never an ORM object per person (a
    tuple: made a million times, it must be cheap)."""

    id: int
    public_id: str
    email: str
    name: str
    areas: frozenset[str] | None  # the priority areas they chose; None: every area
    roles: frozenset[str]  # the roles they hold on the mailing's day


def profile_of(person: Person, day: date | None = None) -> Profile:
    """PERSON (loaded, with areas and positions) as a Profile, their roles as held on DAY
    (default today): for one person at a time (a test copy, a preview, a confirmation)."""
    return Profile(id=person.id, public_id=person.public_id, email=person.email,
                   name=person.name or "", areas=frozenset(a.area for a in person.areas) or None,
                   roles=person.roles(day))


class Source(Protocol):
    """What a mailing sends. KIND and KEY identify it (a mailing is unique per kind, key and
    segment, so the same command again resumes it); TRANSACTIONAL sources answer something the
    person asked for (a webinar registration) and reach persons who paused the newsletter.

    Building a Source is cheap; reading files and rendering happen in `subject`, `variant_of`
    and `render`, so that resuming an existing mailing never needs them.
    """

    kind: MailingKind
    key: str
    transactional: bool

    @property
    def subject(self) -> str: ...

    def variant_of(self, person: Profile) -> str:
        """The key of the content variant PERSON gets (called for every recipient: cheap)."""
        ...

    def render(self, key: str) -> Content:
        """The content of variant KEY (rendered once per key)."""
        ...


# --- the personal part -------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """Who one message is for: the values of the personal placeholders, and its Message-ID."""

    email: str
    name: str
    message_id: str  # with the angle brackets; "" for a preview
    unsubscribe_url: str
    preferences_url: str
    webinar_token: str = ""  # links.registration_token: "" where no webinar link can be


class _Addressee(Protocol):
    name: str | None
    email: str
    public_id: str


def recipient_for(settings: Settings, person: _Addressee, message_id: str = "") -> Recipient:
    """PERSON (a models.Person, or anything with name, email and public_id) as a Recipient."""
    return Recipient(email=person.email, name=person.name or "", message_id=message_id,
                     unsubscribe_url=links.unsubscribe_url(settings, person),
                     preferences_url=links.preferences_url(settings, person),
                     webinar_token=links.registration_token(settings, person))


def personalise(content: Content, recipient: Recipient) -> Content:
    """CONTENT with the placeholders replaced by RECIPIENT's values (HTML-escaped in the HTML).

    A cheap string step for previews and tests; the send engine splices the values into the
    pre-encoded MIME message instead (messages.py).
    """
    html, text = content.html, content.text
    for token, name in PLACEHOLDERS.items():
        value = getattr(recipient, name)
        html = html.replace(token, html_lib.escape(value, quote=True))
        text = text.replace(token, value)
    return replace(content, html=html, text=text)
