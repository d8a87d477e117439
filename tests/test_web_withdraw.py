"""Cancelling one's own webinar registration from the link in the messages:
/webinar/SLUG/avanmal/TOKEN asks on GET and cancels on a POST."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from newsletter import links, sender, webinars
from newsletter.models import Person, Registration

from .helpers import (
    ANNA,
    BERTIL,
    SAME_SITE,
    check_page,
    csrf_of,
    maildir,
    person,
    sent_in_background,
)

SLUG = "bredband-i-glesbygd"
LINK = re.compile(r"https://nyhetsbrev\.example\.se/webinar/" + SLUG
                  + r"/avanmal/([A-Za-z0-9_.-]+)")


def _webinar_with_one_place(site) -> None:
    with site.transaction() as session:
        webinars.create_webinar(
            session, site.settings, title="Bredband i glesbygd", slug=SLUG, capacity=1,
            starts_at=datetime.now(UTC) + timedelta(days=20), duration_minutes=90,
            join_url="https://example.se/mote/123")


def _register(site, address: str) -> None:
    with site.transaction() as session:
        outcome = webinars.register(session, site.settings, SLUG, address)
    sender.deliver(site.settings, site.sessions(), outcome.mailings)


def _to(site, address: str) -> list:
    """The messages to ADDRESS in the site's Maildir (the default transport), oldest first."""
    box = maildir(site)
    found = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
             for key in box.iterkeys()]
    return sorted((m for m in found if m["To"].addresses[0].addr_spec == address),
                  key=lambda m: m["Date"].datetime)


def _status(site, address: str) -> str | None:
    with site.transaction() as session:
        return session.scalar(select(Registration.status).join(Person).where(
            Person.email == address))


def test_the_link_in_the_confirmation_asks_on_get_and_cancels_on_post(web):
    client, site = web
    _webinar_with_one_place(site)
    _register(site, ANNA)
    _register(site, BERTIL)  # the waiting list
    (confirmation,) = _to(site, ANNA)
    text = confirmation.get_body(("plain",)).get_content()
    html = confirmation.get_body(("html",)).get_content()
    token = LINK.search(text).group(1)
    assert LINK.search(html).group(1) == token
    assert token == links.registration_token(site.settings, person(site, ANNA))
    assert "__NL_" not in text + html
    # The newsletter's unsubscribe stays: in the headers, and small in the footer.
    assert "/u/" in confirmation["List-Unsubscribe"]
    assert "Avregistrera dig från alla våra utskick" in html and "/u/" in html

    url = f"/webinar/{SLUG}/avanmal/{token}"
    asked = client.get(url)
    assert asked.status_code == 200
    check_page(asked)
    page = asked.get_data(as_text=True)
    assert "Vill du avanmäla dig?" in page and "<form" in page
    assert _status(site, ANNA) == "registered"  # a GET (a mail scanner) changes nothing

    done = client.post(url, data={"csrf": csrf_of(page)}, headers=SAME_SITE)
    assert done.status_code == 303 and done.headers["Location"].endswith(f"{url}?klart=1")
    assert "Du är avanmäld" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert _status(site, ANNA) == "cancelled" and _status(site, BERTIL) == "registered"
    sent_in_background(client)
    assert sorted(m["Subject"].split(":")[0] for m in _to(site, ANNA)) == [
        "Avanmäld", "Bekräftelse"]
    assert sorted(m["Subject"].split(":")[0] for m in _to(site, BERTIL)) == [
        "Bekräftelse", "Väntelista"]
    # Again: nothing left to cancel, nothing sent.
    again = client.get(url).get_data(as_text=True)
    assert "Du är inte anmäld" in again and "<form" not in again


def test_the_waiting_list_message_offers_to_leave_it(web):
    client, site = web
    _webinar_with_one_place(site)
    _register(site, ANNA)
    _register(site, BERTIL)
    (waiting,) = _to(site, BERTIL)
    token = LINK.search(waiting.get_body(("plain",)).get_content()).group(1)
    page = client.get(f"/webinar/{SLUG}/avanmal/{token}").get_data(as_text=True)
    assert "Vill du lämna väntelistan?" in page
    client.post(f"/webinar/{SLUG}/avanmal/{token}", data={"csrf": csrf_of(page)},
                headers=SAME_SITE)
    assert _status(site, BERTIL) == "cancelled" and _status(site, ANNA) == "registered"


def test_bad_tokens_forms_and_cross_site_posts_change_nothing(web):
    client, site = web
    _webinar_with_one_place(site)
    _register(site, ANNA)
    token = links.registration_token(site.settings, person(site, ANNA))
    reference = client.get("/u/nonsense").data
    other_purpose = links.unsubscribe_url(site.settings, person(site, ANNA)).rsplit("/", 1)[1]
    altered = token[:-1] + ("x" if token[-1] != "x" else "y")  # 1 token in 64 ends in x
    for url in (f"/webinar/{SLUG}/avanmal/{altered}", f"/webinar/finns-inte/avanmal/{token}",
                f"/webinar/{SLUG}/avanmal/{other_purpose}"):
        for method in ("get", "post"):
            got = getattr(client, method)(url)
            assert got.status_code == 404 and got.data == reference, url
    url = f"/webinar/{SLUG}/avanmal/{token}"
    assert client.post(url, data={}, headers=SAME_SITE).status_code == 400
    form = csrf_of(client.get(url).get_data(as_text=True))
    assert client.post(url, data={"csrf": form},
                       headers={"Origin": "https://evil.example.org"}).status_code == 403
    assert _status(site, ANNA) == "registered"
