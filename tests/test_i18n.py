"""Every user-facing text comes from the gettext catalogs: none is missing from either."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from newsletter import i18n
from newsletter.errors import ConfigError
from newsletter.settings import load_settings

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
