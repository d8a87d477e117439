"""The shape of the package, read from its source: no import cycle, no import hidden in a function.

A cycle is any loop of import statements between modules of newsletter/ (a package's
__init__.py that imports its submodules while they import it back counts too). An import
inside a function is allowed only with a comment on its line or the line above saying why.
The tests have a shape too: fixtures in conftest.py, shared code in helpers.py and the support
modules (smtp_server.py, certs.py, ...); a test module never imports another, nor conftest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import newsletter

PACKAGE = Path(newsletter.__file__).resolve().parent
TESTS = Path(__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _imports(name: str, tree: ast.Module, modules: dict[str, Path]) -> set[str]:
    """The package's modules that NAME's import statements name."""
    here = name if _is_package(name, modules) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            found |= submodules  # `from . import x` where x is a module needs only x
            if target in modules and len(submodules) < len(node.names):
                found.add(target)  # a name defined in TARGET itself
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, ast.parse(path.read_text(encoding="utf-8")), modules)
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle():
    graph = _graph()
    assert len(graph) > 30 and "newsletter.outbox.sending" in graph["newsletter.sender"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_inside_a_function_without_a_comment_saying_why():
    hidden = []
    for name, path in _modules().items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for func in ast.walk(ast.parse(source)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    said = "#" in lines[node.lineno - 1] or \
                        lines[node.lineno - 2].strip().startswith("#")
                    if not said:
                        hidden.append(f"{name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert hidden == []


def _test_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of each import in TREE of a test module or of conftest."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [node.module] if node.module else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            last = name.rpartition(".")[2]
            if last.startswith("test_") or last == "conftest":
                found.append((node.lineno, name))
    return found


def test_no_test_module_imports_another_or_conftest():
    found = [f"{path.name}:{line}: {name}" for path in sorted(TESTS.rglob("*.py"))
             for line, name in _test_imports(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []


def test_the_test_import_finder_finds_them():
    tree = ast.parse("from .test_sender import seed\nfrom . import conftest\n"
                     "import tests.test_web\nfrom .helpers import seed\n")
    assert _test_imports(tree) == [(1, "test_sender"), (2, "conftest"), (3, "tests.test_web")]
