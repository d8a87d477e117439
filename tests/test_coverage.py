"""Vacancies and whom a role mailing misses (demo data, @example.se)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from newsletter.coverage import NONE, SEVERAL, UNREACHABLE, unreached, vacancies
from newsletter.models import Position

MEMBERS = ("Åsele", "Dorotea", "Strömsund", "Berg", "Bräcke")


@pytest.fixture
def register(site):
    """Åsele: one kommunchef and one KSO. Dorotea: two kommunchefer. Strömsund: a kommunchef
    who unsubscribed. Berg: a KSO only. Bräcke: nobody. Sundsvall (no member): a kommunchef."""
    site.cli("municipalities", "members", *MEMBERS)
    for email, muni, role in (
            ("anna@asele.example.se", "Åsele", "kommunchef"),
            ("per@asele.example.se", "Åsele", "kso"),
            ("mia@dorotea.example.se", "Dorotea", "kommunchef"),
            ("nils@dorotea.example.se", "Dorotea", "kommunchef"),
            ("ola@dorotea.example.se", "Dorotea", "kso"),
            ("stina@stromsund.example.se", "Strömsund", "kommunchef"),
            ("sara@stromsund.example.se", "Strömsund", "kso"),
            ("bo@berg.example.se", "Berg", "kso"),
            ("bengt@sundsvall.example.se", "Sundsvall", "kommunchef")):
        site.cli("contacts", "add", email, "--municipality", muni, "--role", role)
    site.cli("contacts", "unsubscribe", "stina@stromsund.example.se")
    with site.transaction() as session:
        for position in session.scalars(select(Position)):
            position.started_on = date(2022, 1, 1)
    return site


def test_vacancies_names_none_several_and_unmailable_holders(register):
    with register.transaction() as session:
        found = [(v.municipality, v.role, v.problem, [h.email for h in v.holders])
                 for v in vacancies(session, register.settings)]
    assert found == [
        ("Berg", "kommunchef", NONE, []),
        ("Bräcke", "kommunchef", NONE, []), ("Bräcke", "kso", NONE, []),
        ("Dorotea", "kommunchef", SEVERAL, ["mia@dorotea.example.se", "nils@dorotea.example.se"]),
        ("Strömsund", "kommunchef", UNREACHABLE, ["stina@stromsund.example.se"])]
    out = register.cli("municipalities", "vacancies", "--role", "KSO")
    assert out.stdout.splitlines() == ["2305  Bräcke               kso          ingen innehavare"]
    assert "1 hittades" in out.stderr
    out = register.cli("municipalities", "vacancies").stdout
    assert "2425  Dorotea              kommunchef   flera innehavare: mia@dorotea.example.se, " \
           "nils@dorotea.example.se" in out
    assert "Strömsund            kommunchef   innehavaren kan inte nås med e-post: " \
           "stina@stromsund.example.se (unsubscribed)" in out
    bad = register.cli("municipalities", "vacancies", "--role", "chef", ok=False)
    assert bad.exit_code != 0 and "okänd roll ”chef”" in bad.stderr


def test_an_ended_position_leaves_a_vacancy(register):
    register.cli("contacts", "end-role", "anna@asele.example.se", "--role", "kommunchef")
    with register.transaction() as session:
        found = {(v.municipality, v.role) for v in vacancies(session, register.settings)}
        before = {(v.municipality, v.role) for v in vacancies(
            session, register.settings, today=date.today() - timedelta(days=1))}
    assert ("Åsele", "kommunchef") in found and ("Åsele", "kommunchef") not in before


def _unreached(site, expr: str) -> list[str]:
    with site.transaction() as session:
        return [m.name for m in unreached(session, site.settings, expr)]


@pytest.mark.parametrize("expr, expected", [
    ("kommunchefer", ["Berg", "Bräcke", "Strömsund"]),
    ("role:kommunchef", ["Berg", "Bräcke", "Strömsund"]),
    ("role:kso and member", ["Bräcke"]),
    ("politiker", ["Bräcke"]),  # (role:kso or role:politiker) and member
    ('role:kommunchef and county:"Jämtlands län"', ["Berg", "Bräcke", "Strömsund"]),
    ("role:kommunchef and (kommun:Åsele or kommun:Berg)", ["Berg"]),
    ("role:kommunchef and not kommun:Åsele", ["Berg", "Bräcke", "Strömsund"]),
    ("role:kommunchef and not county:Jämtland", []),  # left: Åsele, Dorotea, both reached
    ("not role:kommunchef", []),  # asks for no role
    ("medlemmar", []),  # no role asked for: nothing to say
    ("area:bostad", []),
])
def test_unreached_member_municipalities(register, expr, expected):
    assert _unreached(register, expr) == expected


def test_a_hand_over_after_the_mailing_day_is_judged_on_that_day(register):
    later = date.today() + timedelta(days=10)
    register.cli("contacts", "hand-over", "--role", "kommunchef", "--municipality", "Berg",
                 "--to", "ny@berg.example.se", "--on", later.isoformat())
    with register.transaction() as session:
        now = [m.name for m in unreached(session, register.settings, "kommunchefer")]
        then = [m.name for m in unreached(session, register.settings, "kommunchefer",
                                          today=later)]
    assert "Berg" in now and "Berg" not in then


def test_dry_runs_say_which_members_are_not_reached(register):
    out = register.cli("send", "issue", "2026-12", "--to", "kommunchefer", "--dry-run").stdout
    assert ("Nås inte: 3 medlemskommuner har ingen mottagare i de roller som segmentet gäller: "
            "Berg, Bräcke, Strömsund") in out
    body = register.root / "enkat.md"
    body.write_text("Svara gärna på enkäten.\n", encoding="utf-8")
    out = register.cli("mail", "--to", "role:kso and member", "--subject", "Enkät", "--body",
                       str(body), "--dry-run").stdout
    assert "Nås inte: 1 medlemskommun har" in out and ": Bräcke" in out
    out = register.cli("send", "issue", "2026-12", "--to", "medlemmar", "--dry-run").stdout
    assert "Nås inte" not in out
