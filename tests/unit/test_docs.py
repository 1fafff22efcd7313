"""The generated docs match the code, and every relative link in docs/ resolves."""

from __future__ import annotations

import pathlib
import re

import pytest

from flbsql.options import OPTIONS, Option
from flbsql.tools import apidoc, codegen, docgen

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_typed_config_classes_are_generated_from_the_option_table():
    committed = (DOCS.parent / "src" / "flbsql" / "options" / "config.py").read_text()
    assert committed == codegen.config_source(), (
        "src/flbsql/options/config.py is stale: run `make docs` and commit it"
    )


def test_configuration_md_is_up_to_date():
    committed = (DOCS / "configuration.md").read_text()
    generated = docgen.configuration_markdown()
    assert committed == generated, (
        "docs/configuration.md is stale: run `make docs` (python -m flbsql.tools.docgen > "
        "docs/configuration.md) and commit it"
    )


def test_type_mapping_md_is_up_to_date():
    committed = (DOCS / "type-mapping.md").read_text()
    assert committed == docgen.type_mapping_markdown(), (
        "docs/type-mapping.md is stale: run `make docs` and commit it"
    )


def test_type_mapping_lists_every_dialect_type_and_input_row():
    from flbsql.dialects import get_dialect
    from flbsql.input import encoding as typemap
    from flbsql.output.mapping import TYPES

    text = docgen.type_mapping_markdown()
    for dialect in docgen.DIALECTS:
        types = get_dialect(dialect).caps.types
        for generic in TYPES:
            row = next(line for line in text.splitlines() if line.startswith(f"| `{generic}` |"))
            assert f"`{types[generic]}`" in row, (dialect, generic)
    rows = docgen._rst_table_rows(typemap.__doc__ or "")
    assert len(rows) >= 10
    assert ("NULL", "nil") in rows
    for left, _ in rows:
        assert f"| {docgen._rst_inline(left)} |" in text


def test_every_option_is_documented_once_with_its_default():
    text = docgen.configuration_markdown()
    for opt in OPTIONS:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{opt.name}` |")]
        assert len(rows) == 1, opt.name
        if opt.secret:
            assert "| yes |" in rows[0], opt.name
        for choice in opt.choices:
            assert f"`{choice}`" in rows[0], (opt.name, choice)


def test_option_groups_become_sections_in_table_order():
    text = docgen.configuration_markdown()
    for opt in OPTIONS:
        heading = f"## {docgen.GROUPS.get(opt.group, opt.group)}"
        assert heading in text
        assert text.index(heading) < text.index(f"| `{opt.name}` |")


def test_a_changed_option_makes_the_committed_file_stale(monkeypatch):
    changed = (*OPTIONS[:-1], Option("zz_new", "int", 3, "New.", group="metrics"))
    monkeypatch.setattr(docgen, "OPTIONS", changed)
    assert docgen.configuration_markdown() != (DOCS / "configuration.md").read_text()


def test_cli_prints_the_reference(capsys):
    assert docgen.main([]) == 0
    assert capsys.readouterr().out == docgen.configuration_markdown()
    assert docgen.main(["nope"]) == 2


def test_api_doc_lists_public_names():
    text = apidoc.api_markdown(["flbsql.settings", "flbsql.tools.docgen"])
    assert "## `flbsql.settings`" in text
    assert "- `parse(kind: str" in text
    assert "- **class `Config`**" in text
    assert "configuration_markdown()" in text


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_in_docs_resolve(page):
    text = (DOCS / page).read_text()
    broken = [
        target
        for target in _LINK.findall(text)
        if "://" not in target
        and not target.startswith("mailto:")
        and not (DOCS / target).resolve().exists()
    ]
    assert not broken, f"{page}: broken links {broken}"
