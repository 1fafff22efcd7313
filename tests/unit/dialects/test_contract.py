"""The dialect package stays readable: one-way imports, every capability read, no probing."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

import pytest

from flbsql.dialects import get_dialect
from flbsql.dialects.base import Capabilities, Dialect

SRC = pathlib.Path(__file__).resolve().parents[3] / "src" / "flbsql"


def _imports(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{a.name}" for a in node.names)
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_statement_builder_does_not_import_the_base():
    imported = _imports(SRC / "dialects" / "sql.py")
    assert not any(m.startswith("flbsql.dialects.base") for m in imported)
    assert not any(m.startswith("flbsql.output") for m in _imports(SRC / "dialects" / "mssql.py"))


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Capabilities)])
def test_every_capability_is_read_somewhere(field):
    readers = [
        p
        for p in SRC.rglob("*.py")
        if p.name != "capabilities.py" and re.search(rf"\.{field}\b", p.read_text())
    ]
    assert readers, f"Capabilities.{field} is read nowhere: remove it"


def test_output_does_not_probe_dialects():
    for path in (SRC / "output").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"(getattr|hasattr)\(\s*(self\.)?dialect", text), path.name
        assert not re.search(r"\bDialect\.\w+\(", text), path.name


@pytest.mark.parametrize("name", ["postgresql", "mysql", "oracle", "mssql", "sqlite"])
def test_overrides_are_declared_hooks(name):
    d = get_dialect(name)
    own = {
        k
        for k, v in vars(type(d)).items()
        if callable(v) and not k.startswith("_") and k not in ("connect_kwargs",)
    }
    undeclared = {k for k in own if not hasattr(Dialect, k)}
    # dialect helpers used only inside their own module or by its tests
    helpers = {"ssl_args", "classify_code", "rows_per_statement", "copy_sql", "staging_table"}
    assert undeclared <= helpers, undeclared
