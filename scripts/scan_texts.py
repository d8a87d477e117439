"""Find user-facing texts that do not go through the gettext catalogs (docs/LANGUAGE.md).

    python3 scripts/scan_texts.py                 # every finding under newsletter/ and templates/
    python3 scripts/scan_texts.py newsletter/cli  # only these files or folders

Python: a string constant, f-string or "...".format(...) given as the text to click.echo,
click.secho, click.prompt, click.confirm, prompts.confirm, click's exceptions, a `raise
SomethingError(...)`, or flash/notice calls, unless it is inside `_()`, `ngettext()` or
`pgettext()`. Templates (.html, .j2): text between tags, and the alt/title/placeholder/aria-label
attributes, outside `{{ }}`, `{% %}` and `{# #}`. A finding is printed as FILE:LINE: TEXT; a
string without a letter (punctuation, a placeholder alone) is not a text, nor are a template's
style sheets, layout names (`{% block main_class %}`), attributes written outside a tag, web
addresses and the sender's `__NL_...__` placeholders.

tests/test_i18n.py runs the scan over newsletter/ and templates/ and fails on any finding. The
scan is a heuristic: it finds what is passed directly, not a text built in a
variable first.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ECHOES = {"echo", "secho", "prompt", "confirm", "fail", "flash", "notice", "_notice", "abort"}
ERRORS = {"ClickException", "UsageError", "BadParameter", "BadOptionUsage", "FileError",
          "NotFound", "Refused", "NotPermitted", "SuppressedAddress", "InvalidAddress"}
INTERNAL = {"ValueError", "TypeError", "RuntimeError", "AssertionError", "KeyError",
            "LookupError", "NotImplementedError"}  # a programming error, not told to a user
TRANSLATORS = {"_", "ngettext", "pgettext", "N_"}
_LETTERS = re.compile(r"[A-Za-zÅÄÖåäö]{2,}")


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _literal_text(node: ast.AST) -> str | None:
    """The text of NODE when it is a literal string, f-string or literal.format(...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "format"):
        return _literal_text(node.func.value)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [_literal_text(node.left), _literal_text(node.right)]
        text = "".join(p for p in parts if p)
    else:
        return None
    return text if _LETTERS.search(re.sub(r"\{[^}]*\}", "", text)) else None


def _is_error_call(call: ast.Call) -> bool:
    name = _name(call.func)
    return name not in INTERNAL and (name in ERRORS or name.endswith(("Error", "Exception")))


def python_findings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each hard-coded user-facing text in the Python file at PATH."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _name(node.func) in TRANSLATORS:
            continue
        name = _name(node.func)
        if name in ECHOES or _is_error_call(node):
            candidates = list(node.args[:1])
            candidates += [k.value for k in node.keywords if k.arg in ("message", "text")]
            for arg in candidates:
                text = _literal_text(arg)
                if text:
                    yield arg.lineno, text


# Not words for a reader: comments, expressions and statements, scripts and style sheets (also
# MJML's <mj-style>), and a `{% block NAME_class %}` (a layout name such as "wide" or "narrow").
_HIDDEN = re.compile(r"\{#.*?#\}|\{%-?\s*block\s+\w+_class\s*-?%\}.*?\{%-?\s*endblock\s*-?%\}"
                     r"|\{\{.*?\}\}|\{%.*?%\}|<script\b.*?</script>|<style\b.*?</style>"
                     r"|<mj-style\b.*?</mj-style>|<!--.*?-->", re.S)
_ATTRIBUTE = re.compile(r'\b(?:alt|title|placeholder|aria-label)="([^"{]*)"')
_TAG = re.compile(r"<[^>]*>", re.S)
# Also not words: an attribute written outside a tag (a macro that returns
# `aria-describedby="..."`), a web address, and the placeholders the sender fills in per
# recipient (__NL_UNSUBSCRIBE_URL__).
_NOT_WORDS = re.compile(r'\b[\w:-]+="[^"]*"|\bhttps?://\S*|__NL_\w+__')


def template_findings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each text in the template at PATH that is not inside a `{{ }}`."""
    source = path.read_text(encoding="utf-8")
    if path.suffix in (".css", ".js"):
        return
    blanked = _HIDDEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)
    for m in _ATTRIBUTE.finditer(blanked):
        if _LETTERS.search(_NOT_WORDS.sub(" ", m.group(1))):
            yield blanked.count("\n", 0, m.start()) + 1, m.group(1)
    if path.name.endswith((".html", ".mjml.j2")):
        text = _TAG.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), blanked)
    else:
        text = blanked
    for lineno, line in enumerate(text.splitlines(), 1):
        line = _NOT_WORDS.sub(" ", re.sub(r"&\w+;|&#\d+;", " ", line)).strip()
        if _LETTERS.search(line):
            yield lineno, line


def scan(paths: list[Path]) -> Iterator[tuple[Path, int, str]]:
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.suffix == ".py" and "migrations" not in path.parts:
                yield from ((path, n, t) for n, t in python_findings(path))
            elif path.suffix in (".html", ".j2"):
                yield from ((path, n, t) for n, t in template_findings(path))


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [REPO / "newsletter", REPO / "templates"]
    found = 0
    for path, line, text in scan(paths):
        found += 1
        shown = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
        print(f"{shown}:{line}: {text}")
    print(f"{found} hard-coded texts", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
