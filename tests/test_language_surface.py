"""The command line speaks the site's language and only that one: a few commands that end in an
error or print a report, on an English site and on a Swedish one, checked for words of the other
language.

The word lists are the leaks seen before the catalogs were complete (English "Error", "done",
"scheduled"... on a Swedish site; "Fel" on an English one). Known leaks that remain, and are not
hidden here: the reason email_validator gives for a bad address is the library's English (it
follows "ogiltig e-postadress ”x”:"), as are other libraries' reasons quoted after ours (a
TOML parse error, a template error, the mail relay's answer). tests/test_i18n.py keeps the
whole of newsletter/ and templates/ free of texts outside `_()` that scripts/scan_texts.py can
see, and checks the common error paths of the CLI in both languages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from newsletter import i18n, staff
from newsletter.console import create_app

from .console_support import STAFF, Clock, Console

SWEDISH = re.compile(r"[åäöÅÄÖ]|\b(Fel|inte|och|måste|ogiltig|inget|inga|listan|utskick|nummer|"
                     r"klick|Skrev|hittades)\b")
ENGLISH = re.compile(r"\b(Error|done|scheduled|cancelled|unknown role|invalid|Aborted|must be|"
                     r"Nothing|nothing|Wrote|Clicks|Recipients|The list|issues|Interrupted|"
                     r"not a|found)\b")


def _speak(site, language: str) -> None:
    config = site.root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert 'language = "sv"' in text
    config.write_text(text.replace('language = "sv"', f'language = "{language}"', 1),
                      encoding="utf-8")


def _outputs(site) -> dict[str, str]:
    """What three commands print (stdout and stderr): an error in newsletter.toml, a bad
    address, a report of a site with nothing sent."""
    config = site.root / "newsletter.toml"
    good = config.read_text(encoding="utf-8")
    config.write_text(good.replace("rate = 0", 'rate = "fast"', 1), encoding="utf-8")
    bad_config = site.cli("segments", "list", ok=False)
    config.write_text(good, encoding="utf-8")
    bad_address = site.cli("contacts", "add", "adress.example.se", ok=False)
    report = site.cli("report")
    assert (bad_config.exit_code, bad_address.exit_code, report.exit_code) == (78, 1, 0)
    return {name: r.stdout + r.stderr for name, r in
            (("config", bad_config), ("address", bad_address), ("report", report))}


def test_an_english_site_prints_no_swedish(site):
    _speak(site, "en")
    out = _outputs(site)
    assert out["config"].startswith("Error: ") and "must be a number" in out["config"]
    assert "invalid email address “adress.example.se”" in out["address"]
    assert "The list month by month" in out["report"]
    for name, text in out.items():
        assert not SWEDISH.search(text), (name, SWEDISH.search(text), text)


def test_a_swedish_site_prints_no_english(site):
    _speak(site, "sv")
    out = _outputs(site)
    assert out["config"].startswith("Fel: ") and "måste vara ett tal" in out["config"]
    assert "ogiltig e-postadress ”adress.example.se”" in out["address"]
    assert "Listan månad för månad" in out["report"]
    for name, text in out.items():
        assert not ENGLISH.search(text), (name, ENGLISH.search(text), text)


# --- the console: counts, notices and a word with two meanings, in the site's language --------

def _console(site, language: str) -> Console:
    _speak(site, language)
    with site.transaction() as session:
        staff.add_staff(session, STAFF["admin"], name="Test admin", role="admin")
    clock = Clock(datetime(2026, 12, 5, 9, 0, tzinfo=UTC))  # the sample issue's month
    app = create_app(site.settings, clock=clock)
    app.testing = True
    return Console(site, app, clock)


@pytest.mark.parametrize("language, words", [
    ("en", {"items": r"\b\d+ items\b", "notice": "Saved.", "button": ">Preview</a>",
            "crumb": "› Preview</p>"}),
    ("sv", {"items": r"\b\d+ nyheter\b", "notice": "Sparat.", "button": ">Förhandsgranska</a>",
            "crumb": "› Förhandsvisning</p>"}),
])
def test_the_console_speaks_the_sites_language(site, language, words):
    client = _console(site, language).signed_in("admin")
    assert re.search(words["items"], client.get("/").text)
    # The notice after a redirect is looked up per request, not once when the module loaded.
    assert words["notice"] in client.get("/personal?meddelande=sparad").text
    assert words["button"] in client.get("/nummer/2026-12").text
    assert words["crumb"] in client.get("/nummer/2026-12/forhandsgranska").text


def test_counts_of_one_read_right_in_swedish():
    i18n.activate("sv")
    assert i18n.ngettext("{n} item", "{n} items", 1).format(n=1) == "1 nyhet"
    assert i18n.ngettext("{n} item", "{n} items", 3).format(n=3) == "3 nyheter"
    assert i18n.ngettext("({n} day left)", "({n} days left)", 1).format(n=1) == "(1 dag kvar)"
    assert i18n.pgettext("button", "Preview") != i18n._("Preview")
