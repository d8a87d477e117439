"""The console's register pages /kontakter (console/contacts_pages.py): who may read and who may
change, the changes themselves, and the audit log."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from newsletter import role_claims
from newsletter.models import Event, Municipality, Person, RoleClaim
from newsletter.positions import start_position

from .console_support import STAFF, csrf_for

EVA = "eva.lind@asele.se"


def _eva(site) -> str:
    """Eva Lind, tjansteperson in Dorotea, who declared herself kommunchef of Åsele on the
    sign-up page; her public id."""
    with site.transaction() as session:
        eva = Person(email=EVA, name="Eva Lind")
        session.add(eva)
        session.flush()
        ids = dict(session.execute(select(Municipality.kommunkod, Municipality.id).where(
            Municipality.kommunkod.in_(("2463", "2425")))).all())
        start_position(session, eva, ids["2425"], "tjansteperson", date(2025, 1, 1),
                       source="test")
        role_claims.claim(session, site.settings, eva, ids["2463"], "kommunchef",
                          page="/prenumerera", today=date.today())
        return eva.public_id


def _claim_id(site) -> int:
    with site.transaction() as session:
        return session.scalar(select(RoleClaim.id))


def _held(site) -> list[tuple[str, str]]:
    with site.transaction() as session:
        eva = session.scalar(select(Person).where(Person.email == EVA))
        return sorted((p.municipality.name, p.role) for p in eva.positions_on())


def test_a_redaktor_reads_everything_and_changes_nothing(console):
    public_id = _eva(console.site)
    client = console.signed_in("redaktor")
    for path in ("/kontakter?q=eva", f"/kontakter/person/{public_id}", "/kontakter/roller",
                 "/kontakter/vakanser", "/kontakter/vakanser?roll=kso"):
        got = client.get(path)
        assert got.status_code == 200, path
    person_page = client.get(f"/kontakter/person/{public_id}").text
    assert "Kommunchef, Åsele" in person_page and "Godkänn" not in person_page
    assert "Avsluta rollen" not in person_page
    token = csrf_for(client)
    for path, data in (("/kontakter/roller", {"claim": _claim_id(console.site),
                                              "action": "verifiera"}),
                       (f"/kontakter/person/{public_id}/avsluta",
                        {"position": "tjansteperson|2425"}),
                       (f"/kontakter/person/{public_id}/omraden", {"area": "bostad"})):
        assert client.post(path, data={"csrf": token, **data}).status_code == 403, path
    assert _held(console.site) == [("Dorotea", "tjansteperson"), ("Åsele", "ovrig")]


def test_a_granskare_verifies_a_role_and_it_is_audited(console):
    public_id = _eva(console.site)
    client = console.signed_in("granskare")
    listed = client.get("/kontakter/roller").text
    assert EVA in listed and "Godkänn" in listed
    assert client.post("/kontakter/roller", data={
        "claim": _claim_id(console.site), "action": "verifiera"}).status_code == 403  # no CSRF
    got = client.post("/kontakter/roller", data={
        "csrf": csrf_for(client), "claim": _claim_id(console.site), "action": "verifiera",
        "back": "person"})
    assert got.status_code == 303
    assert got.headers["Location"] == f"/kontakter/person/{public_id}?meddelande=verifierad"
    assert _held(console.site) == [("Dorotea", "tjansteperson"), ("Åsele", "kommunchef")]
    with console.site.transaction() as session:
        claim = session.scalar(select(RoleClaim))
        assert (claim.outcome, claim.decided_by) == ("verified", STAFF["granskare"])
        audit = session.scalars(select(Event).where(
            Event.kind == "console-role-verified")).one()
        assert audit.detail == {"staff": STAFF["granskare"], "role": "kommunchef",
                                "municipality": "2463"}
        assert audit.person_id is None  # the person's own events say what happened to them
    again = client.post("/kontakter/roller", data={
        "csrf": csrf_for(client), "claim": _claim_id(console.site), "action": "verifiera"})
    assert again.status_code == 409  # decided already


def test_a_granskare_rejects_a_role_and_the_person_stays_ovrig(console):
    _eva(console.site)
    client = console.signed_in("admin")
    got = client.post("/kontakter/roller", data={
        "csrf": csrf_for(client), "claim": _claim_id(console.site), "action": "avvisa"})
    assert got.headers["Location"] == "/kontakter/roller?meddelande=avvisad"
    assert _held(console.site) == [("Dorotea", "tjansteperson"), ("Åsele", "ovrig")]
    assert "Ingen roll väntar på kontroll" in client.get("/kontakter/roller").text


def test_end_and_hand_over_a_role_and_save_areas(console):
    public_id = _eva(console.site)
    client = console.signed_in("granskare")
    token = csrf_for(client)
    base = f"/kontakter/person/{public_id}"
    bad = client.post(f"{base}/avsluta", data={"csrf": token, "position": "tjansteperson|2425",
                                               "on": "31/12/2026"})
    assert bad.status_code == 400 and "ÅÅÅÅ-MM-DD" in bad.text
    got = client.post(f"{base}/overlamna", data={
        "csrf": token, "position": "tjansteperson|2425", "to": "ny.person@dorotea.se",
        "name": "Ny Person", "on": "2026-12-01"})
    assert got.status_code == 303, got.text
    with console.site.transaction() as session:
        heir = session.scalar(select(Person).where(Person.email == "ny.person@dorotea.se"))
        assert [(p.role, p.started_on) for p in heir.positions] == [
            ("tjansteperson", date(2026, 12, 1))]
        ended = session.scalars(select(Event).where(Event.kind == "position_ended")).all()
        assert ended[-1].detail["source"] == f"console:{STAFF['granskare']}"
    no_areas = client.post(f"{base}/omraden", data={"csrf": token})
    assert no_areas.status_code == 400
    assert client.post(f"{base}/omraden", data={"csrf": token, "area": ["bostad", "kapital"]}
                       ).status_code == 303
    assert "Områdena är sparade." in client.get(f"{base}?meddelande=omraden").text
    with console.site.transaction() as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(
            Event.kind.like("console-%")).order_by(Event.id))]
    assert kinds[-2:] == ["console-handed-over", "console-areas-saved"]


def test_an_unknown_person_is_a_404(console):
    client = console.signed_in("admin")
    assert client.get("/kontakter/person/finns-inte").status_code == 404
    assert client.post("/kontakter/person/finns-inte/omraden", data={
        "csrf": csrf_for(client), "area": "bostad"}).status_code == 404
