"""Shared helpers for the apply tests: an Applier on a test database, CDC change events."""

from __future__ import annotations

import logging
from typing import Any

from flbsql.conn.connect import open_pool
from flbsql.output.apply import Applier
from flbsql.settings import parse
from tests.fix_host import event_v2

LOG = logging.getLogger("test.apply")
TOAST = "__unchanged_toast__"


def make_applier(db: Any, **props: Any) -> Applier:
    """An Applier as the plugin builds it (``apply cdc``, no schema), on ``db``."""
    raw = {"url": db.url, "apply": "cdc", "table_schema": "none"}
    for k, v in props.items():
        raw[k] = ("on" if v else "off") if isinstance(v, bool) else str(v)
    cfg = parse("output", raw.get)
    return Applier(cfg, open_pool(cfg, LOG), LOG)


def change(
    op: str,
    table: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    lsn: str = "0/0",
    pos: int = 0,
    snapshot: bool = False,
    seq: int | None = None,
) -> bytes:
    """One in_sql CDC record (docs/cdc.md), packed as a Fluent Bit event."""
    extra = {} if seq is None else {"seq": seq}
    return event_v2(
        {
            **extra,
            "op": op,
            "table": table,
            "lsn": lsn,
            "xid": None if snapshot else 1,
            "commit_time": None,
            "snapshot": snapshot,
            "overlap": False,
            "pos": pos,
            "before": before,
            "after": after,
        }
    )
