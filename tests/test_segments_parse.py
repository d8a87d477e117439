"""The segment language's parser: precedence, quoting, case, and errors that say where."""

from __future__ import annotations

import pytest

from newsletter import i18n
from newsletter.errors import SegmentSyntaxError
from newsletter.segments import And, Cond, Not, Or, parse


@pytest.mark.parametrize("expr, tree", [
    ("member", "member"),
    ("role:kommunchef and member", "(role:kommunchef and member)"),
    ("role:kso or role:politiker and member", "(role:kso or (role:politiker and member))"),
    ("(role:kso or role:politiker) and member", "((role:kso or role:politiker) and member)"),
    ("not role:styrelse and member", "(not role:styrelse and member)"),
    ("not (role:styrelse and member)", "not (role:styrelse and member)"),
    ("not not member", "not not member"),
    ("role:1 or area:2 or language:3", "(role:1 or area:2 or language:3)"),
    ("role:kso and (member and area:bostad)", "(role:kso and member and area:bostad)"),
    ("((member))", "member"),
])
def test_precedence_or_below_and_below_not(expr, tree):
    assert str(parse(expr)) == tree


def test_quoted_values_keep_spaces_and_swedish_letters():
    node = parse('county:"Jämtlands län" or municipality:"Upplands Väsby"')
    assert node == Or((Cond("county", "Jämtlands län", 1, 8),
                       Cond("municipality", "Upplands Väsby", 27, 40)))


def test_bare_words_take_swedish_letters_digits_and_punctuation():
    node = parse("municipality:Åsele and kommunkod:2463 and registered:ai-i-kommunen_2026.1")
    assert [c.value for c in node.operands] == ["Åsele", "2463", "ai-i-kommunen_2026.1"]


def test_keywords_and_fields_are_case_insensitive():
    assert parse("ROLE:kso AND NOT Member Or MEMBER:nej") == Or((
        And((Cond("role", "kso", 1, 6), Not(Cond("member", None, 18, 18)))),
        Cond("member", "nej", 28, 35)))


def test_swedish_field_names_are_aliases():
    assert str(parse('roll:kso and kommun:Åsele and län:23 and medlem and område:bostad '
                     'and språk:sv and anmäld:x')) == (
        "(role:kso and municipality:Åsele and county:23 and member and area:bostad "
        "and language:sv and registered:x)")


def test_a_keyword_can_be_a_quoted_or_bare_value():
    assert parse('role:"and"') == Cond("role", "and", 1, 6)
    assert parse("role:or") == Cond("role", "or", 1, 6)


# The parser speaks the site's language (Swedish by default): one whole sentence per case.
@pytest.mark.parametrize("expr, column, message", [
    ("role:kommunchef and", 20,
     'här ska det stå ett villkor (fält:värde, member, not, "(") efter ”and”'),
    ("", 1, "tomt uttryck"),
    ("   ", 1, "tomt uttryck"),
    ("not", 4, 'här ska det stå ett villkor (fält:värde, member, not, "(") efter ”not”'),
    ("and member", 1, 'här ska det stå ett villkor (fält:värde, member, not, "("), men här står '
                      "”and”"),
    ("member or or member", 11, "men här står ”or”"),
    (")", 1, "men här står ”)”"),
    ("(role:kso", 10, 'här ska det stå ")" efter ”kso” för att stänga "(" i kolumn 1'),
    ("(role:kso member)", 11,
     'här ska det stå ")" för att stänga "(" i kolumn 1, men här står ”member”'),
    ("member)", 7, 'här ska det stå "and", "or" eller uttrycket sluta, men här står ”)”'),
    ("role:kso member", 10, 'men här står ”member” (foga ihop villkor med "and" eller "or")'),
    ("municipality:Upplands Väsby", 23,
     'ett värde med mellanslag behöver citattecken: municipality:"Upplands Väsby"'),
    ("role:", 6, "här ska det stå ett värde efter ”role:”"),
    ("role:)", 6, "här ska det stå ett värde efter ”role:”, men här står ”)”"),
    ("role", 5, 'här ska det stå ":" och ett värde efter ”role”, t.ex. role:kommunchef'),
    ("member and area", 16, "efter ”area”, t.ex. area:digitalisering"),
    ("role:kso & member", 10, 'oväntat tecken ”&” (skriv "and")'),
    ("role:kso || member", 10, 'oväntat tecken ”|” (skriv "or")'),
    ("role:'kso'", 6, "sätt värden inom raka dubbla citattecken"),
    ('county:"Jämtlands län', 8, 'citatet tar aldrig slut: lägg till det avslutande "'),
])
def test_syntax_errors_name_the_column_and_what_was_expected(expr, column, message):
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expr)
    text = str(caught.value)
    assert text.startswith(f"segment ”{expr}”: kolumn {column}: "), text
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("expr, column, message", [
    ("role:kommunchef and", 20,
     'expected a condition (field:value, member, not, "(") after “and”'),
    ("(role:kso member)", 11, 'expected ")" to close the "(" at column 1, but found “member”'),
    ("role:kso member", 10, 'but found “member” (join conditions with "and" or "or")'),
    ("role:)", 6, "expected a value after “role:”, but found “)”"),
    ("role:kso & member", 10, 'unexpected character “&” (write "and")'),
    ("member and rolle:kso", 12, "unknown field “rolle” (did you mean “role”? fields: role, "),
])
def test_an_english_site_gets_the_same_errors_in_english(expr, column, message):
    i18n.activate("en")
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expr)
    text = str(caught.value)
    assert text.startswith(f"segment “{expr}”: column {column}: "), text
    assert message in text


def test_a_control_character_in_the_expression_keeps_the_error_on_one_line():
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("role:kso \x07 member")
    assert "oväntat tecken ”\\x07”" in str(caught.value)
    assert "\x07" not in str(caught.value)


def test_unknown_field_lists_the_fields_and_suggests_the_closest():
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("member and rolle:kso")
    assert str(caught.value) == (
        "segment ”member and rolle:kso”: kolumn 12: okänt fält ”rolle” (menade du ”role”? "
        "fält: role, municipality, kommunkod, county, member, area, language, registered)")


def test_a_bare_word_that_is_no_field_is_an_unknown_field():
    with pytest.raises(SegmentSyntaxError, match="kolumn 8: okänt fält ”kommunchef”"):
        parse("not (  kommunchef)")
