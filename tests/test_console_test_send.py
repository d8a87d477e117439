"""The console's test send (issue 10 item 5): recorded by the request, sent by the console's
background sender into a real SMTP server on 127.0.0.1, shown on the preview page when it is
shown again; never published, never to a bounced, erased or complaining address."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from newsletter import contacts
from newsletter.console.context import background_of
from newsletter.events import SuppressionReason, suppress
from newsletter.models import ArchivedIssue, Event, Mailing, OutboxRow, Person

from .console_support import STAFF, csrf_for, start_console, stop_console
from .helpers import ANNA

MONTH = "2026-12"
PREVIEW = f"/nummer/{MONTH}/forhandsgranska"
KOMMUNCHEF_ITEM = "Kommunchefsnätverket träffas"


def _send(client, addresses: str, *, variant: str = "shown", **choice):
    data = {"csrf": csrf_for(client, PREVIEW), "addresses": addresses, "variant": variant,
            **choice}
    return client.post(f"/nummer/{MONTH}/testutskick", data=data)


def _idle(console) -> None:
    assert background_of(console.app).idle(20), "the console's background sender is stuck"


def _copies(html: str) -> dict[str, str]:
    """The preview page's list of test copies: address -> its line (HTML)."""
    listing = html[html.index('id="testkopior"'):]
    listing = listing[:listing.index("</ul>")]
    return {re.search(r"<strong>([^<]+)</strong>", item).group(1): item
            for item in re.findall(r"<li>(.*?)</li>", listing, re.DOTALL)}


def _count(site, model) -> int:
    with site.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_the_form_is_filled_with_the_staff_members_own_address(console):
    client = console.signed_in("redaktor")
    page = client.get(PREVIEW)
    assert page.status_code == 200
    box = re.search(r'<textarea id="test-adresser"[^>]*>([^<]*)</textarea>', page.text)
    assert box and box.group(1) == STAFF["redaktor"]


def test_a_test_send_reaches_each_address_as_the_variant_shown_and_publishes_nothing(
        mailing_console, smtp_server):
    console = mailing_console
    client = console.signed_in("redaktor")
    response = _send(client, f"{STAFF['redaktor']}, kollega@example.se", roll="kommunchef")
    assert response.status_code == 303, response.text
    location = response.headers["Location"]
    assert location.startswith(f"{PREVIEW}?roll=kommunchef&meddelande=test&antal=2")
    _idle(console)
    assert smtp_server.wait_for(2, timeout=15)
    assert set(smtp_server.copies()) == {STAFF["redaktor"], "kollega@example.se"}
    for message in smtp_server.parsed():
        assert message["Subject"].startswith("[TEST] ")
        text = message.get_body(("plain",)).get_content()
        assert KOMMUNCHEF_ITEM in text  # the kommunchef variant, though neither is a contact
    assert _count(console.site, ArchivedIssue) == 0  # nothing published
    with console.site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)
                              .where(OutboxRow.person_id.is_not(None))) == 0
        event = session.scalars(select(Event).where(Event.kind == "console-test-sent")).one()
    assert event.detail["staff"] == STAFF["redaktor"] and len(event.detail["mailings"]) == 2
    assert "kollega@example.se" not in str(event.detail)  # the log holds no address
    copies = _copies(client.get(location).text)
    assert set(copies) == {STAFF["redaktor"], "kollega@example.se"}
    assert all('class="badge good"' in c for c in copies.values()), copies


def test_each_address_may_get_its_own_contacts_variant(mailing_console, smtp_server):
    console = mailing_console
    with console.site.transaction() as session:
        session.add(Person(email=ANNA, name="Anna Andersson"))  # no role: no kommunchef items
    client = console.signed_in("redaktor")
    assert _send(client, ANNA, variant="own", roll="kommunchef").status_code == 303
    _idle(console)
    assert smtp_server.wait_for(1, timeout=15)
    text = smtp_server.parsed()[0].get_body(("plain",)).get_content()
    assert KOMMUNCHEF_ITEM not in text


def test_a_bounced_erased_or_complaining_address_is_refused_and_nothing_is_recorded(
        mailing_console, smtp_server):
    console = mailing_console
    site = console.site
    secret = site.settings.secret_key
    with site.transaction() as session:
        suppress(session, secret, "studsar@example.se", SuppressionReason.BOUNCED)
        suppress(session, secret, "klagade@example.se", SuppressionReason.COMPLAINT)
        suppress(session, secret, "avslutad@example.se", SuppressionReason.UNSUBSCRIBED)
        session.add(Person(email="glomd@example.se", name="Glömd"))
    with site.transaction() as session:
        contacts.forget(session, secret, "glomd@example.se")
    client = console.signed_in("redaktor")
    for address, why in (("studsar@example.se", "studsar@example.se"),
                         ("Glomd@Example.se", "glomd@example.se"),
                         ("klagade@example.se", "klagade@example.se")):
        response = _send(client, f"{STAFF['redaktor']}\n{address}")
        assert response.status_code == 409, (address, response.status_code)
        error = re.search(r'<p class="error" role="alert" id="test-fel">([^<]*)</p>',
                          response.text)
        assert error and why in error.group(1), response.text
        assert f">{STAFF['redaktor']}\n{address}</textarea>" in response.text  # kept to correct
    assert _count(site, Mailing) == 0
    # Unsubscribed from the newsletter is no reason to refuse a test copy.
    assert _send(client, "avslutad@example.se").status_code == 303
    _idle(console)
    assert smtp_server.wait_for(1, timeout=15)
    assert list(smtp_server.copies()) == ["avslutad@example.se"]


def test_bad_or_too_many_addresses_are_refused_with_the_reason(console):
    client = console.signed_in("redaktor")
    response = _send(client, "inte-en-adress")
    assert response.status_code == 400
    assert "inte-en-adress" in response.text and 'aria-invalid="true"' in response.text
    assert _send(client, "").status_code == 400
    many = ", ".join(f"r{i}@example.se" for i in range(11))
    assert _send(client, many).status_code == 400
    assert _count(console.site, Mailing) == 0


def test_what_became_of_each_copy_is_shown_when_the_page_is_shown_again(mailing_console,
                                                                          smtp_server):
    console = mailing_console
    smtp_server.reject(["finns.inte@example.se"], reply="550 5.1.1 User unknown")
    client = console.signed_in("redaktor")
    assert _send(client, "finns.inte@example.se").status_code == 303
    _idle(console)
    # A deferral makes the background sender rest until the message is due: send it last.
    smtp_server.tempfail(1, reply="451 4.3.0 Try again later")
    assert _send(client, "senare@example.se").status_code == 303
    _idle(console)
    copies = _copies(client.get(PREVIEW).text)
    assert list(copies) == ["senare@example.se", "finns.inte@example.se"]  # newest first
    failed, deferred = copies["finns.inte@example.se"], copies["senare@example.se"]
    assert 'class="badge bad"' in failed and "User unknown" in failed
    assert "Uppskjutet" in deferred and "Try again later" in deferred
    assert "nästa försök" in deferred


def test_a_site_that_cannot_send_refuses_before_recording(site, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp://")  # no host: a configuration error
    console = start_console(site)
    try:
        client = console.signed_in("redaktor")
        page = client.get(PREVIEW)
        assert "värd saknas" in page.text  # the form says so before anyone tries
        response = _send(client, STAFF["redaktor"])
        assert response.status_code == 500
        assert _count(site, Mailing) == 0
    finally:
        stop_console(console)


def test_a_cross_site_test_send_is_refused(console):
    client = console.signed_in("redaktor")
    token = csrf_for(client, PREVIEW)
    response = client.post(f"/nummer/{MONTH}/testutskick",
                           data={"csrf": token, "addresses": STAFF["redaktor"]},
                           headers={"Origin": "https://evil.example.org",
                                    "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert client.post(f"/nummer/{MONTH}/testutskick",
                       data={"addresses": STAFF["redaktor"]}).status_code == 403
    assert _count(console.site, Mailing) == 0


def test_the_cli_refuses_a_test_copy_to_a_bounced_address(site):
    with site.transaction() as session:
        suppress(session, site.settings.secret_key, "studsar@example.se",
                 SuppressionReason.BOUNCED)
    result = site.cli("send", "issue", MONTH, "--to", "medlemmar", "--test-to",
                      "ok@example.se", "--test-to", "studsar@example.se", ok=False)
    assert result.exit_code == 1
    assert "studsar@example.se" in result.stderr
    assert _count(site, Mailing) == 0
