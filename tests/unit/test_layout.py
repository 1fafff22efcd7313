"""The plan of src/ stays readable: no import circles, no private names across modules,
small modules, a docstring on every package. (The layers themselves are checked by
import-linter, ``make lint``.)"""

from __future__ import annotations

import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "flbsql"
MAX_LINES = 360  # "about 350"; the generated option classes are data
GENERATED = {"flbsql.options.config"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _imports(path: pathlib.Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(module imported, names taken) for every import anywhere in the file."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in known]
            if subs:
                found += [(s, []) for s in subs]
                names = [n for n in names if f"{node.module}.{n}" not in known]
            if node.module in known:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name in known]
    return found


def test_no_import_circles_even_through_imports_inside_functions():
    mods = _modules()
    graph = {
        m: {dep for dep, _ in _imports(p, set(mods)) if dep != m and not m.startswith(dep + ".")}
        for m, p in mods.items()
    }
    # a package __init__ that only re-exports its children is not a circle with them
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert circles == [], "\n".join(" -> ".join(c) for c in circles)


def test_no_private_name_is_imported_from_another_module():
    mods = _modules()
    bad = [
        f"{m}: from {dep} import {name}"
        for m, p in mods.items()
        for dep, names in _imports(p, set(mods))
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert bad == []


def test_modules_are_small():
    big = {
        m: n
        for m, p in _modules().items()
        if m not in GENERATED and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


def test_every_package_says_what_it_owns():
    for init in SRC.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.relative_to(SRC.parent)} needs a docstring"
