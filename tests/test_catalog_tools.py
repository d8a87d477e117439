"""The catalog tooling: scripts/update_catalogs.py and the git merge driver scripts/po_merge.py.

Both run as the contributor runs them, as subprocesses: update_catalogs on a small source tree
in a temp dir, the merge driver inside a real git repository with two branches.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"

HEADER = """# The test's texts in {name}.
msgid ""
msgstr ""
"Project-Id-Version: newsletter\\n"
"Language: {lang}\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"
"""


def _po(lang: str, entries: dict[str, str]) -> str:
    body = "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in entries.items())
    return HEADER.format(name={"sv": "Swedish", "en": "English"}[lang], lang=lang) + "\n" + body


def _update(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "update_catalogs.py"),
                           "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree: babel.cfg, a module and a template, and catalogs one step behind."""
    shutil.copy(REPO / "babel.cfg", tmp_path / "babel.cfg")
    (tmp_path / "newsletter").mkdir()
    (tmp_path / "newsletter" / "mod.py").write_text(
        'from newsletter.i18n import _, ngettext\n'
        'A = _("Sign in")\n'
        'B = _("Mailing {id} created")\n'
        'C = ngettext("{n} item", "{n} items", 2)\n', encoding="utf-8")
    (tmp_path / "templates" / "web").mkdir(parents=True)
    (tmp_path / "templates" / "web" / "page.html").write_text(
        '<p>{{ _("Add an item") }}</p>\n', encoding="utf-8")
    for lang, entries in {"sv": {"Sign in": "Logga in", "Gone from the code": "Borta"},
                          "en": {"Sign in": ""}}.items():
        folder = tmp_path / "newsletter" / "locale" / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "newsletter.po").write_text(_po(lang, entries), encoding="utf-8")
    return tmp_path


def _catalog_text(root: Path, lang: str) -> str:
    return (root / "newsletter" / "locale" / lang / "LC_MESSAGES" / "newsletter.po").read_text(
        encoding="utf-8")


def test_update_adds_new_ids_sorted_drops_obsolete_keeps_translations(source: Path) -> None:
    result = _update(source)
    assert result.returncode == 0, result.stderr
    assert "sv/LC_MESSAGES/newsletter.po: 4 ids, 3 added, 1 dropped, 3 to translate" \
        in result.stdout
    sv = _catalog_text(source, "sv")
    assert sv.startswith(HEADER.format(name="Swedish", lang="sv") + "\n")
    assert 'msgid "Sign in"\nmsgstr "Logga in"\n' in sv
    assert "Gone from the code" not in sv
    assert "#:" not in sv  # no source locations: moving code does not touch the catalog
    ids = [line.removeprefix("msgid ") for line in sv.splitlines()
           if line.startswith("msgid ") and line != 'msgid ""']
    assert ids == ['"Add an item"', '"Mailing {id} created"', '"Sign in"', '"{n} item"']
    assert 'msgid_plural "{n} items"\nmsgstr[0] ""\nmsgstr[1] ""\n' in sv
    en = _catalog_text(source, "en")
    assert en.count("msgid ") == 5 and en.startswith(HEADER.format(name="English", lang="en"))
    again = _update(source)
    assert again.returncode == 0 and _catalog_text(source, "sv") == sv  # stable


def test_check_lists_what_sv_lacks_and_writes_nothing(source: Path) -> None:
    before = _catalog_text(source, "sv")
    result = _update(source, "--check")
    assert result.returncode == 1
    assert "sv: missing: 'Add an item'" in result.stdout
    assert "en: missing: 'Mailing {id} created'" in result.stdout
    assert "en: untranslated" not in result.stdout  # English ids stand for themselves
    assert _catalog_text(source, "sv") == before
    _update(source)
    sv_path = source / "newsletter" / "locale" / "sv" / "LC_MESSAGES" / "newsletter.po"
    sv = _catalog_text(source, "sv")
    sv = sv.replace('msgid "Add an item"\nmsgstr ""', 'msgid "Add an item"\nmsgstr "Lägg till"')
    sv = sv.replace('msgid "Mailing {id} created"\nmsgstr ""',
                    'msgid "Mailing {id} created"\nmsgstr "Utskick {id} skapat"')
    assert "sv: untranslated: '{n} item'" in _update(source, "--check").stdout
    sv_path.write_text(sv.replace('msgstr[0] ""\nmsgstr[1] ""',
                                  'msgstr[0] "{n} nyhet"\nmsgstr[1] "{n} nyheter"'),
                       encoding="utf-8")
    result = _update(source, "--check")
    assert result.returncode == 0, result.stdout
    assert "4 ids, all catalogs complete." in result.stdout


def test_a_broken_catalog_is_named_and_nothing_is_written(source: Path) -> None:
    en_before = _catalog_text(source, "en")
    sv_path = source / "newsletter" / "locale" / "sv" / "LC_MESSAGES" / "newsletter.po"
    sv_path.write_text(_catalog_text(source, "sv") + 'msgid "Unclosed\n', encoding="utf-8")
    result = _update(source)
    assert result.returncode == 1
    assert str(sv_path) in result.stderr
    assert _catalog_text(source, "en") == en_before


def test_the_repository_catalogs_are_complete() -> None:
    result = _update(REPO, "--check")
    assert result.returncode == 0, result.stdout


# --- the merge driver, in a real git repository ------------------------------------------

def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=check, timeout=60)


SV = Path("newsletter/locale/sv/LC_MESSAGES/newsletter.po")


def _repo(tmp_path: Path, driver: bool = True, python: str = f'"{sys.executable}"') -> Path:
    """A git repository with the project's .gitattributes and a Swedish catalog on main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.se")
    _git(repo, "config", "user.name", "Test (demo)")
    if driver:
        _git(repo, "config", "merge.po.driver",
             f'{python} "{SCRIPTS / "po_merge.py"}" %O %A %B')
    shutil.copy(REPO / ".gitattributes", repo / ".gitattributes")
    (repo / SV).parent.mkdir(parents=True)
    _commit(repo, {"Cancel": "Avbryt", "Save": "Spara", "Title": "Rubrik"}, "base")
    return repo


def _commit(repo: Path, entries: dict[str, str], message: str) -> None:
    (repo / SV).write_text(_po("sv", dict(sorted(entries.items()))), encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _two_branches(repo: Path) -> None:
    """Branch "a" and branch "b" each add ids next to each other in sorted order."""
    _git(repo, "checkout", "-q", "-b", "a")
    _commit(repo, {"Cancel": "Avbryt", "Preview": "Förhandsgranska", "Save": "Spara",
                   "Sign in": "Logga in", "Title": "Rubrik"}, "a adds ids")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "checkout", "-q", "-b", "b")
    _commit(repo, {"Cancel": "Avbryt", "Publish": "Publicera", "Save": "Spara och stäng",
                   "Sign out": "Logga ut", "Title": "Rubrik"}, "b adds ids, changes Save")


def test_two_branches_adding_ids_merge_without_conflict(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _two_branches(repo)
    _git(repo, "checkout", "-q", "a")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    text = (repo / SV).read_text(encoding="utf-8")
    assert "<<<<<<<" not in text
    assert text.startswith(HEADER.format(name="Swedish", lang="sv"))
    pairs = [(line, nxt) for line, nxt in zip(text.splitlines(), text.splitlines()[1:],
                                                strict=False) if line.startswith('msgid "') and
             line != 'msgid ""']
    assert pairs == [('msgid "Cancel"', 'msgstr "Avbryt"'),
                     ('msgid "Preview"', 'msgstr "Förhandsgranska"'),
                     ('msgid "Publish"', 'msgstr "Publicera"'),
                     # only b changed this translation since the base: b's wins
                     ('msgid "Save"', 'msgstr "Spara och stäng"'),
                     ('msgid "Sign in"', 'msgstr "Logga in"'),
                     ('msgid "Sign out"', 'msgstr "Logga ut"'),
                     ('msgid "Title"', 'msgstr "Rubrik"')]


def test_without_the_driver_the_same_merge_conflicts(tmp_path: Path) -> None:
    repo = _repo(tmp_path, driver=False)
    _two_branches(repo)
    _git(repo, "checkout", "-q", "a")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode != 0
    assert "<<<<<<<" in (repo / SV).read_text(encoding="utf-8")


def test_when_both_sides_change_a_translation_ours_wins(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _git(repo, "checkout", "-q", "-b", "b")
    _commit(repo, {"Cancel": "Avbryt", "Save": "Spara och stäng", "Title": "Rubrik",
                   "Sign out": "Logga ut"}, "b")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, {"Cancel": "Avbryt", "Save": "Spara ändringarna", "Title": "Titel",
                   "Sign in": "Logga in"}, "main")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    text = (repo / SV).read_text(encoding="utf-8")
    assert 'msgid "Save"\nmsgstr "Spara ändringarna"\n' in text
    assert 'msgid "Title"\nmsgstr "Titel"\n' in text
    assert 'msgid "Sign in"\nmsgstr "Logga in"\n' in text
    assert 'msgid "Sign out"\nmsgstr "Logga ut"\n' in text


def test_a_side_that_is_not_a_catalog_falls_back_to_a_line_merge(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _git(repo, "checkout", "-q", "-b", "b")
    # a conflict resolved badly: markers left in and committed
    broken = _catalog_text_of(repo).replace('msgstr "Rubrik"', '<<<<<<< a\nmsgstr "Rubrik"')
    (repo / SV).write_text(broken, encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "b breaks the catalog")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, {"Cancel": "Avbryt", "Save": "Spara", "Title": "Titel"}, "main")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode != 0
    assert "falling back to a line merge" in merged.stderr
    assert "CONFLICT" in merged.stdout
    text = _catalog_text_of(repo)
    assert '<<<<<<< ours\nmsgstr "Titel"\n=======\n<<<<<<< a\n' in text


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests run outside a venv")
def test_a_python_without_babel_hands_over_to_the_projects_venv(tmp_path: Path) -> None:
    # `-S`: no site-packages, so no Babel, as with a bare system python3 on PATH
    repo = _repo(tmp_path, python=f'"{sys.executable}" -S')
    (repo / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (repo / ".git" / "info" / "exclude").write_text(".venv\n", encoding="utf-8")
    _two_branches(repo)
    _git(repo, "checkout", "-q", "a")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert 'msgid "Publish"' in _catalog_text_of(repo) and "<<<<<<<" not in _catalog_text_of(repo)


def test_without_babel_or_a_venv_the_driver_falls_back_to_a_line_merge(tmp_path: Path) -> None:
    repo = _repo(tmp_path, python=f'"{sys.executable}" -S')
    _two_branches(repo)
    _git(repo, "checkout", "-q", "a")
    merged = _git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert merged.returncode != 0
    assert "Babel is not installed; falling back to a line merge" in merged.stderr
    assert "<<<<<<< ours" in _catalog_text_of(repo)


def _catalog_text_of(repo: Path) -> str:
    return (repo / SV).read_text(encoding="utf-8")


def test_one_id_with_a_context_is_an_entry_of_its_own(source: Path) -> None:
    (source / "newsletter" / "two.py").write_text(
        'from newsletter.i18n import _, pgettext\n'
        'A = _("Preview")\n'
        'B = pgettext("button", "Preview")\n', encoding="utf-8")
    assert "sv: missing: 'Preview' (context 'button')" in _update(source, "--check").stdout
    assert _update(source).returncode == 0
    sv = _catalog_text(source, "sv")
    assert 'msgid "Preview"\nmsgstr ""\n' in sv
    assert 'msgctxt "button"\nmsgid "Preview"\nmsgstr ""\n' in sv
    sv_path = source / "newsletter" / "locale" / "sv" / "LC_MESSAGES" / "newsletter.po"
    sv_path.write_text(sv.replace('msgctxt "button"\nmsgid "Preview"\nmsgstr ""',
                                  'msgctxt "button"\nmsgid "Preview"\nmsgstr "Förhandsgranska"'),
                       encoding="utf-8")
    assert _update(source).returncode == 0  # the translation of the context entry is kept
    assert 'msgctxt "button"\nmsgid "Preview"\nmsgstr "Förhandsgranska"\n' in _catalog_text(
        source, "sv")
    assert "untranslated: 'Preview' (context 'button')" not in _update(source, "--check").stdout
