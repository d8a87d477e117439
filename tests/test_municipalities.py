"""Municipality lookup by name, long form or code, and membership."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.errors import NotFound
from newsletter.models import Municipality
from newsletter.municipalities import Resolver, shipped


def test_ships_all_290():
    rows = shipped()
    assert len(rows) == 290
    assert len({r.kommunkod for r in rows}) == 290


@pytest.mark.parametrize("text,code", [
    ("Åsele", "2463"), ("Åsele kommun", "2463"), ("2463", "2463"), ("  åsele  ", "2463"),
    ("Malmö stad", "1280"), ("Region Gotland", "0980"), ("Östersunds kommun", "2380"),
    ("Falu kommun", "2080"), ("Härjedalen", "2361"), ("114", "0114"), ("Upplands Väsby", "0114"),
])
def test_resolves_what_people_write(site, text, code):
    with site.transaction() as session:
        assert Resolver.from_session(session).resolve(text).kommunkod == code


def test_unknown_name_suggests_the_closest(site):
    with site.transaction() as session, pytest.raises(NotFound, match="menade du ”Åsele”"):
        Resolver.from_session(session).resolve("Åsle")


def test_members_by_name_and_file(site, tmp_path):
    site.cli("municipalities", "members", "Åsele", "Dorotea kommun", "--since", "2020-01-01")
    listfile = tmp_path / "medlemmar.txt"
    listfile.write_text("# demo\nStrömsund\n2462\n", encoding="utf-8")
    site.cli("municipalities", "members", "--file", str(listfile))
    out = site.cli("municipalities", "list", "--members").stdout
    assert [line.split()[0] for line in out.splitlines()] == ["2313", "2425", "2462", "2463"]
    assert "2020-01-01" in out


def test_members_dry_run_changes_nothing(site):
    site.cli("municipalities", "members", "Åsele", "--dry-run")
    with site.transaction() as session:
        assert not session.scalar(select(Municipality.member).where(Municipality.name == "Åsele"))


def test_members_file_with_a_bad_line_changes_nothing(site, tmp_path):
    listfile = tmp_path / "medlemmar.txt"
    listfile.write_text("Åsele\nNowhere-by-the-sea\n", encoding="utf-8")
    result = site.cli("municipalities", "members", "--file", str(listfile), ok=False)
    assert result.exit_code == 1
    assert f"{listfile}:2" in result.stderr
    with site.transaction() as session:
        assert not session.scalar(select(Municipality.member).where(Municipality.name == "Åsele"))
