"""The C run of inserts gives the Python path's records on a real workload.

``tests/unit/cdc/test_stream_inserts.py`` checks hand-built peeks byte for byte; here
the replication workload of ``test_cdc_apply`` (composite and text keys, a TOASTed
column, key changes, deletes, truncates, 1-8 changes per transaction) is read from
two slots made before it ran, once with the C run of inserts and once without, and
the two record streams must be equal, record by record. With ``fetch_size 5`` most
transactions are split between chunks (the stream's mid-transaction hand-over).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.fix_pglogical import drain, open_source
from tests.integration.test_cdc_apply import Workload, seed_source

from flbsql.cdc import packtuple, stream

pytestmark = [
    pytest.mark.cdc,
    pytest.mark.postgres,
    pytest.mark.skipif(not packtuple.accelerated(), reason="make build"),
]

CHANGES = 6000


def _everything(src: Any) -> list[dict[str, Any]]:
    """Records until none came for 2 s (the slot's backlog read to its end)."""
    seen = {"n": -1, "at": time.monotonic()}

    def until(records: list[dict[str, Any]]) -> bool:
        if len(records) != seen["n"]:
            seen["n"], seen["at"] = len(records), time.monotonic()
        return time.monotonic() - seen["at"] > 2

    return drain(src, until, timeout=120)


@pytest.mark.parametrize("fetch_size", [None, 5])
def test_the_c_run_of_inserts_reads_what_python_reads(
    cdc_db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fetch_size: int | None
) -> None:
    seed_source(cdc_db.url)
    cdc_db.execute("CREATE PUBLICATION both_paths FOR TABLE acct, doc, bag")
    for slot in ("c_path", "py_path"):
        cdc_db.execute(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    work = Workload(cdc_db.url, CHANGES)
    work.run()
    assert work.error is None, work.error
    read: dict[str, list[dict[str, Any]]] = {}
    for slot, fast in (("c_path", True), ("py_path", False)):
        monkeypatch.setattr(stream, "accelerated", lambda fast=fast: fast)
        extra = {} if fetch_size is None else {"fetch_size": fetch_size}
        props = cdc_db.props(
            tmp_path / slot, tables="public.acct,public.doc,public.bag", snapshot="never", **extra
        )
        props.update(slot=slot, publication="both_paths")
        (tmp_path / slot).mkdir()
        src = open_source(props)
        try:
            read[slot] = _everything(src)
        finally:
            src.close()
    c_path, py_path = read["c_path"], read["py_path"]
    assert len(c_path) == len(py_path) >= CHANGES
    assert sum(r["op"] == "c" for r in c_path) > CHANGES // 4  # the C path had inserts to take
    for i, (c, py) in enumerate(zip(c_path, py_path, strict=True)):
        assert c == py, (i, c, py)
