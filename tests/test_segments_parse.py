"""The segment language's parser: precedence, quoting, case, and errors that say where."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("expr, column, message", [
    ("role:kommunchef and", 20,
     'expected a condition (field:value, member, not, "(") after "and"'),
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("not", 4, 'expected a condition (field:value, member, not, "(") after "not"'),
    ("and member", 1, 'expected a condition (field:value, member, not, "("), but found "and"'),
    ("member or or member", 11, 'but found "or"'),
    (")", 1, 'but found ")"'),
    ("(role:kso", 10, 'expected ")" after "kso" to close the "(" at column 1'),
    ("(role:kso member)", 11, 'expected ")" to close the "(" at column 1, but found "member"'),
    ("member)", 7, 'expected "and", "or" or the end of the expression, but found ")"'),
    ("role:kso member", 10, 'but found "member" (join conditions with "and" or "or")'),
    ("municipality:Upplands Väsby", 23,
     'a value with spaces needs quotes: municipality:"Upplands Väsby"'),
    ("role:", 6, 'expected a value after "role:"'),
    ("role:)", 6, 'expected a value after "role:", but found ")"'),
    ("role", 5, 'expected ":" and a value after "role", e.g. role:kommunchef'),
    ("member and area", 16, 'after "area", e.g. area:digitalisering'),
    ("role:kso & member", 10, 'unexpected character "&" (write "and")'),
    ("role:kso || member", 10, 'unexpected character "|" (write "or")'),
    ("role:'kso'", 6, "quote values with double quotes"),
    ('county:"Jämtlands län', 8, 'unterminated string: add the closing "'),
])
def test_syntax_errors_name_the_column_and_what_was_expected(expr, column, message):
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expr)
    text = str(caught.value)
    assert text.startswith(f'segment "{expr}": column {column}: '), text
    assert message in text
    assert "\n" not in text


def test_unknown_field_lists_the_fields_and_suggests_the_closest():
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("member and rolle:kso")
    assert str(caught.value) == (
        'segment "member and rolle:kso": column 12: unknown field "rolle" (did you mean "role"? '
        "fields: role, municipality, kommunkod, county, member, area, language, registered)")


def test_a_bare_word_that_is_no_field_is_an_unknown_field():
    with pytest.raises(SegmentSyntaxError, match='column 8: unknown field "kommunchef"'):
        parse("not (  kommunchef)")
