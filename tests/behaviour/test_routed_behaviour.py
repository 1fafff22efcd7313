"""A table per record in append mode, on every configured database."""

from __future__ import annotations

from flbsql.conn.connect import open_pool
from flbsql.outcome import Outcome
from flbsql.output.choose import open_writer
from flbsql.output.routed import RoutedWriter
from flbsql.settings import parse
from tests.behaviour.output_helpers import LOG, count, qt
from tests.fix_db import unique_table
from tests.fix_host import event_v2


def test_records_go_to_their_tables_and_bad_names_are_dead_lettered(any_db):
    prefix = unique_table("rt") + "_"
    dead = unique_table("dl")
    raw = {
        "url": any_db.url,
        "table": "$kind",
        "table_prefix": prefix,
        "dead_letter_table": dead,
        "columns": "id=id:int,msg=msg",
        "json_column": "none",
    }
    cfg = parse("output", raw.get)
    pool = open_pool(cfg, LOG)
    try:
        w = open_writer(cfg, pool, LOG)
        assert isinstance(w, RoutedWriter)
        events = [
            event_v2({"kind": "web", "id": 1, "msg": "a"}),
            event_v2({"kind": "api", "id": 2, "msg": "b"}),
            event_v2({"kind": "bad\x00name", "id": 3, "msg": "c"}),  # cannot be quoted
            event_v2({"id": 4, "msg": "d"}),  # no kind: no table
            event_v2({"kind": "web", "id": "x", "msg": "e"}),  # not an int: that row only
            event_v2({"kind": "web", "id": 6, "msg": "f"}),
        ]
        assert w.write(b"".join(events), "app") is Outcome.OK
    finally:
        pool.close()
    assert count(any_db, prefix + "web") == 2
    assert count(any_db, prefix + "api") == 1
    errors = sorted(
        r[0] for r in any_db.query(f"SELECT {qt(any_db, 'error')} FROM {qt(any_db, dead)}")
    )
    assert len(errors) == 3, errors
    text = " | ".join(errors)
    assert "the record has no text field 'kind'" in text
    assert "invalid identifier" in text
    assert "column 'id'" in text
