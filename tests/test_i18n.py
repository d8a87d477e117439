"""Every user-facing text comes from the gettext catalogs: none is missing from either."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy import select

from newsletter import i18n, links
from newsletter.cli import main
from newsletter.cli.help_texts import message_ids
from newsletter.errors import ConfigError
from newsletter.issue_build import build_issue
from newsletter.models import Person
from newsletter.settings import load_settings
from newsletter.signing import make_token
from newsletter.web import create_app
from newsletter.web.pages import background_of

REPO = Path(__file__).resolve().parent.parent


def _extracted() -> set[tuple[str, str | None]]:
    """Every (message id, context) in the code; a plural by its singular."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    ids = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            str(REPO), method_map, options_map):
        ids.add((message if isinstance(message, str) else message[0], context))
    return ids


def _catalog(language: str):
    with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "newsletter.po").open("rb") as fh:
        return read_po(fh, locale=language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_message_id_is_in_the_catalog(language: str) -> None:
    catalog = _catalog(language)
    missing = sorted(m for m, context in _extracted() if catalog.get(m, context) is None)
    assert not missing, f"{language}: {len(missing)} ids missing, e.g. {missing[:5]}"
    if language != "en":  # English ids may stand for themselves; other languages translate all
        untranslated = sorted(m.id if isinstance(m.id, str) else m.id[0]
                              for m in catalog if m.id and not all(
                                  m.string if isinstance(m.string, tuple) else (m.string,)))
        assert not untranslated, f"{language}: untranslated: {untranslated[:5]}"


def test_an_unknown_language_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text('[organisation]\nlanguage = "de"\n',
                                              encoding="utf-8")
    with pytest.raises(ConfigError, match="organisation.language"):
        load_settings(tmp_path, env={})


# --- one language per surface: the CLI's help, errors and main outputs ------------------------

def _scan_texts():
    """scripts/scan_texts.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("scan_texts", REPO / "scripts" / "scan_texts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_hard_coded_text_in_the_code_or_the_templates() -> None:
    """The whole of newsletter/ and templates/: every text a reader sees comes from a catalog."""
    scan = _scan_texts()
    found = sorted((str(path.relative_to(REPO)), line, text) for path, line, text in
                   scan.scan([REPO / "newsletter", REPO / "templates"]))
    assert not found, f"texts outside _() (docs/LANGUAGE.md): {found}"


def test_the_scan_finds_an_echo_an_error_and_a_template_text(tmp_path: Path) -> None:
    scan = _scan_texts()
    code = tmp_path / "leak.py"
    code.write_text('import click\nclick.echo(f"Skrev {n} rader")\nclick.echo(_("ok {n}"))\n'
                    'raise InputError("bad month")\nraise ValueError("internal")\n',
                    encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text('<p>{{ _("Sign in") }}</p>\n<p>Logga in</p>\n<img alt="Logotyp">\n',
                    encoding="utf-8")
    assert [t for _p, _n, t in scan.scan([code])] == ["Skrev {} rader", "bad month"]
    assert sorted(t for _p, _n, t in scan.scan([page])) == ["Logga in", "Logotyp"]


def test_the_scan_skips_what_is_no_text_but_not_a_text_beside_it(tmp_path: Path) -> None:
    """Style sheets, layout names, attributes a macro writes, web addresses and the sender's
    placeholders are not words to translate; a word next to one of them still is."""
    page = tmp_path / "page.html"
    page.write_text(
        '{% block main_class %}narrow{% endblock %}\n'
        '{% macro m(k) %}aria-invalid="true" aria-describedby="{{ k }}-fel"{% endmacro %}\n'
        '<input placeholder="https://"> <input placeholder="Sök">\n'
        "<mj-style>.body a { color: red; }</mj-style>\n"
        "<p>Avregistrera: __NL_UNSUBSCRIBE_URL__</p>\n<p>{{ _(\"Unsubscribe\") }}: "
        "__NL_UNSUBSCRIBE_URL__ https://example.se/x</p>\n", encoding="utf-8")
    assert sorted(t for _p, _n, t in _scan_texts().scan([page])) == ["Avregistrera:", "Sök"]


# English words that a Swedish site printed before (issue 16, item 4) and Swedish ones an English
# site printed; matched as whole words in what the commands print, file paths removed.
ENGLISH_LEAKS = re.compile(
    r"\b(Usage|Error|Options|Commands|Missing|No such|Try|Wrote|Created|Dry run|rows|items|"
    r"errors|warnings|recipients?|contacts?|active|legitimate_interest|Examples|the association|"
    r"Show this message|Aborted|Would|Registered|Waiting list|unlimited|when|places|Add items|"
    r"Lawful basis|Name|Email|Areas|database|municipalities)\b")
SWEDISH_LEAKS = re.compile(
    r"[åäöÅÄÖ]|\b(Användning|Fel|Flaggor|Kommandon|saknas|Skrev|Skapade|Torrkörning|rader|"
    r"nyheter|fel|varningar|mottagare|kontakter|aktiv|förbundet|Exempel|Databasen|kommuner|"
    r"Namn|Områden|anmälda|väntelista)\b")


def _speak(site, language: str) -> None:
    config = site.root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('language = "sv"', f'language = "{language}"', 1),
                      encoding="utf-8")


def _cli_outputs(site) -> dict[str, str]:
    """What a few commands print: help, usage errors, a data error and the main outputs."""
    (site.root / "kontakter.csv").write_text(
        "email,name,municipality,role\nanna.berg@example.se,Anna Berg,Åsele,kommunchef\n",
        encoding="utf-8")
    runs = {
        "help": site.cli("contacts", "--help"),
        "missing": site.cli("contacts", "add", ok=False),
        "unknown": site.cli("nope", ok=False),
        "month": site.cli("issue", "build", "2026-13", ok=False),
        "import": site.cli("contacts", "import", str(site.root / "kontakter.csv")),
        "show": site.cli("contacts", "show", "anna.berg@example.se"),
        "count": site.cli("segments", "count", "role:kommunchef"),
        "init": site.cli("init"),
        "check": site.cli("issue", "check", "2026-12", ok=False),
        "webinar": site.cli("webinar", "new", "--title", "Demo (demodata)", "--start",
                            "2031-03-04 10:00", "--join-url", "https://meet.example.se/x"),
    }
    runs["show webinar"] = site.cli("webinar", "show", "demo-demodata")
    assert runs["missing"].exit_code == 2 and runs["month"].exit_code == 1
    text = {name: r.stdout + r.stderr for name, r in runs.items()}
    paths = re.compile(r"(/|\bnewsletter )\S+|\S+@\S+|https?://\S+|\S+\.(csv|md)\b"
                       r"|”[^”]*”|'[^']*'")  # names quoted: commands, metavars, values
    usage = re.compile(r"^(Användning:|Usage:) .*$", re.M)  # command names and metavars
    return {name: usage.sub(r"\1", paths.sub(" ", t)) for name, t in text.items()}



def test_a_swedish_sites_cli_prints_no_english(site) -> None:
    out = _cli_outputs(site)
    assert out["help"].startswith("Användning:") and "Flaggor:" in out["help"]
    assert "Fel: Argument saknas" in out["missing"]
    assert "Inget sådant kommando" in out["unknown"]
    assert "Status:      aktiv" in out["show"]
    assert "Databasen är aktuell" in out["init"]
    for name, text in out.items():
        assert not ENGLISH_LEAKS.search(text), (name, ENGLISH_LEAKS.search(text), text)


# The English of the segment parser's and the core's errors before they went through _() (and
# click's "Did you mean", which click asks for with ngettext), beside ENGLISH_LEAKS.
ERROR_LEAKS = re.compile(
    r"\b(column|unknown|expected|but found|did you mean|does not exist|no contact|no mailing|"
    r"end of the expression|lists them|webinars|fields|none yet|not a|is already)\b", re.I)


def _error_outputs(site) -> dict[str, str]:
    """What the commands print when they end in an error about what the user named: a bad
    segment (syntax, field, value, webinar), an unknown contact, webinar or mailing, an option
    that does not exist; quoted values removed (they are the user's words, not ours)."""
    runs = {
        "syntax": site.cli("segments", "count", "role:kommunchef and (", ok=False),
        "found": site.cli("segments", "count", "role:kso member", ok=False),
        "character": site.cli("segments", "count", "role:kso & member", ok=False),
        "field": site.cli("segments", "count", "rolle:kso", ok=False),
        "role": site.cli("segments", "count", "role:kommunchf", ok=False),
        "county": site.cli("segments", "count", "county:Lappland", ok=False),
        "registered": site.cli("segments", "count", "registered:finns-inte", ok=False),
        "contact": site.cli("contacts", "show", "ingen@example.se", ok=False),
        "webinar": site.cli("webinar", "show", "finns-inte", ok=False),
        "register": site.cli("webinar", "register", "finns-inte", "ingen@example.se", ok=False),
        "mailing": site.cli("send", "pause", "999", ok=False),
        "option": site.cli("send", "status", "--hepl", ok=False),
    }
    assert {name: r.exit_code for name, r in runs.items()} == {
        name: 2 if name == "option" else 1 for name in runs}
    values = re.compile(r"”[^”]*”|“[^“]*”|'[^']*'|\S+@\S+|`[^`]*`")
    return {name: values.sub(" ", r.stdout + r.stderr) for name, r in runs.items()}


def test_a_swedish_sites_errors_about_what_the_user_named_have_no_english(site) -> None:
    out = _error_outputs(site)
    assert "kolumn 22" in out["syntax"] and "okänt fält" in out["field"]
    assert "menade du" in out["role"] and "Menade du" in out["option"]
    assert "finns inte" in out["webinar"] and "inget utskick 999" in out["mailing"]
    for name, text in out.items():
        for leak in (ENGLISH_LEAKS, ERROR_LEAKS):
            assert not leak.search(text), (name, leak.search(text), text)


def test_an_english_sites_errors_are_english(site) -> None:
    _speak(site, "en")
    out = _error_outputs(site)
    assert "column 22: expected a condition" in out["syntax"]
    assert "unknown field" in out["field"] and "Did you mean" in out["option"]
    assert "does not exist" in out["webinar"] and "no mailing 999" in out["mailing"]
    for name, text in out.items():
        text = re.sub(r'"[^"]*"', " ", text)  # an example value ("Jämtlands län"): data
        assert not SWEDISH_LEAKS.search(text), (name, SWEDISH_LEAKS.search(text), text)


def test_an_english_sites_cli_prints_no_swedish(site) -> None:
    _speak(site, "en")
    out = _cli_outputs(site)
    assert out["help"].startswith("Usage:") and "Options:" in out["help"]
    assert "Error: Missing argument" in out["missing"]
    assert "Status:      active" in out["show"]
    assert "The database is up to date" in out["init"]
    for name, text in out.items():
        for name_ in ("Åsele", "Anna Berg", "Västerbottens län", "Kommunchef"):  # data, not words
            text = text.replace(name_, "")
        assert not SWEDISH_LEAKS.search(text), (name, SWEDISH_LEAKS.search(text), text)


# Swedish example values in an English help (Åsele, "Jämtlands län", kontakter.csv): data.
EXAMPLE_VALUES = re.compile(r'"[^"]*"|\S*[åäöÅÄÖ]\S*|\S+\.(csv|md)\b')


def _helps(site) -> dict[str, str]:
    """The root command's and `send issue`'s --help as SITE prints them."""
    return {"root": site.cli("--help").stdout,
            "send issue": site.cli("send", "issue", "--help").stdout}


def _line(text: str, start: str) -> str:
    """The line of TEXT that starts with START once indentation is removed, with the lines
    click wrapped it onto (more indented, not starting an option or a command) joined."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(start):
            out = [line.strip()]
            for more in lines[i + 1:]:
                if not more.startswith("    ") or more.strip().startswith("-"):
                    break
                out.append(more.strip())
            return " ".join(out)
    raise AssertionError(f"no line starting {start!r} in:\n{text}")


def test_the_commands_help_is_in_the_sites_language(site) -> None:
    """Short help in the command list, the command's own help and its options' help: Swedish on
    a Swedish site, English on an English one, in one process (nothing kept from the first)."""
    swedish = _helps(site)
    assert "Skicka ett nummer till ett segment" in _line(swedish["root"], "send ")
    assert "Kontaktregistret" in _line(swedish["root"], "contacts ")
    assert "webbplatsmapp" in _line(swedish["root"], "--root")
    issue = swedish["send issue"]
    assert "Skicka nummer ÅÅÅÅ-MM till ett segment" in issue
    assert "Exempel: newsletter send issue 2026-12" in issue
    assert "Fråga inte innan utskick till många" in _line(issue, "--yes")
    assert "Medarbetaren som skickar det" in _line(issue, "--by")
    assert "Skriv ut mottagarna" in _line(issue, "--dry-run")
    _speak(site, "en")
    english = _helps(site)
    assert "Send an issue to a segment" in _line(english["root"], "send ")
    assert "The newsletter site's folder" in _line(english["root"], "--root")
    issue = english["send issue"]
    assert "Send issue YYYY-MM to a segment" in issue and "Example: newsletter send" in issue
    assert "Do not ask before sending to many." in _line(issue, "--yes")
    assert "The staff member who sends it" in _line(issue, "--by")
    for name, text in english.items():
        assert not SWEDISH_LEAKS.search(EXAMPLE_VALUES.sub("", text)), (name, text)


def test_no_help_is_translated_at_import() -> None:
    """`help=_("...")` would freeze the language active at import and make that text the id:
    help texts are plain English strings (newsletter/cli/help_texts.py translates them)."""
    found = [f"{path.name}:{node.lineno}" for path in sorted((REPO / "newsletter").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.keyword) and node.arg == "help"
             and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "_"]
    assert not found, f"help=_() (write the English string alone): {found}"


def test_every_commands_help_is_a_catalog_id() -> None:
    """The help texts the extraction lists are exactly those of the command tree, and the
    Swedish catalog translates each (a new command's docstring cannot be forgotten)."""
    ids = message_ids(main)
    assert len(ids) > 200 and "The subject line." in ids
    extracted = {m for m, _context in _extracted()}
    assert set(ids) <= extracted
    catalog = _catalog("sv")
    assert all(catalog.get(m) is not None and catalog.get(m).string for m in ids)


# --- one language per surface: the public pages and the issue's email -------------------------

PAGE_SWEDISH = re.compile(r"\b(Avregistrera|Dina inställningar|Prenumerera|Spara|Pausa|"
                          r"utskick|Tidigare|Hoppa|Ledare|Läs mer|Alla nummer|Välj vilka)\b")
PAGE_ENGLISH = re.compile(r"\b(Unsubscribe|Your preferences|Subscribe|Save|Pause|mailings|"
                          r"Earlier|Skip|Editorial|Read more|Every issue|Choose the areas)\b")


def _public_texts(site) -> dict[str, str]:
    """The unsubscribe and preferences pages, the archive and the issue's email (HTML and text)
    of SITE in its language: what a reader sees, tags and the site's own names removed."""
    settings = site.settings
    with site.transaction() as session:
        session.add(Person(email="anna@example.se", name="Anna (demodata)"))
    with site.transaction() as session:
        public_id = session.scalar(select(Person.public_id).where(
            Person.email == "anna@example.se"))
    app = create_app(settings)
    app.testing = True
    client = app.test_client()
    try:
        key = settings.secret_key
        pages = {"unsubscribe": f"/u/{make_token(key, links.UNSUBSCRIBE, public_id)}",
                 "preferences": f"/p/{make_token(key, links.PREFERENCES, public_id)}",
                 "archive": "/arkiv/"}
        texts = {name: client.get(path).get_data(as_text=True) for name, path in pages.items()}
    finally:
        assert background_of(app).stop()
    build = build_issue(settings, "2026-12")
    texts |= {"email": build.content.html, "email text": build.content.text}
    return {name: re.sub(r"<[^>]*>|\{[^}]*\}", " ", t) for name, t in texts.items()}


def test_an_english_sites_pages_and_email_are_english(site) -> None:
    _speak(site, "en")
    out = _public_texts(site)
    assert "Your preferences" in out["preferences"] and "Unsubscribe" in out["unsubscribe"]
    assert "Editorial" in out["email"] and "Choose the areas" in out["email text"]
    for name, text in out.items():
        assert not PAGE_SWEDISH.search(text), (name, PAGE_SWEDISH.search(text))


def test_a_swedish_sites_pages_and_email_are_swedish(site) -> None:
    out = _public_texts(site)
    assert "Dina inställningar" in out["preferences"] and "Avregistrera" in out["unsubscribe"]
    assert "Ledare" in out["email"] and "Välj vilka områden" in out["email text"]
    for name, text in out.items():
        assert not PAGE_ENGLISH.search(text), (name, PAGE_ENGLISH.search(text))
