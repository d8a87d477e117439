"""`newsletter segments list|show|count` through the real CLI."""

from __future__ import annotations

import pytest

from newsletter.municipalities import set_members

from .helpers import add_person


@pytest.fixture
def staff(site):
    with site.transaction() as s:
        set_members(s, ["Åsele", "Strömsund"])
        add_person(s, "anna", ("Åsele", "kommunchef"))
        add_person(s, "bertil", ("Sundsvall", "kommunchef"), ("Strömsund", "styrelse"))
        add_person(s, "cecilia", ("Strömsund", "kso"), ("Strömsund", "politiker"))
        add_person(s, "helena", (None, "styrelse"))
    return site


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_list_shows_each_named_segment_with_expression_and_count(staff):
    lines = staff.cli("segments", "list").stdout.splitlines()
    assert lines == [
        "medlemmar                  3  member",
        "kommunchefer               1  role:kommunchef and member",
        "politiker                  1  (role:kso or role:politiker) and member",
        "styrelsen                  2  role:styrelse",
    ]


def test_show_prints_expression_count_and_sample(staff):
    out = staff.cli("segments", "show", "kommunchefer").stdout
    assert out.splitlines()[:2] == ["kommunchefer = role:kommunchef and member", "1 mottagare"]
    assert "anna@example.se" in out and "Åsele: kommunchef" in out
    assert "bertil@example.se" not in out


def test_count_prints_count_and_a_sample_of_five_with_municipality_and_role(staff):
    out = staff.cli("segments", "count", 'county:"Jämtlands län" or role:styrelse').stdout
    assert out.splitlines()[0] == "3 mottagare"
    bertil = next(line for line in out.splitlines() if "bertil@example.se" in line)
    assert "Bertil" in bertil and "Sundsvall: kommunchef; Strömsund: styrelse" in bertil
    assert "förbundet: styrelse" in out


def test_count_takes_an_unquoted_expression_in_several_words(staff):
    assert staff.cli("segments", "count", "role:kommunchef", "and", "member").stdout.startswith(
        "1 mottagare")


def test_count_of_nobody_says_so(staff):
    assert staff.cli("segments", "count", "language:en").stdout == "0 mottagare\n"


def test_count_takes_a_named_segment(staff):
    assert staff.cli("segments", "count", "medlemmar").stdout.startswith("3 mottagare")


def test_syntax_error_is_one_line_with_the_column_and_exit_1(staff):
    result = staff.cli("segments", "count", "role:kommunchef and", ok=False)
    assert result.exit_code == 1
    assert one_line_error(result) == (
        'Fel: segment ”role:kommunchef and”: kolumn 20: här ska det stå ett villkor '
        '(fält:värde, member, not, "(") efter ”and”')


def test_unknown_value_is_one_line(staff):
    result = staff.cli("segments", "count", "county:Lappland", ok=False)
    assert result.exit_code == 1
    assert "kolumn 8: okänt län ”Lappland”" in one_line_error(result)


def test_hostile_value_is_only_an_unknown_role(staff):
    result = staff.cli("segments", "count", "role:\"x' OR 1=1 --\"", ok=False)
    assert "okänd roll ”x' OR 1=1 --” (roller: kommunchef" in one_line_error(result)


def test_show_of_an_unknown_name_exits_1_and_lists_the_names(staff):
    result = staff.cli("segments", "show", "kommuncheferna", ok=False)
    assert result.exit_code == 1
    assert 'menade du "kommunchefer"?' in one_line_error(result)
    assert "medlemmar, kommunchefer, politiker, styrelsen" in result.stderr


def test_a_broken_named_segment_is_marked_and_fails_the_list(staff):
    config = staff.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'styrelsen = "role:styrelse"', 'styrelsen = "role:styrelsen"'), encoding="utf-8")
    result = staff.cli("segments", "list", ok=False)
    assert result.exit_code == 78  # a configuration error
    assert "styrelsen                FEL  role:styrelsen" in result.stdout
    assert "medlemmar                  3  member" in result.stdout
    assert one_line_error(result).startswith(
        "Fel: newsletter.toml [segments] styrelsen: segment ”role:styrelsen”: kolumn 6: "
        "okänd roll ”styrelsen”")


def test_help_explains_the_language_with_an_example(staff):
    out = staff.cli("segments", "count", "--help").stdout
    assert "Exempel:" in out and "newsletter segments count" in out


def test_count_shows_at_most_five(staff):
    with staff.transaction() as s:
        for i in range(4):
            add_person(s, f"extra{i}", ("Åsele", "tjansteperson"))
    out = staff.cli("segments", "count", "municipality:Åsele").stdout.splitlines()
    assert out[:2] == ["5 mottagare", "Exempel (5 av 5):"]
    assert staff.cli("segments", "count", "member").stdout.splitlines()[:2] == [
        "7 mottagare", "Exempel (5 av 7):"]
    assert len(staff.cli("segments", "count", "member").stdout.splitlines()) == 7
