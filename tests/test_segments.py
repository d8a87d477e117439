"""Segments against a real database: every field, the same-position rule, who is left out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from newsletter import i18n, segments
from newsletter.errors import NotFound, SegmentSyntaxError
from newsletter.models import Person, Registration, Webinar
from newsletter.municipalities import set_members
from newsletter.segments import count, recipients_query, resolve_segment, sample

from .helpers import add_person

TODAY = date(2026, 3, 10)
MEMBERS = ["Åsele", "Dorotea", "Strömsund", "Berg"]


@pytest.fixture
def people(site):
    """Member municipalities Åsele, Dorotea (Västerbotten), Strömsund and Berg (Jämtland)."""
    with site.transaction() as s:
        set_members(s, MEMBERS)
        add_person(s, "anna", ("Åsele", "kommunchef"))
        # Kommunchef of a non-member, and on the board from a member municipality.
        add_person(s, "bertil", ("Sundsvall", "kommunchef"), ("Dorotea", "styrelse"))
        add_person(s, "cecilia", ("Strömsund", "kso"), ("Strömsund", "politiker"),
                   areas=("bostad", "digitalisering"))
        add_person(s, "david", ("Härjedalen", "tjansteperson"), language="en", areas=("kapital",))
        add_person(s, "erik", ("Dorotea", "kommunchef"), status="unsubscribed")
        add_person(s, "frida", ("Berg", "kommunchef"), paused_until=TODAY)
        add_person(s, "gustav", ("Berg", "kso"), paused_until=TODAY - timedelta(days=1))
        add_person(s, "helena", (None, "styrelse"), areas=("omvarld",))
        add_person(s, "ivar", ("Åsele", "politiker"), status="bounced")
        add_person(s, "johanna", ("Åsele", "ovrig"), status="erased")
    return site


def who(site, expr: str) -> list[str]:
    with site.transaction() as s:
        found = [p.email.split("@")[0] for p in s.scalars(
            recipients_query(site.settings, expr, today=TODAY))]
        assert count(s, site.settings, expr, today=TODAY) == len(found)
    return found


@pytest.mark.parametrize("expr, expected", [
    ("member", ["anna", "bertil", "cecilia", "gustav"]),
    ("role:kommunchef", ["anna", "bertil"]),
    ("role:KSO", ["cecilia", "gustav"]),
    ("municipality:Åsele", ["anna"]),
    ('municipality:"Åsele kommun"', ["anna"]),
    ("municipality:2463", ["anna"]),
    ("kommunkod:2463", ["anna"]),
    ('county:"Jämtlands län"', ["cecilia", "david", "gustav"]),
    ('county:"jämtlands LÄN"', ["cecilia", "david", "gustav"]),
    ("county:23", ["cecilia", "david", "gustav"]),
    ("county:Jämtland", ["cecilia", "david", "gustav"]),
    ("member:yes", ["anna", "bertil", "cecilia", "gustav"]),
    ("member:no", ["bertil", "david", "helena"]),
    ("not member", ["david", "helena"]),
    ("language:en", ["david"]),
    ("language:SV", ["anna", "bertil", "cecilia", "gustav", "helena"]),
    ("area:bostad", ["anna", "bertil", "cecilia", "gustav"]),
    ("area:omvarld", ["anna", "bertil", "gustav", "helena"]),
    ("not role:styrelse", ["anna", "cecilia", "david", "gustav"]),
    ("member or area:omvarld", ["anna", "bertil", "cecilia", "gustav", "helena"]),
    ('area:digitalisering or county:"Jämtlands län"',
     ["anna", "bertil", "cecilia", "david", "gustav"]),
    ("(role:kso or role:politiker) and member", ["cecilia", "gustav"]),
    ('role:kso and county:"Jämtlands län" and area:digitalisering', ["cecilia", "gustav"]),
    ("role:kso and not area:bostad", []),
    ("medlemmar", ["anna", "bertil", "cecilia", "gustav"]),
])
def test_fields(people, expr, expected):
    assert who(people, expr) == expected


def test_position_conditions_joined_by_and_hold_for_one_position(people):
    # Bertil is kommunchef (of Sundsvall, not a member) and sits on the board for Dorotea (a
    # member): he has a kommunchef position and a member position, but no kommunchef position in
    # a member municipality.
    assert who(people, "role:kommunchef and member") == ["anna"]
    assert who(people, "kommunchefer") == ["anna"]
    assert who(people, "role:kommunchef and member:no") == ["bertil"]
    assert who(people, "role:styrelse and member") == ["bertil"]
    assert who(people, 'role:kommunchef and county:"Västerbottens län"') == ["anna"]
    # `not` is about the person: a kommunchef with no position in any member municipality.
    assert who(people, "role:kommunchef and not member") == []
    # Once an `or` mixes in a person condition, the parts are separate questions again.
    assert who(people, "role:kommunchef and (member or language:en)") == ["anna", "bertil"]


def test_each_person_once_however_many_positions_match(people):
    assert who(people, "municipality:Strömsund") == ["cecilia"]
    assert who(people, "role:kso or role:politiker or member") == [
        "anna", "bertil", "cecilia", "gustav"]


def test_only_active_persons_whose_pause_is_over(people):
    everyone = who(people, "role:kommunchef or role:kso or role:politiker or role:ovrig or "
                           "role:styrelse or role:tjansteperson")
    assert everyone == ["anna", "bertil", "cecilia", "david", "gustav", "helena"]
    with people.transaction() as s:
        later = count(s, people.settings, "municipality:Berg", today=TODAY + timedelta(days=1))
    assert later == 2  # frida's pause ends the day after paused_until


def test_registered_means_registered_not_waitlisted_or_cancelled(people):
    with people.transaction() as s:
        webinar = Webinar(slug="bredband-2026", uid="bredband-2026@example.se",
                          title="Bredband", starts_at=datetime(2026, 4, 1, 8, tzinfo=UTC),
                          duration_minutes=60, join_url="https://example.se/join")
        s.add(webinar)
        s.flush()
        by_email = {p.email: p for p in s.scalars(select(Person))}
        for local, status in [("anna", "registered"), ("cecilia", "waitlisted"),
                              ("david", "cancelled"), ("erik", "registered")]:
            s.add(Registration(webinar_id=webinar.id, person_id=by_email[f"{local}@example.se"].id,
                               status=status))
    assert who(people, "registered:bredband-2026") == ["anna"]
    assert who(people, "not registered:bredband-2026 and member") == [
        "bertil", "cecilia", "gustav"]
    with people.transaction() as s, pytest.raises(SegmentSyntaxError) as caught:
        count(s, people.settings, "registered:bredband-2025")
    assert "kolumn 12: okänt webbinarium ”bredband-2025” (webbinarier: bredband-2026)" in str(
        caught.value)


def test_sample_is_the_first_n_by_id_with_positions(people):
    with people.transaction() as s:
        found = sample(s, people.settings, "member", 2, today=TODAY)
        assert [p.email for p in found] == ["anna@example.se", "bertil@example.se"]
        assert sorted((pos.municipality.name, pos.role) for pos in found[1].positions) == [
            ("Dorotea", "styrelse"), ("Sundsvall", "kommunchef")]


@pytest.mark.parametrize("expr, column, message", [
    ("role:rektor", 6, "okänd roll ”rektor” (roller: kommunchef, kso, politiker, "
                       "tjansteperson, styrelse, ovrig)"),
    ("role:kommunchf", 6, "menade du ”kommunchef”?"),
    ("member and area:skola", 17, "okänt område ”skola” (områden: medlemmar, bostad, kapital, "
                                  "omvarld, digitalisering, infrastruktur, arbetsmarknad)"),
    ("municipality:Åsle", 14, "okänd kommun ”Åsle” (menade du ”Åsele”?)"),
    ("kommunkod:24", 11, "kommunkoden ”24” är inte fyra siffror"),
    ("kommunkod:9999", 11, "okänd kommunkod ”9999”"),
    ("county:Jämtlandslän", 8, "okänt län ”Jämtlandslän” (menade du ”Jämtlands län”?"),
    ("member:kanske", 8, "member tar yes eller no (ja eller nej), inte ”kanske”"),
    ("language:svenska", 10, "språket ”svenska” är ingen språkkod"),
    ('registered:""', 12, "registered behöver webbinariets kortnamn"),
])
def test_unknown_values_say_what_is_valid(people, expr, column, message):
    with people.transaction() as s, pytest.raises(SegmentSyntaxError) as caught:
        count(s, people.settings, expr)
    assert str(caught.value).startswith(f"segment ”{expr}”: kolumn {column}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("expr, message", [
    ("role:kommunchf", "unknown role “kommunchf” (did you mean “kommunchef”? roles: "),
    ("county:Xyz", "unknown county “Xyz” (a county name such as"),
    ("registered:nope", "unknown webinar “nope” (there are no webinars yet)"),
])
def test_an_english_site_is_told_in_english(people, expr, message):
    i18n.activate("en")
    with people.transaction() as s, pytest.raises(SegmentSyntaxError) as caught:
        count(s, people.settings, expr)
    assert str(caught.value).startswith(f"segment “{expr}”: column ")
    assert message in str(caught.value)


def test_resolve_segment_takes_a_name_or_an_expression(site):
    settings = site.settings
    assert resolve_segment(settings, "kommunchefer") == "role:kommunchef and member"
    assert resolve_segment(settings, " Medlemmar ") == "member"
    assert resolve_segment(settings, "role:kso") == "role:kso"
    assert resolve_segment(settings, "member") == "member"
    with pytest.raises(NotFound, match='okänt segment "kommunchefr" '
                                       r'\(menade du "kommunchefer"\?'):
        resolve_segment(settings, "kommunchefr")
    with pytest.raises(NotFound, match="menade du role:kommunchef"):
        resolve_segment(settings, "kommunchef")


def test_values_are_bound_parameters_never_sql_text(people):
    hostile = "x' OR 1=1 --"
    with people.transaction() as s, pytest.raises(SegmentSyntaxError, match="okänd roll"):
        count(s, people.settings, f'role:"{hostile}"')
    query = recipients_query(people.settings, f'registered:"{hostile}" or language:sv')
    compiled = query.compile()
    assert hostile not in str(compiled)
    assert hostile in compiled.params.values()
    with people.transaction() as s:
        assert s.scalars(query).all() == s.scalars(recipients_query(
            people.settings, "language:sv")).all()
        with pytest.raises(SegmentSyntaxError, match="okänt webbinarium"):
            count(s, people.settings, f'registered:"{hostile}"')


def test_the_query_is_portable_sql(people):
    query = recipients_query(people.settings, 'role:kommunchef and member or (area:bostad and '
                                              'county:"Jämtlands län") or not registered:x')
    sql = str(query.compile(dialect=postgresql.dialect()))
    outer = sql.split("FROM persons", 1)[1].split("EXISTS", 1)[0]
    assert sql.count("EXISTS") == 5 and "JOIN" not in outer and "DISTINCT" not in sql


@pytest.mark.parametrize("position", [True, False])
def test_a_field_the_compiler_does_not_know_is_an_error_not_another_field(
        people, monkeypatch, position):
    # A field added to the language but not to the compiler once fell through to `member`
    # (a position field) or `registered` (a person field).
    monkeypatch.setattr(segments, "FIELDS", (*segments.FIELDS, "since"))
    if position:
        monkeypatch.setattr(segments, "POSITION_FIELDS", segments.POSITION_FIELDS | {"since"})
    with people.transaction() as s, pytest.raises(SegmentSyntaxError, match='[”"“]since[”"“]'):
        count(s, people.settings, "role:kommunchef and since:2026")
