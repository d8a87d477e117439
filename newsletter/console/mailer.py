"""The console's own mail thread: sends sign-in links so that no request waits on the relay.

A sign-in link is a secret. The outbox keeps what it sends in the database in clear, so a link
does not go through it: the request puts (address, link) on a bounded in-memory queue and
answers at once; one daemon thread of the console process builds the message and hands it to
the site's transport (transports.from_settings), one message per connection.

What can be lost, on purpose: a link still in the queue when the process stops, and one the
relay refuses (logged, without the link). The person then asks for a new link; the old one
expires unused. A full queue (a flood of requests that passed the rate limits) drops the new
link the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from .. import letters
from ..markdown import convert
from ..settings import Settings
from ..transports import Outcome, from_settings

log = logging.getLogger("newsletter.console.mailer")
QUEUE_SIZE = 200


def link_message(settings: Settings, address: str, url: str, minutes: int) -> bytes:
    """The sign-in mail to ADDRESS: plain text, the link and how long it works. The words are
    templates/email/messages/LANG/signin.md (letters.py), its Markdown written as text."""
    org = settings.organisation
    words = letters.write_message(settings, "signin", {
        "organisation": org.name, "url": letters.Markdown(url), "minutes": minutes})
    msg = EmailMessage()
    msg["Subject"] = words.subject
    msg["From"] = f"{org.sender_name} <{org.sender}>"
    msg["To"] = address
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=org.sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(convert(words.body).text + "\n", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class LinkMailer:
    """A bounded queue and the one thread that empties it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, address: str, url: str) -> None:
        """Queue the link URL for ADDRESS; never blocks (a full queue drops it, see above)."""
        self._start()
        try:
            self._queue.put_nowait((address, url))
        except queue.Full:
            log.warning("sign-in mail queue full: a link was dropped")

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="console-mailer",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            address, url = self._queue.get()
            try:
                self._send(address, url)
            except Exception:  # one failed mail must not end the thread
                log.exception("sign-in mail to a staff address failed")
            finally:
                self._queue.task_done()

    def _send(self, address: str, url: str) -> None:
        settings = self.settings
        data = link_message(settings, address, url, settings.console.link_minutes)
        connection = from_settings(settings).connection()
        connection.open()
        try:
            result = connection.send(settings.organisation.sender, address, data)
        finally:
            connection.close()
        if result.outcome != Outcome.SENT:
            log.warning("sign-in mail not sent: %s", result)
