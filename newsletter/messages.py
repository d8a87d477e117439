"""One recipient's MIME message, built fast: encode the fixed parts once, splice per recipient.

`MessageTemplate(settings, content)` does the expensive work once per mailing variant: it
quoted-printable-encodes the HTML and the text between the personal placeholders (each piece
ending in a soft line break), writes the fixed headers and MIME structure, and base64-encodes
fixed attachments. `template.build(recipient)` then joins bytes: the recipient's headers (To,
Date, Message-ID, List-Unsubscribe) and their encoded personal values. That keeps message
building far below the cost of SMTP (see PERFORMANCE.md); tests parse every result back with
`email.policy.default`.

The structure is multipart/alternative (text/plain, text/html, then any attachment marked
`alternative`, e.g. an iTIP `text/calendar; method=REQUEST` part), wrapped in multipart/mixed
when there are ordinary attachments. Every header line is ASCII: display names and the subject
are RFC 2047 encoded words; List-Unsubscribe is written by hand so its URL never becomes one.
The one exception: the To: line of a recipient whose local part is not ASCII is UTF-8 (RFC 6532),
for that message only; it can only go over SMTPUTF8 (addresses.py, transports.py). A domain is
always written as its IDNA A-label.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .addresses import needs_smtputf8, wire_form
from .errors import ConfigError
from .i18n import _
from .settings import Settings
from .sources import PLACEHOLDERS, Content, Recipient

_TOKEN = re.compile("(" + "|".join(PLACEHOLDERS) + ")")
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DKIM_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
                b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type")
CRLF = b"\r\n"
# The longest plain word a header holds: with "List-Id: " or "Subject: " before it the line
# stays within 78 characters.
_MAX_WORD = 66


def message_id(settings: Settings, mailing_id: int, public_id: str) -> str:
    """The deterministic Message-ID of one mailing to one person."""
    return f"<{mailing_id}.{public_id}@{settings.organisation.list_id}>"


# --- encoding helpers --------------------------------------------------------------------------

def _qp(text: str, *, more: bool) -> bytes:
    """TEXT quoted-printable with CRLF; with MORE, ending in a soft line break (lines <= 76).

    No line starts with "." (it is written =2E), so a message of such pieces needs no SMTP
    dot-stuffing.
    """
    if not text:
        return b""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    out = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    lines = out.split(b"\n")
    if more:
        last = lines[-1]
        if len(last) > 75:  # leave room for the "=" of the soft break
            cut = _cut(last, 73)
            lines[-1:] = [last[:cut] + b"=", last[cut:]]
        lines[-1] += b"="
        lines.append(b"")
    if any(line[:1] == b"." for line in lines):
        lines = [piece for line in lines for piece in _undot(line)]
    return CRLF.join(lines)


def _cut(line: bytes, at: int) -> int:
    """Where to cut LINE at or before AT without splitting an =XX escape."""
    while b"=" in line[at - 2:at]:
        at -= 1
    return at


def _undot(line: bytes) -> list[bytes]:
    """A quoted-printable LINE as lines of at most 76 characters none of which starts with "."."""
    out = []
    while line[:1] == b".":
        line = b"=2E" + line[1:]
        if len(line) <= 76:
            break
        cut = _cut(line, 75)
        out.append(line[:cut] + b"=")
        line = line[cut:]
    out.append(line)
    return out


def _encoded_words(text: str, limit: int = 39) -> list[str]:
    """TEXT as RFC 2047 base64 encoded words of at most 75 characters (LIMIT bytes each).

    Chunks end after a space where they can: parsers that (wrongly) keep the whitespace between
    encoded words in a display name then still show whole words.
    """
    chunks: list[bytes] = []
    chunk = b""
    for word in re.split(r"(?<= )", text):
        b = word.encode("utf-8")
        if chunk and len(chunk) + len(b) > limit:
            chunks.append(chunk)
            chunk = b""
        while len(b) > limit:  # one word longer than a chunk: split it between characters
            cut = limit
            while cut and (b[cut] & 0xC0) == 0x80:
                cut -= 1
            chunks.append(b[:cut])
            b = b[cut:]
        chunk += b
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks if c]


def _phrase(text: str) -> list[str]:
    """A display name or subject as header words: plain, quoted or encoded."""
    text = _CONTROL.sub(" ", text).strip()
    if not text:
        return []
    if text.isascii() and not re.search(r"=\?", text):
        if _ATEXT.match(text) and _foldable(text.split()):
            return text.split()
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if _foldable([quoted]):
            return [quoted]
    return _encoded_words(text, limit=45)


def _subject_words(text: str) -> list[str]:
    text = _CONTROL.sub(" ", text).strip()
    if text.isascii() and "=?" not in text and _foldable(text.split()):
        return text.split()
    return _encoded_words(text)


def _foldable(words: list[str]) -> bool:
    """True if WORDS fold into lines under 78 characters. A header can be folded only at
    whitespace, so one long word (a subject without spaces) would make one line longer than
    RFC 5322's 998: such text goes as encoded words instead, which split anywhere."""
    return all(len(word) <= _MAX_WORD for word in words)


def _header(name: str, words: Iterable[str], *, utf8: bool = False) -> bytes:
    """NAME: WORDS folded at spaces so that lines stay under 78 characters where possible.

    ASCII, except with UTF8 (a message that goes over SMTPUTF8 only, RFC 6532)."""
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > 76 and line != f"{name}:":
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8" if utf8 else "ascii")


def _mailbox(name: str, addr: str) -> list[str]:
    words = _phrase(name)
    return [*words, f"<{wire_form(addr)}>"] if words else [wire_form(addr)]


def _boundary(kind: str, seed: str) -> str:
    # "=_" never occurs in quoted-printable or base64 output, so it cannot clash with a body.
    digest = hashlib.sha256(f"{seed}{secrets.token_hex(8)}".encode()).hexdigest()[:24]
    return f"=_nl-{kind}-{digest}"


def _part_head(content_type: str, encoding: str, filename: str | None = None) -> bytes:
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n"
    if filename:
        head += f'Content-Disposition: attachment; filename="{filename}"\r\n'
    return head.encode("ascii") + CRLF


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _raw_value(value: str) -> str:
    """A personal value inside a file (an iCalendar invite): one line, no quotes."""
    return _CONTROL.sub(" ", value).replace('"', "")


# --- the template ------------------------------------------------------------------------------

Item = bytes | tuple[str, str]


class MessageTemplate:
    """The pre-encoded message of one mailing variant; `build(recipient)` splices a recipient in."""

    def __init__(self, settings: Settings, content: Content, *, dkim: DkimSigner | None = None,
                 extra_headers: dict[str, str] | None = None) -> None:
        org = settings.organisation
        self.dkim = dkim
        self.tz = ZoneInfo(org.timezone)
        self.unsubscribe_mailto = org.unsubscribe_mailto
        self._items: list[Item] = []
        alt = _boundary("alt", content.subject)
        mixed_parts = [a for a in content.attachments if not a.get("alternative")]
        alt_parts = [a for a in content.attachments if a.get("alternative")]
        mix = _boundary("mix", content.subject) if mixed_parts else None

        self._add(_header("From", _mailbox(org.sender_name, org.sender)))
        self._add(("hdr", "to"))
        self._add(_header("Subject", _subject_words(content.subject)))
        self._add(("hdr", "date"))
        self._add(("hdr", "message-id"))
        self._add(_header("Reply-To", _mailbox("", org.reply_to)))
        self._add(_header("List-Id", [*_phrase(org.name), f"<{org.list_id}>"]))
        self._add(("hdr", "list-unsubscribe"))
        self._add(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        for name, value in (extra_headers or {}).items():
            self._add(_header(name, _subject_words(value)))
        self._add(b"MIME-Version: 1.0\r\n")
        if mix:
            self._add(f'Content-Type: multipart/mixed;\r\n boundary="{mix}"\r\n\r\n'
                      f'--{mix}\r\n'.encode("ascii"))
        self._add(f'Content-Type: multipart/alternative;\r\n boundary="{alt}"\r\n\r\n'
                  .encode("ascii"))
        self._add(f"--{alt}\r\n".encode("ascii"))
        self._add(_part_head('text/plain; charset="utf-8"', "quoted-printable"))
        self._add_text(content.text, "text")
        self._add(f"\r\n--{alt}\r\n".encode("ascii"))
        self._add(_part_head('text/html; charset="utf-8"', "quoted-printable"))
        self._add_text(content.html, "html")
        for part in alt_parts:
            self._add(f"\r\n--{alt}\r\n".encode("ascii"))
            self._add(_part_head(part["content_type"], "quoted-printable"))
            self._add_text(part["data"], "raw")
        self._add(f"\r\n--{alt}--\r\n".encode("ascii"))
        for i, part in enumerate(mixed_parts):
            self._add(f"\r\n--{mix}\r\n".encode("ascii"))
            self._add(_part_head(part["content_type"], "base64", part.get("filename")))
            if _TOKEN.search(part["data"]):
                self._add(("att", str(i)))
            else:
                self._add(_b64(part["data"].encode("utf-8")))
        if mix:
            self._add(f"\r\n--{mix}--\r\n".encode("ascii"))
        self._mixed = mixed_parts

    def _add(self, item: Item) -> None:
        if isinstance(item, bytes) and self._items and isinstance(self._items[-1], bytes):
            self._items[-1] += item
        elif item:
            self._items.append(item)

    def _add_text(self, text: str, kind: str) -> None:
        pieces = _TOKEN.split(text.replace("\r\n", "\n"))
        for i, piece in enumerate(pieces):
            if i % 2:
                self._add((kind, PLACEHOLDERS[piece]))
            else:
                self._add(_qp(piece, more=i < len(pieces) - 1))

    def build(self, recipient: Recipient, *, date: datetime | None = None) -> bytes:
        """The whole message for RECIPIENT, DKIM-signed if configured, ready for SMTP DATA as it
        is: CRLF line endings only, ending in CRLF, no line starting with "."."""
        values = {field: getattr(recipient, field) for field in PLACEHOLDERS.values()}
        cache: dict[tuple[str, str], bytes] = {}
        for item in self._items:
            if isinstance(item, tuple) and item not in cache:
                cache[item] = self._value(item, recipient, values, date)
        data = b"".join(item if isinstance(item, bytes) else cache[item] for item in self._items)
        if self.dkim:
            data = self.dkim.sign(data)
        return data

    def _value(self, item: tuple[str, str], r: Recipient, values: dict[str, str],
               date: datetime | None) -> bytes:
        kind, field = item
        if kind == "text":
            return _qp(values[field], more=True)
        if kind == "html":
            return _qp(html.escape(values[field]), more=True)
        if kind == "raw":
            return _qp(_raw_value(values[field]), more=True)
        if kind == "att":
            data = _TOKEN.sub(lambda m: _raw_value(values[PLACEHOLDERS[m.group(1)]]),
                              self._mixed[int(field)]["data"])
            return _b64(data.encode("utf-8"))
        if field == "to":  # in UTF-8 for an address only SMTPUTF8 can carry (addresses.py)
            return _header("To", _mailbox(r.name, r.email), utf8=needs_smtputf8(r.email))
        if field == "date":
            return _header("Date", [format_datetime(date or datetime.now(self.tz))])
        if field == "message-id":
            return _header("Message-ID", [r.message_id])
        return (f"List-Unsubscribe: <{r.unsubscribe_url}>,\r\n"
                f" <mailto:{self.unsubscribe_mailto}?subject=unsubscribe>\r\n").encode("ascii")


class DkimSigner:
    """DKIM (rsa-sha256, relaxed/relaxed) over the headers in DKIM_HEADERS, List-Unsubscribe and
    List-Unsubscribe-Post included, as Gmail and Yahoo require for one-click unsubscribe."""

    def __init__(self, key: bytes, selector: str, domain: str) -> None:
        self.key, self.selector, self.domain = key, selector.encode(), domain.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        t = settings.transport
        if not t.dkim_key_file:
            return None
        if not (t.dkim_selector and t.dkim_domain):
            raise ConfigError(_("NEWSLETTER_DKIM_KEY_FILE is set: also set "
                                "transport.dkim_selector and transport.dkim_domain (or "
                                "NEWSLETTER_DKIM_SELECTOR/_DOMAIN)"))
        path = Path(t.dkim_key_file)
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(_("NEWSLETTER_DKIM_KEY_FILE {path}: {reason}").format(
                path=path, reason=exc.strerror)) from None
        return cls(key, t.dkim_selector, t.dkim_domain)

    def sign(self, message: bytes) -> bytes:
        # Imported here: signing is optional (NEWSLETTER_DKIM_KEY_FILE), and dkimpy with
        # dnspython costs every other send ~4 MB and 0.1 s of start-up.
        import dkim

        try:
            signature = dkim.sign(message, self.selector, self.domain, self.key,
                                  canonicalize=(b"relaxed", b"relaxed"),
                                  include_headers=list(DKIM_HEADERS))
        except dkim.KeyFormatError as exc:
            raise ConfigError(_("NEWSLETTER_DKIM_KEY_FILE: not a usable private key: {reason}"
                                ).format(reason=exc)) from None
        return signature + message
