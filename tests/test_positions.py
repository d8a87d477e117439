"""Positions over time: end-role, hand-over, change-email, the history, segments by date, and the
migration of existing positions (demo data, @example.se)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from newsletter import db
from newsletter.contacts import suppress
from newsletter.models import Event, Municipality, Person, Position
from newsletter.segments import count, recipients_query

TODAY = date.today()
ANNA, EVA = "anna.berg@asele.example.se", "eva.lind@asele.example.se"


@pytest.fixture
def asele(site):
    """Åsele and Dorotea are members; Anna is Åsele's kommunchef since 2020."""
    site.cli("municipalities", "members", "Åsele", "Dorotea")
    site.cli("contacts", "add", ANNA, "--name", "Anna Berg", "--municipality", "Åsele",
             "--role", "kommunchef")
    with site.transaction() as session:
        session.scalar(select(Position)).started_on = date(2020, 1, 1)
    return site


def _count(site, expr: str, day: date | None = None) -> int:
    with site.transaction() as session:
        return count(session, site.settings, expr, today=day)


def _positions(site, email: str) -> list[tuple[str | None, str, date, date | None]]:
    with site.transaction() as session:
        person = session.scalar(select(Person).where(Person.email == email))
        return sorted(((p.municipality.name if p.municipality else None, p.role, p.started_on,
                        p.ended_on) for p in person.positions), key=str)


def _events(site, email: str) -> list[tuple[str, dict]]:
    with site.transaction() as session:
        pid = session.scalar(select(Person.id).where(Person.email == email))
        return [(e.kind, e.detail) for e in session.scalars(
            select(Event).where(Event.person_id == pid).order_by(Event.id))]


def test_a_hand_over_moves_the_role_and_keeps_the_old_holder_a_subscriber(asele):
    assert _count(asele, "role:kommunchef and kommun:Åsele") == 1
    out = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality", "Åsele",
                    "--to", EVA, "--name", "Eva Lind").stdout
    assert f"Slutar {TODAY}: kommunchef, Åsele: {ANNA} (Anna Berg)" in out
    assert f"Börjar {TODAY}: kommunchef, Åsele: {EVA} (Eva Lind)" in out
    assert f"Börjar {TODAY}: ovrig, Åsele: {ANNA}" in out

    # The case: the predecessor no longer counts, and still gets the newsletter.
    with asele.transaction() as session:
        chefs = [p.email for p in session.scalars(recipients_query(
            asele.settings, "role:kommunchef and kommun:Åsele"))]
        members = {p.email for p in session.scalars(recipients_query(asele.settings,
                                                                     "medlemmar"))}
    assert chefs == [EVA]
    assert members == {ANNA, EVA}
    assert _positions(asele, ANNA) == [("Åsele", "kommunchef", date(2020, 1, 1), TODAY),
                                       ("Åsele", "ovrig", TODAY, None)]
    show = asele.cli("contacts", "show", ANNA).stdout
    assert f"Tidigare:    Kommunchef, Åsele (Västerbottens län), 2020-01-01 – {TODAY}" in show
    assert f"Roll:        Övrig, Åsele (Västerbottens län), sedan {TODAY}" in show
    listed = asele.cli("contacts", "list", "--role", "kommunchef").stdout
    assert EVA in listed and ANNA not in listed
    kinds = [k for k, _d in _events(asele, ANNA)]
    assert kinds[-2:] == ["position_ended", "position_started"]
    assert _events(asele, ANNA)[-2][1] == {"role": "kommunchef", "municipality": "2463",
                                           "on": TODAY.isoformat(), "source": "hand-over"}


def test_a_hand_over_dated_later_counts_from_that_day(asele):
    later = TODAY + timedelta(days=30)
    asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality", "2463",
              "--to", EVA, "--on", later.isoformat())
    # Today Anna still holds it; a mailing scheduled for that day reaches Eva.
    with asele.transaction() as session:
        now = [p.email for p in session.scalars(recipients_query(
            asele.settings, "kommunchefer"))]
        then = [p.email for p in session.scalars(recipients_query(
            asele.settings, "kommunchefer", today=later))]
    assert (now, then) == ([ANNA], [EVA])
    assert _count(asele, "role:kommunchef", later - timedelta(days=1)) == 1
    assert "Kommande:    Kommunchef, Åsele" in asele.cli("contacts", "show", EVA).stdout


def test_a_position_starting_later_is_not_added_twice(asele, tmp_path):
    later = TODAY + timedelta(days=30)
    asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality", "Åsele",
              "--to", EVA, "--on", later.isoformat())
    assert "Oförändrad" in asele.cli("contacts", "add", EVA, "--municipality", "Åsele",
                                     "--role", "kommunchef").stdout
    csv = tmp_path / "eva.csv"
    csv.write_text(f"email,name,municipality,role\n{EVA},Eva Lind,Åsele,kommunchef\n",
                   encoding="utf-8")
    assert "0 nya, 1 uppdaterade" in asele.cli("contacts", "import", str(csv)).stdout  # name
    assert _positions(asele, EVA) == [("Åsele", "kommunchef", later, None)]
    early = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality",
                      "Åsele", "--to", EVA, ok=False)
    assert early.exit_code != 0 and f"har redan rollen kommunchef där från {later}" in \
        early.stderr
    assert _positions(asele, ANNA)[0][3] == later  # unchanged by the refused hand-over


def test_a_hand_over_with_several_holders_names_the_one_who_leaves(asele):
    other = "olle@asele.example.se"
    asele.cli("contacts", "add", other, "--municipality", "Åsele", "--role", "kommunchef")
    result = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality",
                       "Åsele", "--to", EVA, ok=False)
    assert result.exit_code != 0 and "--from" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality", "Åsele",
              "--to", EVA, "--from", other)
    with asele.transaction() as session:
        assert sorted(p.email for p in session.scalars(recipients_query(
            asele.settings, "kommunchefer"))) == [ANNA, EVA]

    again = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality",
                      "Åsele", "--to", EVA, "--from", ANNA, ok=False)
    assert "har redan rollen" in again.stderr
    nobody = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality",
                       "Åsele", "--to", "x@example.se", "--from", other, ok=False)
    assert nobody.exit_code != 0 and "har inte rollen" in nobody.stderr


def test_a_hand_over_to_a_suppressed_address_changes_nothing(asele):
    asele.cli("contacts", "unsubscribe", EVA)
    result = asele.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality",
                       "Åsele", "--to", EVA, ok=False)
    assert result.exit_code != 0 and "avregistrerad" in result.stderr
    assert _positions(asele, ANNA) == [("Åsele", "kommunchef", date(2020, 1, 1), None)]


def test_end_role_ends_one_position_and_keeps_the_rest(asele):
    asele.cli("contacts", "add", ANNA, "--role", "styrelse")
    out = asele.cli("contacts", "end-role", ANNA.upper(), "--role", "Kommunchef",
                    "--on", "2026-06-30").stdout
    assert "Slutar 2026-06-30: kommunchef, Åsele" in out
    # On the board, but no longer of Åsele: she stays in `medlemmar` as ovrig there.
    assert "Börjar 2026-06-30: ovrig, Åsele" in out
    assert _positions(asele, ANNA) == [
        ("Åsele", "kommunchef", date(2020, 1, 1), date(2026, 6, 30)),
        ("Åsele", "ovrig", date(2026, 6, 30), None),
        (None, "styrelse", TODAY, None)]
    assert _count(asele, "role:kommunchef", date(2026, 6, 29)) == 1
    assert _count(asele, "role:kommunchef", date(2026, 6, 30)) == 0

    missing = asele.cli("contacts", "end-role", ANNA, "--role", "kommunchef", ok=False)
    assert missing.exit_code == 1
    assert "har inget uppdrag som kommunchef" in missing.stderr and "Styrelsen" in missing.stderr
    before = asele.cli("contacts", "end-role", ANNA, "--role", "styrelse", "--on",
                       (TODAY - timedelta(days=1)).isoformat(), ok=False)
    assert before.exit_code != 0 and "har inget uppdrag som styrelse" in before.stderr


def test_end_role_before_the_start_and_in_two_places_are_refused(asele):
    asele.cli("contacts", "add", ANNA, "--municipality", "Dorotea", "--role", "kommunchef")
    two = asele.cli("contacts", "end-role", ANNA, "--role", "kommunchef", ok=False)
    assert "flera ställen" in two.stderr and "--municipality" in two.stderr
    early = asele.cli("contacts", "end-role", ANNA, "--role", "kommunchef", "--municipality",
                      "Åsele", "--on", "2019-12-31", ok=False)
    assert early.exit_code != 0 and "har inget uppdrag" in early.stderr
    asele.cli("contacts", "end-role", ANNA, "--role", "kommunchef", "--municipality", "Dorotea")
    assert [p for p in _positions(asele, ANNA) if p[0] == "Dorotea"] == [
        ("Dorotea", "kommunchef", TODAY, TODAY), ("Dorotea", "ovrig", TODAY, None)]
    # Ending the ovrig leaves nothing in Dorotea, and keeps nobody as ovrig of ovrig.
    out = asele.cli("contacts", "end-role", ANNA, "--role", "ovrig").stdout
    assert out.count("\n") == 1 and "Slutar" in out
    unknown = asele.cli("contacts", "end-role", "ghost@example.se", "--role", "kso", ok=False)
    assert unknown.exit_code == 1 and "ingen kontakt med adressen ghost@" in unknown.stderr


def test_a_role_held_again_later_is_a_new_position(asele):
    asele.cli("contacts", "end-role", ANNA, "--role", "kommunchef", "--on", "2024-01-01")
    assert _count(asele, "kommunchefer") == 0
    asele.cli("contacts", "add", ANNA, "--municipality", "Åsele", "--role", "kommunchef")
    assert _count(asele, "kommunchefer") == 1
    assert _positions(asele, ANNA) == [
        ("Åsele", "kommunchef", date(2020, 1, 1), date(2024, 1, 1)),
        ("Åsele", "kommunchef", TODAY, None),
        ("Åsele", "ovrig", date(2024, 1, 1), None)]
    # Adding it again while held changes nothing.
    assert "Oförändrad" in asele.cli("contacts", "add", ANNA, "--municipality", "Åsele",
                                     "--role", "kommunchef").stdout


def test_one_open_position_per_person_municipality_and_role(asele):
    with asele.transaction() as session:
        anna = session.scalar(select(Person).where(Person.email == ANNA))
        anna_id = anna.id
        muni = session.scalar(select(Municipality.id).where(Municipality.kommunkod == "2463"))
    for municipality in (muni, None):
        with asele.transaction() as session:
            session.add(Position(person_id=anna_id, municipality_id=municipality, role="kso",
                                 started_on=date(2021, 1, 1)))
        with pytest.raises(IntegrityError), asele.transaction() as session:
            session.add(Position(person_id=anna_id, municipality_id=municipality, role="kso",
                                 started_on=date(2022, 1, 1)))
        with asele.transaction() as session:  # beside an ended one it is fine
            session.add(Position(person_id=anna_id, municipality_id=municipality, role="kso",
                                 started_on=date(2019, 1, 1), ended_on=date(2020, 1, 1)))


def test_ended_roles_unlock_nothing(asele):
    with asele.transaction() as session:
        anna = session.scalar(select(Person).where(Person.email == ANNA))
        anna.positions[0].ended_on = TODAY
        session.flush()
        assert anna.roles() == frozenset()
        assert anna.roles(TODAY - timedelta(days=1)) == {"kommunchef"}


def test_change_email_keeps_the_person(asele):
    with asele.transaction() as session:
        before = session.scalar(select(Person).where(Person.email == ANNA))
        public_id, person_id = before.public_id, before.id
    out = asele.cli("contacts", "change-email", ANNA, "Anna.Berg@Kommun.Example.se").stdout
    assert f"{ANNA} är nu anna.berg@kommun.example.se (active)" in out
    with asele.transaction() as session:
        after = session.scalar(select(Person).where(Person.email == "anna.berg@kommun.example.se"))
        assert (after.id, after.public_id) == (person_id, public_id)
        assert session.scalar(select(Person).where(Person.email == ANNA)) is None
    assert _count(asele, "role:kommunchef and kommun:Åsele") == 1
    assert _events(asele, "anna.berg@kommun.example.se")[-1] == ("email_changed",
                                                                   {"source": "cli"})
    assert asele.cli("contacts", "show", ANNA, ok=False).exit_code == 1


def test_change_email_is_refused_when_the_new_address_is_taken_or_suppressed(asele):
    asele.cli("contacts", "add", EVA)
    taken = asele.cli("contacts", "change-email", ANNA, EVA, ok=False)
    assert taken.exit_code != 0 and "redan en annan kontakts adress" in taken.stderr
    asele.cli("contacts", "forget", "gone@example.se", "--yes")
    erased = asele.cli("contacts", "change-email", ANNA, "gone@example.se", ok=False)
    assert erased.exit_code == 1 and "spärrlistan (erased)" in erased.stderr
    assert len(erased.stderr.strip().splitlines()) == 1
    unknown = asele.cli("contacts", "change-email", "ghost@example.se", "x@example.se", ok=False)
    assert unknown.exit_code == 1
    bad = asele.cli("contacts", "change-email", ANNA, "not an address", ok=False)
    assert bad.exit_code != 0 and "new: ogiltig e-postadress" in bad.stderr
    assert _positions(asele, ANNA)[0][0] == "Åsele"


def test_change_email_of_a_bounced_or_unsubscribed_contact(asele):
    with asele.transaction() as session:  # as bounces.py leaves a hard bounce
        anna = session.scalar(select(Person).where(Person.email == ANNA))
        anna.status, anna.soft_bounces = "bounced", 3
        suppress(session, asele.settings.secret_key, ANNA, "bounced")
    asele.cli("contacts", "change-email", ANNA, "anna@ny.example.se")
    assert _count(asele, "kommunchefer") == 1  # active again at the new address
    # The old address stays suppressed; an unsubscribe follows the person.
    assert asele.cli("contacts", "add", ANNA, ok=False).exit_code == 1
    asele.cli("contacts", "unsubscribe", "anna@ny.example.se")
    asele.cli("contacts", "change-email", "anna@ny.example.se", "anna@tredje.example.se")
    assert _count(asele, "kommunchefer") == 0
    assert asele.cli("contacts", "add", "anna@tredje.example.se", ok=False).exit_code == 1


def test_the_migration_starts_existing_positions_on_their_persons_day(tmp_path, database_url):
    engine = db.make_engine(database_url or f"sqlite:///{tmp_path / 'old.db'}")
    cfg = db._alembic_config(engine)
    command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO municipalities (id, kommunkod, name, county_code, county, member) "
            "VALUES (1, '2463', 'Åsele', '24', 'Västerbottens län', TRUE)")
        for pid, created in ((1, "2021-05-04 23:30:00"), (2, "2024-02-29 08:00:00")):
            conn.exec_driver_sql(
                "INSERT INTO persons (id, public_id, email, name, status, language, "
                "lawful_basis, basis_source, basis_at, soft_bounces, created_at, updated_at) "
                f"VALUES ({pid}, 'p{pid}', 'p{pid}@example.se', '', 'active', 'sv', 'x', '', "
                f"'{created}', 0, '{created}', '{created}')")
        conn.exec_driver_sql("INSERT INTO positions (person_id, municipality_id, role) VALUES "
                             "(1, 1, 'kommunchef'), (1, NULL, 'styrelse'), (2, 1, 'kso')")
    db.migrate(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT person_id, role, started_on, ended_on FROM positions ORDER BY id").all()
    assert [(p, r, str(s), e) for p, r, s, e in rows] == [
        (1, "kommunchef", "2021-05-04", None), (1, "styrelse", "2021-05-04", None),
        (2, "kso", "2024-02-29", None)]
    with db.transaction(db.session_factory(engine)) as session:
        person = session.get(Person, 1)
        assert person.roles(date(2021, 5, 4)) == {"kommunchef", "styrelse"}
        assert person.roles(date(2021, 5, 3)) == frozenset()
        assert person.created_at == datetime(2021, 5, 4, 23, 30, tzinfo=UTC)
    engine.dispose()
