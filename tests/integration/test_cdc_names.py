"""CDC parses table names as the polling input does (quotes keep dots and quotes)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.fix_pglogical import drain, open_source

pytestmark = [pytest.mark.cdc, pytest.mark.postgres]

QUOTED = '"Quoted_"" . Schema"."Quoted_"" . Table"'


def test_quoted_schema_and_table_with_dots(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute(
        'CREATE SCHEMA "Quoted_"" . Schema";'
        f"CREATE TABLE {QUOTED} (id int PRIMARY KEY, v text);"
        f"INSERT INTO {QUOTED} VALUES (1, 'before')"
    )
    src = open_source(cdc_db.props(tmp_path, tables=QUOTED))
    try:
        recs = drain(src, lambda r: any(x["op"] == "r" for x in r))
        cdc_db.execute(f"INSERT INTO {QUOTED} VALUES (2, 'after')")
        drain(src, lambda r: any(x["op"] == "c" for x in r), out=recs)
    finally:
        src.close()
    assert {r["table"] for r in recs} == {'Quoted_" . Schema.Quoted_" . Table'}
    assert ("r", {"id": 1, "v": "before"}) in [(r["op"], r["after"]) for r in recs]
    assert [r["after"] for r in recs if r["op"] == "c"][-1] == {"id": 2, "v": "after"}
