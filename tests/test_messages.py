"""One recipient's MIME message: pre-encoded pieces spliced per recipient, parsed back strictly."""

from __future__ import annotations

import email
import email.policy
import html
import random
import shutil
import subprocess

import dkim
import pytest

from newsletter.ical import calendar_attachments
from newsletter.messages import DkimSigner, MessageTemplate
from newsletter.sources import PLACEHOLDERS, Content, Recipient

from .helpers import check_message

UNSUB = "https://nyhetsbrev.example.se/u/eXp8c3AfA4MQhGq0OuOdgw.PZB8JLT4k16Hs2ZqGSOqtLmn"
ANNA = Recipient(email="anna.ostberg@example.se", name='Åsa "Anna" Östberg <&> Malå',
                 message_id="<7.eXp8c3AfA4MQhGq0OuOdgw@nyhetsbrev.example.se>",
                 unsubscribe_url=UNSUB, preferences_url="https://nyhetsbrev.example.se/p/x.y")

HTML = ("<!DOCTYPE html><html><body><p>Hej __NL_NAME__!</p>"
        + "<p style='color:#333'>Strandskyddet i Åsele, Dorotea och Vilhelmina = viktigt. " * 400
        + '<a href="__NL_UNSUBSCRIBE_URL__">Avregistrera</a> '
        + '<a href="__NL_PREFERENCES_URL__">Inställningar</a>__NL_EMAIL__</body></html>\n')
TEXT = ("__NL_NAME__, välkommen!\n\nRäksmörgås med trailing space   \n.punkt först\n"
        "Avregistrera: __NL_UNSUBSCRIBE_URL__\n")


def expected(text: str, r: Recipient, *, escape: bool) -> str:
    for token, field in PLACEHOLDERS.items():
        value = getattr(r, field)
        text = text.replace(token, html.escape(value) if escape else value)
    return text


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def body(msg, kind: str) -> str:
    return msg.get_body((kind,)).get_content().replace("\r\n", "\n")


def test_message_parses_back_with_the_right_headers_and_text(site):
    template = MessageTemplate(site.settings, Content(
        subject="Nyhetsbrev december 2026: strandskyddet, bredbandsstödet och vårens webbinarier",
        html=HTML, text=TEXT))
    data = template.build(ANNA)
    msg = check_message(data)
    assert msg["Subject"] == ("Nyhetsbrev december 2026: strandskyddet, bredbandsstödet och "
                              "vårens webbinarier")
    assert msg["To"].addresses[0].display_name == ANNA.name
    assert msg["To"].addresses[0].addr_spec == ANNA.email
    assert msg["From"].addresses[0].display_name == "Föreningens nyhetsbrev"
    assert msg["Reply-To"].addresses[0].addr_spec == "kansliet@example.se"
    assert msg["Message-ID"] == ANNA.message_id
    assert "<nyhetsbrev.example.se>" in msg["List-Id"]
    # The long URL stays a URL: never an encoded word, never broken.
    assert msg["List-Unsubscribe"] == (
        f"<{UNSUB}>, <mailto:avregistrera@example.se?subject=unsubscribe>")
    assert f"List-Unsubscribe: <{UNSUB}>,".encode() in data
    assert body(msg, "plain") == expected(TEXT, ANNA, escape=False)
    assert body(msg, "html") == expected(HTML, ANNA, escape=True)
    assert "&lt;&amp;&gt;" in body(msg, "html")  # the name is escaped in HTML only


def test_quoted_printable_lines_stay_within_76_characters(site):
    data = MessageTemplate(site.settings, Content(subject="x", html=HTML, text=TEXT)).build(ANNA)
    _, _, payload = data.partition(b"\r\n\r\n")
    for line in payload.split(b"\r\n"):
        assert len(line) <= 76, line


def test_random_placeholder_positions_round_trip(site):
    rng = random.Random(2026)
    alphabet = ["a", "Å", "ö", " ", "\n", "=", ".", "\t", "é", "€", "<", "&", "x" * 90,
                *PLACEHOLDERS]
    people = [ANNA, Recipient("b@example.se", "", "<1.b@x>", "https://n/u/b", "https://n/p/b"),
              Recipient("c@example.se", "Lars " * 30, "<1.c@x>", "https://n/u/c", "https://n/p/c"),
              Recipient("d@example.se", ".Punkt\n." + "å" * 40, "<1.d@x>", "https://n/u/d",
                        "https://n/p/d")]
    for _ in range(150):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        template = MessageTemplate(site.settings, Content(subject="Test", html=text, text=text))
        for person in people:
            msg = check_message(template.build(person))
            assert body(msg, "plain") == expected(text, person, escape=False)
            assert body(msg, "html") == expected(text, person, escape=True)


def test_lines_starting_with_a_dot_are_encoded_within_76_characters(site):
    # Lines of every length around the 76-character limit, starting with one or more dots, in
    # the fixed text and in a personal value right after a soft line break.
    lines = ["." * dots + "x" * (n - dots) + tail for n in range(70, 82) for dots in (1, 2, 40)
             for tail in ("", "=", " ", "å")]
    text = "\n".join(lines) + "\n__NL_NAME__\n"
    person = Recipient("e@example.se", ". punkt." * 20, "<1.e@x>", "https://n/u/e", "https://n/p/e")
    data = MessageTemplate(site.settings, Content(subject="Punkter", html=text, text=text)
                           ).build(person)
    msg = check_message(data)
    for line in data.partition(b"\r\n\r\n")[2].split(b"\r\n"):
        assert len(line) <= 76, line
    assert body(msg, "plain") == expected(text, person, escape=False)
    assert body(msg, "html") == expected(text, person, escape=True)


def test_long_subject_and_names_are_folded_encoded_words(site):
    subject = "Inbjudan: webbinarium om kompetensförsörjning i små kommuner – Åsele, Malå " * 3
    person = Recipient("a@example.se", "Märta " * 20, "<1.a@x>", UNSUB, UNSUB)
    data = MessageTemplate(site.settings, Content(subject=subject, html="h", text="t")
                           ).build(person)
    head = data.partition(b"\r\n\r\n")[0].decode("ascii")
    for line in head.split("\r\n"):
        if not line.startswith("List-Unsubscribe:"):
            assert len(line) <= 78, line
        for word in line.split():
            if word.startswith("=?"):
                assert len(word) <= 75
    msg = parse(data)
    assert msg["Subject"] == " ".join(subject.split())
    # Chunks end after a space; Python's parser keeps the folding space too (RFC 2047 drops it).
    assert msg["To"].addresses[0].display_name.split() == ["Märta"] * 20


def test_calendar_invite_structure_for_outlook_and_gmail(site):
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
           "ATTENDEE;CN=\"__NL_NAME__\":mailto:__NL_EMAIL__\r\nSUMMARY:Webbinarium om bredband\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    template = MessageTemplate(site.settings, Content(
        subject="Inbjudan", html="<p>Hej __NL_NAME__</p>", text="Hej __NL_NAME__",
        attachments=calendar_attachments(ics)))
    msg = check_message(template.build(ANNA))
    assert msg.get_content_type() == "multipart/mixed"
    first = next(msg.iter_parts())  # Outlook looks for iMIP in the first child only
    kinds = [p.get_content_type() for p in first.iter_parts()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    calendar = list(first.iter_parts())[2]
    assert calendar.get_param("method") == "REQUEST"
    attachment = next(msg.iter_attachments())
    assert attachment.get_filename() == "invite.ics"
    personal = 'ATTENDEE;CN="Åsa Anna Östberg <&> Malå":mailto:anna.ostberg@example.se'
    assert personal in attachment.get_content().decode("utf-8")
    assert personal in calendar.get_content()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test key")
def test_dkim_signature_verifies_and_covers_list_unsubscribe(site, tmp_path):
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)

    def dnsfunc(name, timeout=5):
        assert name == b"nl2026._domainkey.example.se."
        return record

    site.root.joinpath("newsletter.toml").write_text(
        site.root.joinpath("newsletter.toml").read_text(encoding="utf-8").replace(
            "[transport]\n", '[transport]\ndkim_selector = "nl2026"\ndkim_domain = "example.se"\n'),
        encoding="utf-8")
    import os

    os.environ["NEWSLETTER_DKIM_KEY_FILE"] = str(key)
    try:
        signer = DkimSigner.from_settings(site.settings)
    finally:
        del os.environ["NEWSLETTER_DKIM_KEY_FILE"]
    assert signer is not None
    data = MessageTemplate(site.settings, Content(subject="Nyhetsbrev", html=HTML, text=TEXT),
                           dkim=signer).build(ANNA)
    assert data.startswith(b"DKIM-Signature:")
    check_message(data)  # still ready for SMTP DATA as it is, signature header included
    assert dkim.verify(data, dnsfunc=dnsfunc)
    signed = parse(data)["DKIM-Signature"].replace(" ", "")
    headers = dict(p.split("=", 1) for p in signed.split(";") if "=" in p)["h"].split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= set(headers)
    tampered = data.replace(b"/u/eXp8c3AfA4MQhGq0OuOdgw", b"/u/AAAAc3AfA4MQhGq0OuOdgw", 1)
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)
