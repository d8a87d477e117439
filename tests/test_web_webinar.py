"""The webinar registration page /webinar/SLUG."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter import segments, webinars
from newsletter.events import SuppressionReason, suppress
from newsletter.models import Consent, Person, Registration, Webinar

from .helpers import (
    ANNA,
    BERTIL,
    SAME_SITE,
    check_page,
    confirm_path,
    csrf_of,
    follow_confirmation,
    sent_in_background,
)

URL = "/webinar/bredband-i-glesbygd"
DESCRIPTION = ("Hur når vi **sista kilometern**? Med gäster från Åsele och Dorotea.\n\n"
               "<script>alert(1)</script>\n\n[Program](https://example.se/program)")


def add_webinar(site, *, starts_at: datetime | None = None, capacity: int | None = None,
                status: str = "scheduled") -> None:
    with site.transaction() as session:
        webinar = webinars.create_webinar(
            session, site.settings, title="Bredband i glesbygd",
            starts_at=starts_at or datetime(2030, 11, 12, 13, 0, tzinfo=UTC),
            duration_minutes=90, join_url="https://example.se/mote/123", area="digitalisering",
            description=DESCRIPTION, capacity=capacity, slug="bredband-i-glesbygd",
            now=datetime(2000, 1, 1, tzinfo=UTC))  # some of them are past
        webinar.status = status


def registration_of(site, email: str) -> str | None:
    with site.transaction() as session:
        return session.scalar(
            select(Registration.status).join(Person, Person.id == Registration.person_id)
            .where(Person.email == email))


def delivered(client, site) -> list:
    """The messages in the site's Maildir (the default transport), once the app's background
    sender has sent what the requests recorded."""
    sent_in_background(client)
    folder = site.root / "Maildir" / "new"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def register(client, address: str, headers=SAME_SITE, **fields: str):
    """POST ADDRESS (and FIELDS: name, nyhetsbrev) on the page; returns once the background
    sender has handled it."""
    form = csrf_of(client.get(URL).get_data(as_text=True))
    got = client.post(URL, data={"csrf": form, "email": address, **fields}, headers=headers)
    sent_in_background(client)
    return got


def test_the_page_shows_title_swedish_time_and_a_safe_description(web):
    client, site = web
    add_webinar(site)
    got = client.get(URL)
    assert got.status_code == 200
    check_page(got)
    page = got.get_data(as_text=True)
    assert "<h1>Bredband i glesbygd</h1>" in page
    assert "tisdag 12 november 2030 kl. 14.00–15.30" in page
    assert "<strong>sista kilometern</strong>" in page
    assert "<script" not in page and "alert(1)" not in page
    assert 'href="https://example.se/program"' in page
    assert 'type="email"' in page and "Anmäl mig" in page
    assert "Ny här? Då skickar vi först en länk som du bekräftar adressen med." in page
    assert "När du anmäler dig sparar" in page  # the consent text, above the button
    assert 'id="nyhetsbrev"' in page and 'name="webbplats"' in page  # the box, the honeypot
    assert "https://example.se/mote/123" not in page  # the join link comes with the confirmation


def test_an_active_contact_is_registered_and_told_to_look_in_the_mailbox(web):
    client, site = web
    add_webinar(site)
    got = register(client, " Anna.Andersson@EXAMPLE.se ")
    assert got.status_code == 303 and got.headers["Location"] == f"{URL}?anmald=1"
    assert registration_of(site, ANNA) == "registered"
    thanks = client.get(got.headers["Location"]).get_data(as_text=True)
    assert "Tack! Titta i din e-post" in thanks
    sent = delivered(client, site)
    assert [m["To"].addresses[0].addr_spec for m in sent] == [ANNA]
    assert "Bredband i glesbygd" in sent[0]["Subject"]


def test_the_answer_does_not_reveal_whether_an_address_is_a_contact(web):
    client, site = web
    add_webinar(site)
    with site.transaction() as session:
        session.scalar(select(Person).where(Person.email == BERTIL)).status = "unsubscribed"
        suppress(session, site.settings.secret_key, BERTIL, SuppressionReason.UNSUBSCRIBED)
        session.add(Person(email="glomd@example.se"))
    site.cli("contacts", "forget", "glomd@example.se", "--yes")
    known = register(client, ANNA)
    for other_address in ("okand.person@example.se", BERTIL, "glomd@example.se"):
        other = register(client, other_address)
        assert (other.status_code, other.headers["Location"]) == (
            known.status_code, known.headers["Location"])
        assert other.data == known.data
    assert registration_of(site, BERTIL) is None
    sent = delivered(client, site)
    # Anna's registration; a link to confirm the address for the stranger and for Bertil,
    # who unsubscribed; nothing for the erased address.
    by_address = {m["To"].addresses[0].addr_spec: m["Subject"] for m in sent}
    assert by_address.keys() == {ANNA, "okand.person@example.se", BERTIL}
    assert by_address[ANNA].startswith("Bekräftelse: Bredband i glesbygd")
    assert by_address[BERTIL] == by_address["okand.person@example.se"] == (
        "Bekräfta din anmälan: Bredband i glesbygd")


def test_a_full_webinar_offers_the_waiting_list(web):
    client, site = web
    add_webinar(site, capacity=1)
    register(client, ANNA)
    page = client.get(URL).get_data(as_text=True)
    assert "Alla platser är tagna" in page and "Ställ mig på väntelistan" in page
    got = register(client, BERTIL)
    assert got.status_code == 303
    assert registration_of(site, BERTIL) == "waitlisted"


@pytest.mark.parametrize("state,text", [
    ("cancelled", "Webbinariet är inställt."),
    ("ended", "Webbinariet har redan ägt rum."),
    ("started", "Webbinariet pågår just nu"),
])
def test_a_cancelled_or_past_webinar_takes_no_registrations(web, state, text):
    client, site = web
    now = datetime.now(UTC)
    starts = {"cancelled": now + timedelta(days=10), "ended": now - timedelta(days=2),
              "started": now - timedelta(minutes=30)}[state]
    add_webinar(site, starts_at=starts, status="cancelled" if state == "cancelled" else
                "scheduled")
    page = client.get(URL)
    assert page.status_code == 200
    assert text in page.get_data(as_text=True)
    assert "<form" not in page.get_data(as_text=True)
    from newsletter.web.csrf import make_form_token

    form = make_form_token(site.settings.secret_key, "w:bredband-i-glesbygd")
    got = client.post(URL, data={"csrf": form, "email": ANNA}, headers=SAME_SITE)
    assert got.status_code == 409
    assert registration_of(site, ANNA) is None


def test_bad_addresses_bad_forms_and_cross_site_posts_are_refused(web):
    client, site = web
    add_webinar(site)
    bad = register(client, "anna.andersson@")
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "Skriv en giltig e-postadress" in page and 'value="anna.andersson@"' in page
    check_page(bad)
    assert client.post(URL, data={"email": ANNA}, headers=SAME_SITE).status_code == 400
    token = csrf_of(client.get(URL).get_data(as_text=True))
    forged = token[:-2] + ("B" if token[-2] == "A" else "A") + token[-1]  # always a change
    other = client.post(URL, data={"email": ANNA, "csrf": forged}, headers=SAME_SITE)
    assert other.status_code == 400
    assert register(client, ANNA, headers={"Origin": "https://evil.example.org"}
                    ).status_code == 403
    assert register(client, ANNA, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert registration_of(site, ANNA) is None


def test_an_unknown_webinar_is_the_same_404(web):
    client, site = web
    reference = client.get("/u/nonsense").data
    for method in ("get", "post"):
        got = getattr(client, method)("/webinar/finns-inte")
        assert got.status_code == 404 and got.data == reference
    with site.transaction() as session:
        assert session.scalar(select(Webinar.id)) is None


def test_simultaneous_registrations_neither_fail_nor_overbook(web):
    client, site = web
    add_webinar(site, capacity=3)
    people = [f"samtidig{i}@asele.example.se" for i in range(8)]
    with site.transaction() as session:
        session.add_all(Person(email=address, name=f"Samtidig {i}")
                        for i, address in enumerate(people))
    app = client.application
    forms = []
    for _ in people:
        c = app.test_client()
        forms.append((c, csrf_of(c.get(URL).get_data(as_text=True))))
    start = threading.Barrier(len(people))
    answers: dict[str, int] = {}

    def post(address: str, c, form: str) -> None:
        start.wait()
        answers[address] = c.post(URL, data={"csrf": form, "email": address},
                                  headers=SAME_SITE).status_code

    threads = [threading.Thread(target=post, args=(a, c, f))
               for a, (c, f) in zip(people, forms, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert answers == {address: 303 for address in people}
    sent_in_background(client)
    statuses = sorted(registration_of(site, address) for address in people)
    assert statuses == ["registered"] * 3 + ["waitlisted"] * 5


def _person(site, address: str) -> Person | None:
    with site.transaction() as session:
        return session.scalar(select(Person).where(Person.email == address))


def test_someone_new_confirms_by_mail_and_becomes_a_contact_for_the_webinar_only(web):
    client, site = web
    add_webinar(site)
    got = register(client, "Ny.Person@Example.se", name="Ny Person")
    assert got.status_code == 303
    [mail] = delivered(client, site)
    assert mail["Subject"] == "Bekräfta din anmälan: Bredband i glesbygd"
    text = mail.get_body(("plain",)).get_content()
    assert "Hej Ny Person!" in text and "tisdag 12 november 2030" in text
    assert registration_of(site, "ny.person@example.se") is None  # not before confirming
    assert _person(site, "ny.person@example.se").status == "pending"

    done = follow_confirmation(client, confirm_path(mail))
    assert done.headers["Location"] == (
        "/prenumerera/klart?webbinarium=bredband-i-glesbygd&anmalan=anmald")
    thanks = client.get(done.headers["Location"])
    check_page(thanks)
    assert "Du är anmäld" in thanks.get_data(as_text=True)
    assert registration_of(site, "ny.person@example.se") == "registered"
    sent = delivered(client, site)
    assert len(sent) == 2
    [confirmation] = [m for m in sent if m["Subject"].startswith("Bekräftelse: Bredband")]
    assert any(p.get_content_type() == "text/calendar" for p in confirmation.walk())

    newcomer = _person(site, "ny.person@example.se")
    assert (newcomer.status, newcomer.subscribed, newcomer.name) == ("active", False, "Ny Person")
    with site.transaction() as session:
        [given] = session.scalars(select(Consent)).all()
        assert (given.purpose, given.page) == ("webinar", URL)
        assert given.webinar_id == session.scalar(select(Webinar.id))
        # A contact for the webinar only: its messages reach them, nothing else does.
        reached = set(session.scalars(segments.recipients_query(
            site.settings, "registered:bredband-i-glesbygd", include_paused=True)
            .with_only_columns(Person.email)))
        assert reached == {"ny.person@example.se"}
        for segment in ("registered:bredband-i-glesbygd", "not role:styrelse"):
            assert "ny.person@example.se" not in set(session.scalars(
                segments.recipients_query(site.settings, segment)
                .with_only_columns(Person.email)))


def test_ticking_the_newsletter_box_subscribes_them_too(web):
    client, site = web
    add_webinar(site)
    register(client, "ny.person@example.se", nyhetsbrev="ja")
    follow_confirmation(client, confirm_path(delivered(client, site)[-1]))
    assert _person(site, "ny.person@example.se").subscribed is True
    with site.transaction() as session:
        assert sorted(c.purpose for c in session.scalars(select(Consent))) == [
            "newsletter", "webinar"]
        assert "ny.person@example.se" in set(session.scalars(
            segments.recipients_query(site.settings, "not role:styrelse")
            .with_only_columns(Person.email)))


def test_a_newcomer_to_a_full_webinar_gets_the_waiting_list_after_confirming(web):
    client, site = web
    add_webinar(site, capacity=1)
    register(client, ANNA)
    register(client, "ny.person@example.se")
    [link] = [m for m in delivered(client, site) if m["Subject"].startswith("Bekräfta din")]
    done = follow_confirmation(client, confirm_path(link))
    assert done.headers["Location"].endswith("anmalan=vantelista")
    assert registration_of(site, "ny.person@example.se") == "waitlisted"


def test_a_webinar_cancelled_before_the_confirmation_registers_nobody(web):
    client, site = web
    add_webinar(site)
    register(client, "ny.person@example.se")
    path = confirm_path(delivered(client, site)[-1])
    with site.transaction() as session:
        session.scalar(select(Webinar)).status = "cancelled"
    done = follow_confirmation(client, path)
    assert done.headers["Location"].endswith("anmalan=stangd")
    assert "har stängt" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert registration_of(site, "ny.person@example.se") is None
