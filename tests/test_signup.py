"""Public sign-up /prenumerera with double opt-in (signups.py, web/signup.py): the two steps,
the confirmation mail and its link, consent records, roles that wait for staff, and the
answers that tell nobody who is in the register."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from newsletter import links, segments, signups
from newsletter.events import SuppressionReason, suppress, suppression_reason
from newsletter.kinds.issue import wants
from newsletter.models import ConsentText, Municipality, Person, RoleClaim, Signup
from newsletter.municipalities import kommunkod_for_address
from newsletter.signing import make_token
from newsletter.web import create_app
from newsletter.web.pages import background_of

from .helpers import (
    ANNA,
    BERTIL,
    SAME_SITE,
    check_page,
    confirm_path,
    csrf_of,
    follow_confirmation,
    inbox,
    person,
    set_config,
    sign_up,
    snapshot,
)

ASELE, DOROTEA = "2463", "2425"
EVA = "eva.lind@asele.se"
STRANGER = "ny.lasare@example.se"


def _recipients(messages) -> list[str]:
    return [m["To"].addresses[0].addr_spec for m in messages]


def _load(site, email: str) -> Person | None:
    with site.transaction() as session:
        found = session.scalar(select(Person).where(Person.email == email))
        if found is not None:
            found.positions, found.areas  # noqa: B018 - loaded while the session is open
        return found


def test_municipality_domains_come_from_the_names_and_the_exceptions():
    assert kommunkod_for_address("eva@asele.se") == ASELE
    assert kommunkod_for_address("eva@skola.asele.se") == ASELE  # a subdomain
    assert kommunkod_for_address("a@upplandsvasby.se") == "0114"  # space dropped, ä folded
    assert kommunkod_for_address("a@malung-salen.se") == "2023"  # hyphen kept ...
    assert kommunkod_for_address("a@malungsalen.se") == "2023"  # ... or dropped
    assert kommunkod_for_address("a@dalsed.se") == "1438"
    assert kommunkod_for_address("a@doroteakommun.se") == DOROTEA  # NAMEkommun.se
    # The exceptions in package data: names that do not give the domain, or give it twice.
    assert kommunkod_for_address("a@herjedalen.se") == "2361"
    assert kommunkod_for_address("a@engelholm.se") == "1292"
    assert kommunkod_for_address("a@habo.se") == "0305"  # Håbo
    assert kommunkod_for_address("a@habokommun.se") == "0643"  # Habo
    assert kommunkod_for_address("a@example.se") is None
    assert kommunkod_for_address("a@se") is None


def test_the_second_step_has_the_municipality_of_the_address_chosen(web):
    client, site = web
    start = client.get("/prenumerera")
    assert start.status_code == 200
    check_page(start)
    assert "Prenumerera på nyhetsbrevet" in start.get_data(as_text=True)
    form = csrf_of(start.get_data(as_text=True))
    for address, code in ((" Eva.Lind@ASELE.se ", ASELE), ("kansli@skola.herjedalen.se", "2361"),
                          ("a@habo.se", "0305"), (STRANGER, None)):
        got = client.post("/prenumerera", data={"csrf": form, "steg": "adress",
                                                "email": address}, headers=SAME_SITE)
        assert got.status_code == 200
        check_page(got)
        page = got.get_data(as_text=True)
        assert re.findall(r'<option value="(\d{4})" selected>', page) == ([code] if code else [])
        assert ("Vald utifrån din adress" in page) is (code is not None)
        assert page.count("<option value=") == 290 + 1 + len(site.settings.roles)
        assert 'name="webbplats"' in page  # the honeypot, out of sight
        assert "När du prenumererar sparar" in page  # the consent text, above the button


def test_sign_up_confirm_by_mail_and_the_role_waits_for_staff(web):
    client, site = web
    with site.transaction() as session:
        session.execute(update(Municipality).where(Municipality.kommunkod == ASELE)
                        .values(member=True))
    got = sign_up(client, "Eva.Lind@Asele.se", name="Eva Lind", municipality=ASELE,
                  role="kommunchef", areas=("bostad", "kapital"))
    assert (got.status_code, got.headers["Location"]) == (303, "/prenumerera/skickat")
    sent = client.get("/prenumerera/skickat")
    check_page(sent)
    assert "Titta i din inkorg" in sent.get_data(as_text=True)

    mails = inbox(client, site)
    assert _recipients(mails) == [EVA]
    assert mails[0]["Subject"].startswith("Bekräfta din prenumeration på nyhetsbrevet")
    text = mails[0].get_body(("plain",)).get_content()
    assert "Hej Eva Lind!" in text and "Länken gäller i 7 dagar" in text
    assert "någon skrev in adressen" in text
    assert _load(site, EVA).status == "pending"

    path = confirm_path(mails[0])
    before = snapshot(site)
    page = client.get(path)  # what a mail scanner does: changes nothing
    check_page(page)
    assert "Ja, bekräfta" in page.get_data(as_text=True)
    assert snapshot(site) == before
    done = follow_confirmation(client, path)
    assert (done.status_code, done.headers["Location"]) == (303, "/prenumerera/klart?roll=vantar")
    thanks = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Din prenumeration är bekräftad" in thanks and "Vi kontrollerar rollen" in thanks

    eva = _load(site, EVA)
    assert (eva.status, eva.subscribed, eva.lawful_basis, eva.basis_source) == (
        "active", True, "consent", "/prenumerera")
    assert {a.area for a in eva.areas} == {"bostad", "kapital"}
    # Until staff verify the kommunchef, Eva holds ovrig in Åsele: what everyone gets.
    assert wants(eva)[1] == frozenset({"ovrig"})
    with site.transaction() as session:
        assert segments.count(session, site.settings, "medlemmar") == 1  # Eva, of Åsele
        assert segments.count(session, site.settings, "role:kommunchef") == 0
        assert segments.count(session, site.settings, "role:ovrig and kommun:Åsele") == 1
        claims = session.scalars(select(RoleClaim)).all()
        assert [(c.role, c.outcome) for c in claims] == [("kommunchef", None)]
    assert EVA in site.cli("contacts", "unverified").stdout
    shown = site.cli("contacts", "show", EVA).stdout
    assert "Samtycke:    nyhetsbrevet, /prenumerera" in shown and "Okontrollerad:" in shown

    assert "Kontrollerad" in site.cli("contacts", "verify", EVA).stdout
    eva = _load(site, EVA)
    assert wants(eva)[1] == frozenset({"kommunchef"})
    with site.transaction() as session:
        assert segments.count(session, site.settings, "role:kommunchef and kommun:Åsele") == 1
        assert segments.count(session, site.settings, "role:ovrig") == 0
    assert site.cli("contacts", "unverified").stdout == ""


def test_a_role_that_needs_no_staff_starts_at_once(web):
    client, site = web
    sign_up(client, "karin@dorotea.se", name="Karin", municipality=DOROTEA,
            role="tjansteperson")
    follow_confirmation(client, confirm_path(inbox(client, site)[-1]))
    karin = _load(site, "karin@dorotea.se")
    assert [(p.role, p.ended_on) for p in karin.positions] == [("tjansteperson", None)]
    assert wants(karin) == (None, frozenset({"tjansteperson"}))  # no areas chosen: all
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(RoleClaim)) == 0


def _not_found(client) -> tuple[int, bytes]:
    got = client.get("/u/" + "A" * 40)
    return got.status_code, got.data


def test_forged_expired_and_replayed_links_get_the_same_404(web):
    client, site = web
    sign_up(client, STRANGER, name="Ny Läsare")
    path = confirm_path(inbox(client, site)[-1])
    token = path.rpartition("/")[2]
    public_id, _dot, sig = token.rpartition(".")
    secret = site.settings.secret_key
    forged = [public_id + "." + ("B" if sig[0] == "A" else "A") + sig[1:],
              make_token(secret, links.UNSUBSCRIBE, public_id),  # another purpose
              make_token(secret, links.CONFIRM, "finns-inte"), "x", "ÅÄÖ.åäö"]
    expected = _not_found(client)
    assert expected[0] == 404
    form = csrf_of(client.get(path).get_data(as_text=True))
    for bad in forged:
        got = client.get(f"/prenumerera/bekrafta/{bad}")
        assert (got.status_code, got.data) == expected, bad
        posted = client.post(f"/prenumerera/bekrafta/{bad}", data={"csrf": form},
                             headers=SAME_SITE)
        assert (posted.status_code, posted.data) == expected, bad

    # Expired: the link works for confirm_days from the sign-up, not a second longer.
    with site.transaction() as session:
        signup = session.scalar(select(Signup))
        made = signup.created_at
        limit = timedelta(days=site.settings.signup.confirm_days)
        assert signups.find(session, site.settings, token, now=made + limit
                            - timedelta(seconds=1)) is not None
        assert signups.find(session, site.settings, token, now=made + limit) is None
        assert signups.confirm(session, site.settings, token, now=made + limit) is None
        session.execute(update(Signup).values(created_at=datetime.now(UTC) - limit))
    before = snapshot(site)
    assert (client.get(path).status_code, client.get(path).data) == expected
    posted = client.post(path, data={"csrf": form}, headers=SAME_SITE)
    assert (posted.status_code, posted.data) == expected
    assert snapshot(site) == before and _load(site, STRANGER).status == "pending"


def test_a_link_confirms_once_and_a_replay_changes_nothing(web):
    client, site = web
    sign_up(client, STRANGER, name="Ny Läsare")
    path = confirm_path(inbox(client, site)[-1])
    form = csrf_of(client.get(path).get_data(as_text=True))
    assert client.post(path, data={"csrf": form}, headers=SAME_SITE).status_code == 303
    after = snapshot(site)
    expected = _not_found(client)
    for _ in range(2):
        replay = client.post(path, data={"csrf": form}, headers=SAME_SITE)
        assert (replay.status_code, replay.data) == expected
        assert (client.get(path).status_code, client.get(path).data) == expected
    assert snapshot(site) == after
    # Unsubscribing afterwards holds: the old link cannot subscribe them again.
    site.cli("contacts", "unsubscribe", STRANGER)
    assert client.post(path, data={"csrf": form}, headers=SAME_SITE).status_code == 404
    assert _load(site, STRANGER).status == "unsubscribed"


def test_every_address_gets_the_same_answer_and_only_the_mailable_get_mail(web):
    client, site = web
    secret = site.settings.secret_key
    with site.transaction() as session:
        bertil = session.scalar(select(Person).where(Person.email == BERTIL))
        bertil.status = "unsubscribed"
        suppress(session, secret, BERTIL, SuppressionReason.UNSUBSCRIBED)
        session.add_all([Person(email="studs@example.se", status="bounced"),
                         Person(email="klagat@example.se", status="unsubscribed")])
        suppress(session, secret, "studs@example.se", SuppressionReason.BOUNCED)
        suppress(session, secret, "klagat@example.se", SuppressionReason.COMPLAINT)
        session.add(Person(email="glomd@example.se", name="Glömd"))
    site.cli("contacts", "forget", "glomd@example.se", "--yes")
    addresses = [ANNA, BERTIL, "studs@example.se", "klagat@example.se", "glomd@example.se",
                 STRANGER]
    answers = {a: sign_up(client, a, name="Någon", municipality=ASELE) for a in addresses}
    assert {(r.status_code, r.headers["Location"], r.data) for r in answers.values()} == {
        (303, "/prenumerera/skickat", answers[ANNA].data)}
    mails = inbox(client, site)
    assert sorted(_recipients(mails)) == sorted([ANNA, BERTIL, STRANGER])
    anna = next(m for m in mails if _recipients([m]) == [ANNA])
    assert "som redan får det" in anna.get_body(("plain",)).get_content()
    with site.transaction() as session:
        assert session.scalar(select(Person).where(Person.email == "glomd@example.se")) is None
        assert suppression_reason(session, secret, "glomd@example.se") == "erased"
        assert session.scalar(select(func.count()).select_from(Signup).where(
            Signup.email.is_not(None))) == 0  # no address kept once handled
        states = dict(session.execute(select(Person.email, Person.status)).all())
    assert states["studs@example.se"] == "bounced" and states["klagat@example.se"] == \
        "unsubscribed" and states[STRANGER] == "pending"

    # Bertil unsubscribed himself: confirming brings him back.
    bertil_mail = next(m for m in mails if _recipients([m]) == [BERTIL])
    follow_confirmation(client, confirm_path(bertil_mail))
    with site.transaction() as session:
        assert session.scalar(select(Person.status).where(Person.email == BERTIL)) == "active"
        assert suppression_reason(session, secret, BERTIL) is None


def test_an_erased_address_that_signs_up_again_gets_nothing_and_stays_erased(web):
    client, site = web
    site.cli("contacts", "forget", ANNA, "--yes")
    for _ in range(2):
        assert sign_up(client, ANNA, name="Anna Andersson", municipality=ASELE,
                       role="kommunchef").status_code == 303
    assert inbox(client, site) == []
    with site.transaction() as session:
        assert session.scalar(select(Person).where(Person.email == ANNA)) is None
        assert session.scalar(select(func.count()).select_from(Signup)) == 0
        assert suppression_reason(session, site.settings.secret_key, ANNA) == "erased"
    shown = site.cli("contacts", "show", ANNA, ok=False)
    assert shown.exit_code != 0 and "raderad" in shown.stderr


def _app(site):
    app = create_app(site.settings)
    app.testing = True
    return app


def test_rate_limits_per_address_and_per_client(site):
    set_config(site, signups_per_address="2", signups_per_client="4")
    app = _app(site)
    client = app.test_client()
    try:
        first = {"REMOTE_ADDR": "10.0.0.1"}
        answers = [sign_up(client, STRANGER, name="Ny", headers={**SAME_SITE})
                   for _ in range(3)]
        assert {(a.status_code, a.headers["Location"]) for a in answers} == {
            (303, "/prenumerera/skickat")}
        assert len(inbox(client, site)) == 2  # the third got no mail: a victim is not flooded

        client.environ_base.update(first)
        for i in range(4):
            assert sign_up(client, f"person{i}@example.se").status_code == 303
        over = sign_up(client, "en.till@example.se")
        assert over.status_code == 429
        check_page(over)
        assert "För många försök" in over.get_data(as_text=True)
        client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # another client is not held back
        assert sign_up(client, "en.till@example.se").status_code == 303
        assert len(inbox(client, site)) == 2 + 4 + 1
    finally:
        assert background_of(app).stop()


def test_the_honeypot_records_nothing_and_answers_as_usual(web):
    client, site = web
    got = sign_up(client, STRANGER, name="Bot", extra={"webbplats": "https://spam.example"})
    assert (got.status_code, got.headers["Location"]) == (303, "/prenumerera/skickat")
    assert inbox(client, site) == []
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Signup)) == 0
        assert session.scalar(select(Person).where(Person.email == STRANGER)) is None


def test_bad_input_gets_the_form_again_and_bad_forms_are_refused(web):
    client, site = web
    form = csrf_of(client.get("/prenumerera").get_data(as_text=True))
    bad = client.post("/prenumerera", data={"csrf": form, "steg": "adress",
                                            "email": "eva@"}, headers=SAME_SITE)
    assert bad.status_code == 400
    check_page(bad)
    assert "Skriv en giltig e-postadress" in bad.get_data(as_text=True)
    for field, value, text in (("municipality", "9999", "Välj din kommun i listan"),
                               ("role", "kung", "Välj din roll i listan"),
                               ("area", "fiske", "Välj områden i listan"),
                               ("name", "x" * 201, "Namnet är för långt")):
        got = client.post("/prenumerera", data={
            "csrf": form, "steg": "uppgifter", "email": STRANGER, field: value},
            headers=SAME_SITE)
        assert got.status_code == 400, field
        assert text in got.get_data(as_text=True)
    assert client.post("/prenumerera", data={"steg": "adress", "email": STRANGER},
                       headers=SAME_SITE).status_code == 400  # no form token
    assert client.post("/prenumerera", data={"csrf": form, "email": STRANGER}, headers={
        "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert inbox(client, site) == []


def test_an_unconfirmed_sign_up_is_deleted_with_its_pending_person(web):
    client, site = web
    sign_up(client, STRANGER, name="Ny Läsare", municipality=ASELE)
    assert len(inbox(client, site)) == 1
    long_ago = datetime.now(UTC) - timedelta(days=8)
    with site.transaction() as session:
        session.execute(update(Signup).values(created_at=long_ago))
        session.execute(update(Person).where(Person.email == STRANGER)
                        .values(created_at=long_ago))
    out = site.cli("retention").stdout
    assert "Obekräftade anmälningar vars länk har gått ut: 2 raderade" in out
    assert _load(site, STRANGER) is None
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Signup)) == 0


def test_the_consent_text_is_stored_once_per_version_and_exported(web):
    client, site = web
    for address in (STRANGER, "en.till@example.se"):
        sign_up(client, address, name="Ny")
    for mail in inbox(client, site):
        follow_confirmation(client, confirm_path(mail))
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ConsentText)) == 1
    # Staff edit the text: the page shows the new one and the next consent points at it.
    own = site.root / "templates" / "web" / "consent" / "newsletter.txt.j2"
    own.write_text("Vi sparar din adress för nyhetsbrevet från {{ organisation }}.\n",
                   encoding="utf-8")
    form = csrf_of(client.get("/prenumerera").get_data(as_text=True))
    second = client.post("/prenumerera", data={"csrf": form, "steg": "adress",
                                               "email": STRANGER}, headers=SAME_SITE)
    assert "Vi sparar din adress för nyhetsbrevet" in second.get_data(as_text=True)
    sign_up(client, "en.tredje@example.se")
    follow_confirmation(client, confirm_path(inbox(client, site)[-1]))
    with site.transaction() as session:
        texts = session.scalars(select(ConsentText).order_by(ConsentText.id)).all()
    assert [t.purpose for t in texts] == ["newsletter", "newsletter"]
    assert texts[1].text.startswith("Vi sparar din adress för nyhetsbrevet från")

    record = json.loads(site.cli("contacts", "export-person", STRANGER, "--format",
                                 "json").stdout)
    [given] = record["consents"]
    assert (given["purpose"], given["page"]) == ("newsletter", "/prenumerera")
    assert given["version"] == texts[0].version and given["text"] == texts[0].text
    assert given["given_at"] <= given["confirmed_at"]
    text = site.cli("contacts", "export-person", STRANGER).stdout
    assert "Samtycken:" in text and texts[0].text.split("\n\n")[0] in text


def test_a_staff_add_makes_a_pending_person_a_contact(web):
    client, site = web
    sign_up(client, STRANGER)
    inbox(client, site)
    site.cli("contacts", "add", STRANGER, "--name", "Ny Läsare", "--municipality", "Åsele")
    assert person(site, STRANGER).status == "active"


def test_erasure_deletes_a_sign_up_not_handled_yet(site):
    with site.transaction() as session:  # recorded by a request; no background sender ran
        signups.record(session, None, STRANGER, details=signups.Details(name="Ny Läsare"))
    site.cli("contacts", "forget", STRANGER, "--yes")
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Signup)) == 0
    with site.transaction() as session:  # and were the row handled now: nothing is mailed
        signups.record(session, None, STRANGER)
    assert signups.handle_pending(site.settings, site.sessions()) == []
    assert _load(site, STRANGER) is None
