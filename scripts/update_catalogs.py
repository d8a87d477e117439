"""Bring the gettext catalogs in line with the code: every `_()` id in, obsolete ones out.

    python3 scripts/update_catalogs.py           # update newsletter/locale/*/LC_MESSAGES/*.po
    python3 scripts/update_catalogs.py --check   # exit 1 listing what sv lacks; writes nothing

The message ids are extracted as babel.cfg says (the same extraction as tests/test_i18n.py).
Each catalog keeps its header block (the lines before the first blank line) verbatim and its
translations; new ids come in with an empty msgstr, ids no longer in the code are dropped. The
entries are written sorted by id, without source locations, so that two branches adding ids
touch only their own lines and the file does not change when code merely moves (see also
scripts/po_merge.py, the git merge driver, and docs/LANGUAGE.md).

Failure mode: a catalog that does not parse is reported by file and line, exit 1, and no file
is written (all catalogs are read before any is replaced; each is replaced atomically).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import PoFileError, generate_po, read_po

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "newsletter"
CHECKED = ("sv",)  # languages that must translate every id (English ids stand for themselves)


MessageId = str | tuple[str, ...]  # a plural id is (singular, plural)
Key = tuple[MessageId, str | None]  # (id, context): pgettext's context tells apart two meanings


def extract(root: Path) -> dict[Key, Message]:
    """Every message in the sources under ROOT, as ROOT/babel.cfg maps them ((id, context) ->
    Message)."""
    with (root / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[Key, Message] = {}
    for _filename, _lineno, message, _comments, context in extract_from_dir(
            str(root), method_map, options_map):
        msgid = message if isinstance(message, str) else tuple(message[:2])
        if msgid and (msgid, context) not in found:
            found[(msgid, context)] = Message(msgid, context=context)
    return found


def read_catalog(path: Path, language: str | None = None) -> tuple[str, Catalog]:
    """The header block of the .po at PATH (text up to the first blank line) and its catalog.

    LANGUAGE defaults to the folder's name (LANG/LC_MESSAGES/newsletter.po)."""
    text = path.read_text(encoding="utf-8")
    header = text.split("\n\n", 1)[0] + "\n"
    language = language or path.parent.parent.name
    try:
        catalog = read_po(io.BytesIO(text.encode("utf-8")), locale=language, domain=DOMAIN,
                          abort_invalid=True)
    except PoFileError as exc:
        raise SystemExit(f"{path}: {exc}") from exc
    return header, catalog


def render(header: str, messages: Iterable[Message], language: str) -> str:
    """The .po text: HEADER verbatim, then MESSAGES sorted by id, without locations."""
    out = Catalog(locale=language, domain=DOMAIN)
    for m in messages:
        if m.id:
            out[m.id] = Message(m.id, m.string, flags=m.flags, user_comments=m.user_comments,
                                context=m.context)
    body = "".join(generate_po(out, omit_header=True, no_location=True, sort_by="message",
                               ignore_obsolete=True))
    return header.rstrip("\n") + "\n\n" + body


def write_atomic(path: Path, text: str) -> None:
    """Replace PATH with TEXT in one step (a temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _label(msgid: MessageId, context: str | None = None) -> str:
    text = repr(msgid if isinstance(msgid, str) else msgid[0])
    return f"{text} (context {context!r})" if context else text


def _sort_key(key: Key) -> tuple[str, str]:
    msgid, context = key
    return (msgid if isinstance(msgid, str) else msgid[0]), context or ""


def problems(extracted: dict[Key, Message], catalog: Catalog, language: str) -> list[str]:
    """What LANGUAGE's CATALOG lacks: ids missing, and (for CHECKED languages) untranslated."""
    lines = [f"{language}: missing: {_label(*k)}" for k in sorted(extracted, key=_sort_key)
             if catalog.get(*k) is None]
    if language in CHECKED:
        for m in sorted((m for m in catalog if m.id), key=lambda m: _sort_key((m.id, m.context))):
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            if not all(strings):
                lines.append(f"{language}: untranslated: {_label(m.id, m.context)}")
            elif m.fuzzy:
                lines.append(f"{language}: fuzzy (not used until reviewed): "
                             f"{_label(m.id, m.context)}")
    return lines


def update(root: Path, locale_dir: Path, check: bool) -> int:
    """Update (or with CHECK, only check) every catalog under LOCALE_DIR; the exit code."""
    extracted = extract(root)
    paths = sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    if not paths:
        raise SystemExit(f"{locale_dir}: no */LC_MESSAGES/{DOMAIN}.po catalog")
    catalogs = {path: read_catalog(path) for path in paths}
    if check:
        found = [line for path, (_h, cat) in catalogs.items()
                 for line in problems(extracted, cat, path.parent.parent.name)]
        print("\n".join(found) if found else f"{len(extracted)} ids, all catalogs complete.")
        return 1 if found else 0
    for path, (header, catalog) in catalogs.items():
        language = path.parent.parent.name
        kept = []
        for (msgid, context), fresh in extracted.items():
            old = catalog.get(msgid, context)  # a plural id is found by its singular:
            same_kind = (old is not None  # keep only the same kind
                         and isinstance(old.id, tuple) == isinstance(msgid, tuple))
            kept.append(old if same_kind else fresh)
        added = sum(1 for k in extracted if catalog.get(*k) is None)
        dropped = sum(1 for m in catalog if m.id and (m.id, m.context) not in extracted)
        text = render(header, kept, language)
        if text != path.read_text(encoding="utf-8"):
            write_atomic(path, text)
        written = read_po(io.BytesIO(text.encode("utf-8")), locale=language, domain=DOMAIN)
        todo = len(problems(extracted, written, language))
        print(f"{path.relative_to(locale_dir)}: {len(extracted)} ids, {added} added, "
              f"{dropped} dropped" + (f", {todo} to translate" if language in CHECKED else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing ids missing or untranslated")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="the source tree holding babel.cfg (default: this repository)")
    parser.add_argument("--locale-dir", type=Path, default=None,
                        help="the catalogs' folder (default: ROOT/newsletter/locale)")
    args = parser.parse_args(argv)
    locale_dir = args.locale_dir or args.root / "newsletter" / "locale"
    return update(args.root.resolve(), locale_dir.resolve(), args.check)


if __name__ == "__main__":
    sys.exit(main())
