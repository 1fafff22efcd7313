"""The saved change numbers: the entry at or below the slot's LSN is the one to go on from."""

from __future__ import annotations

import logging

from flbsql.cdc.sequence import KEEP, SeqLog
from flbsql.input.store import PositionStore

LOG = logging.getLogger("test.seq")


def test_a_restart_counts_on_from_the_entry_at_or_below_the_slot(tmp_path):
    store = PositionStore(str(tmp_path / "pos.db"))
    log = SeqLog(store, "cdc:s")
    log.save(100, {"public.a": 5})
    log.save(200, {"public.a": 7, "public.b": 1})
    log.save(300, {"public.a": 7, "public.b": 1})  # unchanged: nothing written
    store.close()
    again = SeqLog(PositionStore(str(tmp_path / "pos.db")), "cdc:s")
    assert [lsn for lsn, _ in again.entries] == [100, 200]
    assert again.at(300, LOG) == {"public.a": 7, "public.b": 1}  # the slot moved on idle
    assert again.at(200, LOG) == {"public.a": 7, "public.b": 1}
    assert again.at(150, LOG) == {"public.a": 5}  # saved, but the slot never got there


def test_a_slot_before_every_entry_starts_again_with_a_warning(tmp_path, caplog):
    log = SeqLog(PositionStore(str(tmp_path / "pos.db")), "cdc:s")
    assert log.at(50, LOG) == {}  # nothing saved yet: silently from 1
    assert not caplog.records
    log.save(100, {"public.a": 5})
    with caplog.at_level(logging.WARNING):
        assert log.at(50, LOG) == {}
    assert len(caplog.records) == 1
    assert "change numbers (seq) restart" in caplog.records[0].getMessage()


def test_only_the_last_entries_are_kept(tmp_path):
    log = SeqLog(PositionStore(str(tmp_path / "pos.db")), "cdc:s")
    for i in range(1, KEEP + 10):
        log.save(i * 10, {"public.a": i})
    assert len(log.entries) == KEEP
    assert log.entries[0] == (100, {"public.a": 10})
