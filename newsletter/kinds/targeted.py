"""A targeted mailing (`newsletter mail`): one Markdown message to a segment, in the
newsletter's frame. The same subject and body are the same mailing: its key is a content hash,
so the same command again resumes it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from ..models import MailingKind
from ..render import MESSAGE_KEY, render_message
from ..settings import Settings
from ..sources import Content, Profile


@dataclass
class TargetedSource:
    """SUBJECT, BODY (Markdown) and PREHEADER (the inbox's preview line; without it the
    inbox shows the body's first words), the same for everyone: one variant."""

    settings: Settings
    subject: str
    body: str
    preheader: str = ""
    kind = MailingKind.TARGETED
    transactional = False

    @property
    def key(self) -> str:
        text = f"{self.subject}\0{self.body}" + (f"\0{self.preheader}" if self.preheader else "")
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"sha256:{digest[:32]}"

    def variant_of(self, person: Profile) -> str:
        return MESSAGE_KEY

    @cached_property
    def _content(self) -> Content:
        return render_message(self.settings, subject=self.subject, body_markdown=self.body,
                              preheader=self.preheader)

    def render(self, key: str) -> Content:
        return self._content
