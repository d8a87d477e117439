"""The suggested area: keyword rules, learning from what staff filed and rejected, never forced;
and the [intake] settings, validated."""

from __future__ import annotations

import pytest

from newsletter import content
from newsletter.classify import Classifier, compile_rules, explain, keyword_scores
from newsletter.errors import ConfigError, InputError
from newsletter.inbox import reject
from newsletter.models import IntakeEntry
from newsletter.settings import load_settings


def test_the_keyword_syntax():
    rules = compile_rules({"bostad": ["bostad", "*bostäder", "plan- och bygglag"],
                           "digitalisering": ["=it", "bredband^0.5"]})
    scores = keyword_scores(rules, "Hyresbostäder och bostadsbyggande enligt plan- och "
                                   "bygglagen", "Mer IT i bredbandsnäten")
    assert scores["bostad"] == (3.0, ["hyresbostäder", "bostadsbyggande", "plan- och bygglagen"])
    assert scores["digitalisering"] == (0.5 * 1.0 + 0.5 * 0.5, ["it", "bredbandsnäten"])
    assert keyword_scores(rules, "Kvalitet i bostäder")["bostad"][0] == 1.0  # it≠kvalitet
    assert "digitalisering" not in keyword_scores(rules, "Kvalitet och italienska")
    with pytest.raises(InputError, match=r"intake.keywords.bostad"):
        compile_rules({"bostad": ["*"]})


def test_a_word_counts_once_per_area_and_the_title_before_the_summary():
    rules = compile_rules({"bostad": ["bostad", "*bostad", "bostadsförsörjning"]})
    scores = keyword_scores(rules, "Bostadsförsörjningen", "om bostadsförsörjningen")
    score, words = scores["bostad"]
    assert (score, words) == (1.0, ["bostadsförsörjningen"])


def test_okategoriserad_rather_than_forced(site):
    classifier = Classifier(site.settings)
    for title in ("Skärpta straff för knivbrott", "Ett levande hav – ökat skydd, minskad "
                  "övergödning och ett hållbart fiske", "Signalspaning i "
                  "försvarsunderrättelseverksamhet"):
        suggestion = classifier.suggest(title)
        assert suggestion.area is None and suggestion.score < 0.75, title
    assert classifier.suggest("Åtgärder för en bättre bostadsförsörjning").area == "bostad"
    assert classifier.suggest("Kommuners och regioners grundläggande beredskap").area == "omvarld"
    assert classifier.suggest("Snabbare bredband i hela landet").area == "digitalisering"


def test_what_staff_filed_before_teaches_new_words(site):
    title = "Förnyad strategi för filmarvet och biograferna på mindre orter"
    assert Classifier(site.settings).suggest(title).area is None
    for filed in ("Strategi för biograferna på mindre orter", "Filmarvet och biograferna i "
                  "hela landet: en ny strategi"):
        content.new_item(site.settings, "2026-11", title=filed, area="medlemmar")
    with site.transaction() as s:
        suggestion = Classifier.for_site(s, site.settings).suggest(title)
    assert suggestion.area == "medlemmar"
    assert suggestion.like in ("Strategi för biograferna på mindre orter",
                               "Filmarvet och biograferna i hela landet: en ny strategi")
    assert "liknar ”" in explain(suggestion.reason)


def test_what_staff_rejected_keeps_a_lookalike_out(site):
    for filed in ("Strategi för biograferna på mindre orter", "Biograferna i glesbygd"):
        content.new_item(site.settings, "2026-11", title=filed, area="medlemmar")
    with site.transaction() as s:
        for i, title in enumerate(("Moms på biobiljetter till biograferna på mindre orter",
                                   "Moms på biobiljetter till biograferna, igen")):
            s.add(IntakeEntry(feed="x", kind="nyhet", title=title, url_key=f"k{i}"))
        s.flush()
        reject(s, [1, 2])
    with site.transaction() as s:
        suggestion = Classifier.for_site(s, site.settings).suggest(
            "Moms på biobiljetter till biograferna på mindre orter, ändrad")
    assert suggestion.area is None
    assert suggestion.rejected_like is not None


def write_config(tmp_path, text: str):
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    return lambda: load_settings(tmp_path, env={})


@pytest.mark.parametrize("text, message", [
    ('[intake]\ntimeout = "fast"\n', "intake.timeout måste vara ett tal"),
    ("[intake]\nremind_days = -1\n", "intake.remind_days måste vara minst 0"),
    ('[intake]\nremind_to = ["kansliet"]\n', "intake.remind_to måste vara en lista"),
    ('[intake.keywords]\nnosuch = ["x"]\n', "intake.keywords.nosuch: inget sådant område"),
    ('[intake.keywords]\nbostad = "bostad"\n', "intake.keywords.bostad måste vara en lista"),
    ('[[intake.feeds]]\nname = "sou"\nurl = "http://www.regeringen.se/x"\n',
     "intake.feeds[0].url måste vara en https://-adress"),
    ('[[intake.feeds]]\nname = "a"\nurl = "https://a.se/"\n[[intake.feeds]]\nname = "a"\n'
     'url = "https://b.se/"\n', "[[intake.feeds]] har samma namn två gånger"),
    (f'[[intake.feeds]]\nname = "{"x" * 101}"\nurl = "https://a.se/"\n',
     "intake.feeds[0].name är längre än 100"),
])
def test_intake_settings_are_validated(tmp_path, text, message):
    with pytest.raises(ConfigError, match="newsletter.toml: " + message.replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        write_config(tmp_path, text)()


def test_an_unknown_feed_kind_is_a_config_error_naming_it(site):
    from newsletter.intake import configured_feeds

    path = site.root / "newsletter.toml"
    path.write_text(path.read_text() + '\n[[intake.feeds]]\nname = "sou"\n'
                    'url = "https://www.regeringen.se/x"\nkind = "betänkande"\n')
    with pytest.raises(ConfigError, match=r"intake.feeds\[0\].kind: okänd typ ”betänkande”"):
        configured_feeds(site.settings)
    result = site.cli("intake", "fetch", ok=False)
    assert result.exit_code == 78 and "okänd typ" in result.stderr


def test_default_keywords_of_an_area_the_site_dropped_are_left_out(tmp_path):
    settings = write_config(tmp_path, '[[areas]]\nslug = "bostad"\nname = "Bostäder"\n')()
    assert list(settings.intake.keywords) == ["bostad"]
