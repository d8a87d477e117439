"""Through a real relay MTA: `newsletter send issue` and `newsletter mail` hand their messages to
a throw-away Postfix (tests/postfix.py) on 127.0.0.1, which queues them and relays them to a
recording sink that answers the first few recipients with a temporary failure (Postfix, not the
engine, retries them). Every message must arrive exactly once, DKIM-signed by us and still
verifying after the relay, with Message-ID, List-Unsubscribe, List-Unsubscribe-Post, the Swedish
subject and the MIME structure as the engine wrote them; Postfix adds only its Received header.

Skipped where Postfix cannot run (not installed, not root); under CI=true it fails instead.
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections import Counter
from pathlib import Path

import dkim
from sqlalchemy import select

from newsletter.links import unsubscribe_url
from newsletter.models import Mailing, OutboxRow, Person

from .helpers import check_message, seed
from .postfix import PostfixRelay

SELECTOR, DOMAIN = "nl2026", "example.se"
SUBJECT = "Räksmörgås i Åsele, Älvdalen och Östersund: enkät om bredbandet"
# What the engine writes (messages.py) and Postfix must pass on untouched, once each.
ENGINE_HEADERS = Counter({"DKIM-Signature": 1, "From": 1, "To": 1, "Subject": 1, "Date": 1,
                          "Message-ID": 1, "Reply-To": 1, "List-Id": 1, "List-Unsubscribe": 1,
                          "List-Unsubscribe-Post": 1, "MIME-Version": 1, "Content-Type": 1})
DELIVERY_TIMEOUT = 60.0


def _dkim_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh RSA key for signing, and the DNS TXT record that publishes it."""
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True,
                   capture_output=True, timeout=60)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True, timeout=60).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _wait_until_delivered(relay: PostfixRelay, n: int) -> None:
    """Until the sink has N messages and the relay's queue is empty (nothing more can come)."""
    assert relay.sink.wait_for(n, timeout=DELIVERY_TIMEOUT), (
        f"{len(relay.sink.messages)} of {n} messages arrived through Postfix:\n{relay.log()}")
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while relay.queue_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert relay.queue_count() == 0, f"messages left in Postfix's queue:\n{relay.log()}"


def test_mailings_through_postfix_arrive_once_signed_and_intact(site, postfix_relay, tmp_path):
    relay = postfix_relay
    addresses = seed(site, 30)
    key, record = _dkim_key(tmp_path)
    env = {"NEWSLETTER_TRANSPORT": relay.url, "NEWSLETTER_DKIM_KEY_FILE": str(key),
           "NEWSLETTER_DKIM_SELECTOR": SELECTOR, "NEWSLETTER_DKIM_DOMAIN": DOMAIN}
    # The next hop answers the first three recipients "try again later": Postfix, not the
    # engine, retries them (the engine's job ends when the relay has accepted a message).
    relay.sink.tempfail(3)
    issue = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes", env=env)
    assert "30 skickade" in issue.stdout
    body = tmp_path / "enkat.md"
    body.write_text("Hej!\n\nHur går **bredbandsutbyggnaden** i er kommun?\n", encoding="utf-8")
    targeted = site.cli("mail", "--to", "kommunchefer", "--subject", SUBJECT, "--body", str(body),
                        env=env)
    assert "10 skickade" in targeted.stdout
    _wait_until_delivered(relay, 40)

    with site.transaction() as s:
        subjects = {m.id: m.subject for m in s.scalars(select(Mailing))}
        expected = {(row.message_id, person.email): (row.mailing_id, person)
                    for row, person in s.execute(select(OutboxRow, Person).join(Person))}
    assert len(expected) == 40
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    arrived = Counter()
    for received in relay.sink.messages:
        assert len(received.rcpt_tos) == 1
        # Postfix prepends its Received header and must change nothing else.
        first, _, rest = received.data.partition(b"\r\n")
        assert first.startswith(b"Received: from ") and b"\r\nReceived:" not in (
            rest.partition(b"\r\n\r\n")[0])
        # What a receiving server checks: the whole message as relayed verifies.
        assert dkim.verify(received.data, dnsfunc=dns), "DKIM fails after the relay"
        original = received.data[received.data.index(b"\r\nDKIM-Signature:") + 2:]
        msg = check_message(original)
        assert Counter(msg.keys()) == ENGINE_HEADERS
        signed = msg["DKIM-Signature"].replace(" ", "").replace("\t", "")
        assert {"list-unsubscribe", "list-unsubscribe-post", "message-id", "subject"} <= set(
            dict(p.split("=", 1) for p in signed.split(";") if "=" in p)["h"].split(":"))

        [rcpt] = received.rcpt_tos
        mailing_id, person = expected[(msg["Message-ID"], rcpt)]
        arrived[(msg["Message-ID"], rcpt)] += 1
        assert msg["To"].addresses[0].addr_spec == rcpt
        assert msg["Subject"] == subjects[mailing_id]
        assert msg["List-Unsubscribe"].startswith(f"<{unsubscribe_url(site.settings, person)}>,")
        assert "<mailto:" in msg["List-Unsubscribe"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = msg.get_body(("html",)).get_content()
        assert "__NL_" not in html and unsubscribe_url(site.settings, person) in html

    assert arrived == Counter(dict.fromkeys(expected, 1)), "each message exactly once"
    assert sorted({rcpt for _, rcpt in arrived}) == addresses
    assert SUBJECT in subjects.values()
    assert any("vårens" in subject for subject in subjects.values())
    log = relay.log()
    assert log.count("status=sent") == 40 and log.count("status=deferred") == 3
